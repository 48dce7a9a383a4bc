"""Unlabeled data for TUNIT: one collection of images whose domains nobody names, two views each.

A training example is {"x": image, "x_tf": augmented view} (the official `DuplicatedCompose` of
`clovaai/tunit:datasets/datasetgetter.py`); no label reaches the model. Folders may still group
their images in class subfolders: those labels are kept for evaluation only.

Folder layout: root/{train,test}/ holding images directly, or root/{train,test}/<class>/ images.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from i2i.data.folder import IMAGE_EXTENSIONS, ImageFolderSource
from i2i.data.sampling import Key, ResumableLoader, UnpairedSampler, ranks, resumable_loader
from i2i.data.synthetic.base import SyntheticScenario
from i2i.errors import ConfigError, DataError, check_positive
from i2i.types import Batch

LAYOUT = "root/{train,test}/ with images, or root/{train,test}/<class>/ with images"


class Collection(Protocol):
    """The images of one split, at the training size, in [-1, 1]; `labels` (evaluation only: indices
    into `class_names`) or None."""

    labels: list[int] | None
    class_names: list[str]

    def __len__(self) -> int: ...

    def load(self, index: int, seed: int) -> Tensor: ...


class UnlabeledImages(Protocol):
    """Where the images of each split come from (`ShapesUnlabeled` or `UnlabeledFolder`)."""

    image_size: int

    def collection(self, split: str) -> Collection: ...


class TwoViews:
    """The official pair of views of an image: x (random horizontal flip) and x_tf (random affine:
    rotation `degrees`, translation `translate`, shear `shear`; random resized crop with area `scale`
    and aspect `ratio`, bilinear; colour jitter (brightness, contrast, saturation, hue) = `jitter`;
    random horizontal flip), with torchvision v2 transforms.

    Views are made from the image already resized to the training size (the official resizes x and
    crops x_tf from the original: the same geometry, relative to the image, at a fraction of the
    cost). Every random draw comes from `seed`, so a resumed run sees the same views.
    """

    def __init__(
        self,
        *,
        image_size: int,
        degrees: float,
        translate: float,
        shear: float,
        scale: Sequence[float],
        ratio: Sequence[float],
        jitter: Sequence[float],
        flip: bool,
    ) -> None:
        flips = [v2.RandomHorizontalFlip()] if flip else []
        self.plain = v2.Compose(flips)
        brightness, contrast, saturation, hue = jitter
        self.augmented = v2.Compose(
            [
                v2.RandomAffine(degrees, translate=(translate, translate), shear=shear),
                v2.RandomResizedCrop(image_size, scale=tuple(scale), ratio=tuple(ratio), antialias=True),
                v2.ColorJitter(brightness, contrast, saturation, hue),
                *flips,
            ]
        )

    def __call__(self, image: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        """(x, x_tf) from an image (3, H, W) in [-1, 1], both in [-1, 1]."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            x = self.plain(image)
            x_tf = self.augmented((image + 1) / 2).clamp(0, 1) * 2 - 1  # colour jitter works in [0, 1]
        return x, x_tf


class TwoViewDataset(Dataset):
    """{"x": x, "x_tf": x_tf} per (index, unused partner, seed) key of the training sampler."""

    def __init__(self, collection: Collection, views: TwoViews) -> None:
        self.collection, self.views = collection, views

    def __len__(self) -> int:
        return len(self.collection)

    def __getitem__(self, key: Key) -> Batch:
        index, _, seed = key
        x, x_tf = self.views(self.collection.load(index, seed), seed + 1)
        return {"x": x, "x_tf": x_tf}


class UnlabeledDataModule(pl.LightningDataModule):
    """Training views from the train split; fixed test images for sample grids and metrics."""

    kind = "unlabeled"

    def __init__(
        self,
        *,
        domains: UnlabeledImages,
        views: TwoViews,
        image_size: int,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_positive("data.batch_size", batch_size)
        if image_size != domains.image_size:
            raise ConfigError(
                "data.image_size", image_size, f"must equal the images' size {domains.image_size}"
            )
        self.domains, self.views = domains, views
        self.image_size = image_size
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.train_set: TwoViewDataset | None = None
        self.test_set: Collection | None = None

    @property
    def scenario(self) -> SyntheticScenario | None:
        """The synthetic scenario when the data is procedural (its exact metrics apply), else None."""
        return self.domains if isinstance(self.domains, SyntheticScenario) else None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = TwoViewDataset(self.domains.collection("train"), self.views)
            self.test_set = self.domains.collection("test")

    def train_dataloader(self) -> ResumableLoader:
        assert self.train_set is not None, "setup() runs before train_dataloader()"
        size = len(self.train_set)
        if size < self.batch_size:
            raise ConfigError("data.batch_size", self.batch_size, f"the train split has only {size} images")
        sampler = UnpairedSampler(size, size, seed=self.seed, **ranks(self.trainer))
        return resumable_loader(
            self.train_set, sampler, batch_size=self.batch_size, num_workers=self.num_workers, seed=self.seed
        )

    def test_images(self, count: int) -> Tensor:
        """The first `count` test images, (count, 3, H, W) in [-1, 1]."""
        self.setup()
        assert self.test_set is not None
        return torch.stack([self.test_set.load(i, seed=i) for i in range(min(count, len(self.test_set)))])

    def sample_inputs(self, count: int) -> dict[str, Tensor]:
        """The inputs of a sample grid, for the model's `sample_rows`: {"x": `count` test images}."""
        return {"x": self.test_images(count)}


class FolderCollection:
    """The images of one split of an `UnlabeledFolder`, with class labels when it has class subfolders."""

    def __init__(self, folder: Path, image_size: int) -> None:
        if not folder.is_dir():
            raise DataError(f"missing image folder {folder} (expected {LAYOUT})")
        flat = any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())
        classes = [folder] if flat else sorted(p for p in folder.iterdir() if p.is_dir())
        if not classes:
            raise DataError(f"no images and no class folders in {folder} (expected {LAYOUT})")
        self.sources = [
            ImageFolderSource(path, load_size=image_size, crop_size=image_size, train=False, flip=False)
            for path in classes
        ]
        self.index = [(s, i) for s, source in enumerate(self.sources) for i in range(len(source))]
        self.labels = None if flat else [s for s, _ in self.index]
        self.class_names = [] if flat else [path.name for path in classes]

    def __len__(self) -> int:
        return len(self.index)

    def load(self, index: int, seed: int) -> Tensor:
        source, within = self.index[index]
        return self.sources[source].load(within, seed)


class UnlabeledFolder:
    """Images of unknown domains read from root/{train,test}, resized to `image_size` (see LAYOUT)."""

    def __init__(self, *, root: str, image_size: int) -> None:
        check_positive("data.image_size", image_size)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"data.domains.root={self.root} does not exist (expected {LAYOUT})")
        self.image_size = image_size

    def collection(self, split: str) -> FolderCollection:
        return FolderCollection(self.root / split, self.image_size)
