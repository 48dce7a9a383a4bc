"""The datamodule for unpaired two-domain data, synthetic or from folders, with object boxes where
the data has them (the batch format: `data.boxes`)."""

from typing import Protocol

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import Dataset

from i2i.data.boxes import BoxedImageSource, pad_boxes, padded_batch
from i2i.data.sampling import Key, ResumableLoader, UnpairedSampler, ranks, resumable_loader
from i2i.data.synthetic.base import SyntheticScenario
from i2i.errors import ConfigError, DataError, check_choice, check_positive
from i2i.types import DIRECTIONS, SOURCE_TARGET, Batch


class ImageSource(Protocol):
    def __len__(self) -> int: ...

    def load(self, index: int, seed: int) -> Tensor: ...


class Domains(Protocol):
    """Where the images of each domain and split come from (a scenario or `UnpairedFolders`)."""

    domains: tuple[str, ...]
    image_size: int

    def source(self, domain: str, split: str) -> ImageSource: ...


class UnpairedDataset(Dataset):
    """Pairs of independent images {"A": a, "B": b}, indexed by the sampler's (i_a, i_b, seed) keys;
    with `max_instances`, the sources' boxes too, padded to that many rows (`data.boxes`)."""

    def __init__(
        self, source_a: ImageSource, source_b: ImageSource, max_instances: int | None = None
    ) -> None:
        self.source_a, self.source_b = source_a, source_b
        self.max_instances = max_instances

    def __len__(self) -> int:
        return max(len(self.source_a), len(self.source_b))

    def __getitem__(self, key: Key) -> Batch:
        index_a, index_b, seed = key
        return self._item("A", self.source_a, index_a, seed) | self._item(
            "B", self.source_b, index_b, seed + 1
        )

    def _item(self, name: str, source: ImageSource, index: int, seed: int) -> Batch:
        if self.max_instances is None:
            return {name: source.load(index, seed)}
        image, boxes = source.load_boxed(index, seed)
        padded, valid = pad_boxes(boxes, self.max_instances)
        return {name: image, f"boxes_{name}": padded, f"boxes_{name}_valid": valid}


class UnpairedDataModule(pl.LightningDataModule):
    """Training pairs from the train split; fixed test images for sample grids and metrics.

    `direction` BtoA swaps the domains of the training pairs (batch "A" holds domain-B images), so
    that a one-sided model, which maps batch "A" to batch "B", learns B -> A (the official CUT and
    CycleGAN `--direction`); the test images keep their domains.
    """

    kind = "unpaired"

    def __init__(
        self,
        *,
        domains: Domains,
        image_size: int,
        batch_size: int = 1,
        num_workers: int = 0,
        seed: int = 0,
        direction: str = "AtoB",
        max_instances: int | None = None,
    ) -> None:
        super().__init__()
        check_positive("data.batch_size", batch_size)
        check_choice("data.direction", direction, DIRECTIONS)
        if image_size != domains.image_size:
            raise ConfigError(
                "data.image_size", image_size, f"must equal the images' size {domains.image_size}"
            )
        self.domains = domains
        self.image_size = image_size
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.direction = direction
        self.max_instances = max_instances
        self.has_boxes = False
        self.train_set: UnpairedDataset | None = None
        self.test_sources: dict[str, ImageSource] = {}

    @property
    def scenario(self) -> SyntheticScenario | None:
        """The synthetic scenario when the data is procedural (its exact metrics apply), else None."""
        return self.domains if isinstance(self.domains, SyntheticScenario) else None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            source, target = SOURCE_TARGET[self.direction]
            train_sources = (self.domains.source(source, "train"), self.domains.source(target, "train"))
            self.test_sources = {
                domain: self.domains.source(domain, "test") for domain in self.domains.domains
            }
            self.has_boxes = self._check_boxes([*train_sources, *self.test_sources.values()])
            self.train_set = UnpairedDataset(*train_sources, self.max_instances if self.has_boxes else None)

    def _check_boxes(self, sources: list[ImageSource]) -> bool:
        """Whether the data has boxes; then `max_instances` must hold every image's boxes."""
        if not all(isinstance(source, BoxedImageSource) for source in sources):
            return False
        if self.max_instances is None:
            raise ConfigError(
                "data.max_instances", None, "this data has object boxes: set the most boxes a batch row holds"
            )
        for source in sources:
            source.check_max_instances(self.max_instances)
        return True

    def train_dataloader(self) -> ResumableLoader:
        assert self.train_set is not None, "setup() runs before train_dataloader()"
        sampler = self.sampler(**ranks(self.trainer))
        return resumable_loader(
            self.train_set, sampler, batch_size=self.batch_size, num_workers=self.num_workers, seed=self.seed
        )

    def sampler(self, rank: int, world_size: int) -> UnpairedSampler:
        """The keys of each training epoch on this rank: every A image with a random B partner."""
        assert self.train_set is not None, "setup() runs before sampler()"
        source_a, source_b = self.train_set.source_a, self.train_set.source_b
        return UnpairedSampler(len(source_a), len(source_b), seed=self.seed, rank=rank, world_size=world_size)

    def test_images(self, domain: str, count: int) -> Tensor:
        """The first `count` test images of `domain`, (count, 3, H, W) in [-1, 1]."""
        self.setup()
        source = self.test_sources[domain]
        return torch.stack([source.load(i, seed=i) for i in range(min(count, len(source)))])

    def test_boxed_images(self, domain: str, count: int) -> tuple[Tensor, Tensor, Tensor]:
        """The first `count` test images of `domain`, (count, 3, H, W) in [-1, 1], with their boxes
        (count, M, 4) float32 and which rows hold one (count, M) bool, M = `data.max_instances`, in
        the batch format (`data.boxes`); a DataError when the data has no boxes."""
        self.setup()
        if not self.has_boxes:
            raise DataError("this data has no object boxes (shapes_instances, or data.domains.boxes=true)")
        source = self.test_sources[domain]
        loaded = [source.load_boxed(i, seed=i) for i in range(min(count, len(source)))]
        images = torch.stack([image for image, _ in loaded])
        return images, *padded_batch([boxes for _, boxes in loaded], self.max_instances)

    def sample_inputs(self, count: int) -> dict[str, Tensor]:
        """The first `count` test images of each domain, as the models' `sample_rows` take them; with
        boxes, each domain's boxes too, as in a batch (`boxes_<domain>`, `boxes_<domain>_valid`)."""
        self.setup()
        if not self.has_boxes:
            return {domain: self.test_images(domain, count) for domain in self.domains.domains}
        inputs = {}
        for domain in self.domains.domains:
            inputs[domain], inputs[f"boxes_{domain}"], inputs[f"boxes_{domain}_valid"] = (
                self.test_boxed_images(domain, count)
            )
        return inputs
