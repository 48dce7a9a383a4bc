"""The datamodule for unpaired two-domain data, synthetic or from folders."""

from typing import Protocol

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import Dataset

from i2i.data.sampling import Key, ResumableLoader, UnpairedSampler, ranks, resumable_loader
from i2i.data.synthetic.base import SyntheticScenario
from i2i.errors import ConfigError, check_choice, check_positive
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
    """Pairs of independent images {"A": a, "B": b}, indexed by the sampler's (i_a, i_b, seed) keys."""

    def __init__(self, source_a: ImageSource, source_b: ImageSource) -> None:
        self.source_a, self.source_b = source_a, source_b

    def __len__(self) -> int:
        return max(len(self.source_a), len(self.source_b))

    def __getitem__(self, key: Key) -> Batch:
        index_a, index_b, seed = key
        return {"A": self.source_a.load(index_a, seed), "B": self.source_b.load(index_b, seed + 1)}


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
        self.train_set: UnpairedDataset | None = None
        self.test_sources: dict[str, ImageSource] = {}

    @property
    def scenario(self) -> SyntheticScenario | None:
        """The synthetic scenario when the data is procedural (its exact metrics apply), else None."""
        return self.domains if isinstance(self.domains, SyntheticScenario) else None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            source, target = SOURCE_TARGET[self.direction]
            self.train_set = UnpairedDataset(
                self.domains.source(source, "train"), self.domains.source(target, "train")
            )
            self.test_sources = {
                domain: self.domains.source(domain, "test") for domain in self.domains.domains
            }

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

    def sample_inputs(self, count: int) -> dict[str, Tensor]:
        """The first `count` test images of each domain, as the models' `sample_rows` take them."""
        return {domain: self.test_images(domain, count) for domain in self.domains.domains}
