"""Few-shot class data (DESIGN §5): class folders, training episodes, evaluation episodes, the datamodule.

A few-shot model (FUNIT, COCO-FUNIT) trains on the classes of the train split and is evaluated on
the classes of the test split, which it never sees in training: each is shown by K example images,
its "shots". The layout on disk is `root/{train,test}/<class>/*`; class labels are the training
classes' indices in sorted name order, as the official list-file loader assigns them.
"""

import logging
from collections.abc import Iterator, Sequence
from functools import cache, partial
from pathlib import Path
from typing import Protocol

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import Dataset

from i2i.data.datamodule import ImageSource
from i2i.data.folder import IMAGE_EXTENSIONS, ImageFolderSource
from i2i.data.sampling import EpisodeKey, EpisodeSampler, ResumableLoader, ranks, resumable_loader
from i2i.data.synthetic.base import SyntheticScenario
from i2i.errors import ConfigError, DataError, check_positive
from i2i.types import Batch

log = logging.getLogger(__name__)

LAYOUT = "root/{train,test}/<class>/*"
SPLITS = ("train", "test")


class ClassDomains(Protocol):
    """Where the images of each class come from (`ClassFolders`, or a scenario such as shapes_fewshot).

    `classes("train")` are the training classes, `classes("test")` the unseen ones. `source(name,
    "train")` is a training class's training images (augmented); `source(name, "test")` gives
    deterministic images: a training class's evaluation content images, an unseen class's examples.
    """

    image_size: int

    def classes(self, split: str) -> tuple[str, ...]: ...

    def count(self, name: str, split: str) -> int: ...

    def source(self, name: str, split: str) -> ImageSource: ...

    def location(self, name: str, split: str) -> str: ...


class ClassFolders:
    """Classes read from `root/{train,test}/<class>/*`, with FUNIT's transforms by default: the
    shorter side resized to `load_size` (140), a random `crop_size` crop (128) and a horizontal flip
    in training, the centre crop otherwise. The evaluation content images of a training class are
    its training images, centre-cropped (FUNIT evaluates on content from the training list)."""

    def __init__(
        self,
        *,
        root: str,
        load_size: int = 140,
        crop_size: int = 128,
        flip: bool = True,
        resize: str = "shorter_side",
    ) -> None:
        check_positive("data.domains.crop_size", crop_size)
        if load_size < crop_size:
            raise DataError(
                f"data.domains.load_size={load_size} must be >= data.domains.crop_size={crop_size}"
            )
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"data.domains.root={self.root} does not exist (expected the layout {LAYOUT})")
        self._classes = {split: self._class_folders(self.root / split) for split in SPLITS}
        self.load_size, self.crop_size, self.flip, self.resize = load_size, crop_size, flip, resize
        self.image_size = crop_size
        self.source = cache(self._source)  # each folder's headers are checked once

    @staticmethod
    def _class_folders(folder: Path) -> tuple[str, ...]:
        if not folder.is_dir():
            raise DataError(f"missing {folder} (expected the layout {LAYOUT})")
        names = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
        if not names:
            raise DataError(f"no class folders in {folder} (expected the layout {LAYOUT})")
        return names

    def classes(self, split: str) -> tuple[str, ...]:
        return self._classes[split]

    def folder(self, name: str) -> Path:
        return self.root / ("train" if name in self._classes["train"] else "test") / name

    def count(self, name: str, split: str) -> int:
        return sum(p.suffix.lower() in IMAGE_EXTENSIONS for p in self.folder(name).iterdir())

    def _source(self, name: str, split: str) -> ImageFolderSource:
        train = split == "train"
        return ImageFolderSource(
            self.folder(name),
            load_size=self.load_size,
            crop_size=self.crop_size,
            train=train,
            flip=self.flip,
            resize=self.resize,
        )

    def location(self, name: str, split: str) -> str:
        return str(self.folder(name))


# ---------------------------------------------------------------------------- evaluation episodes
# One fixed protocol shared by the synthetic metrics, the sample grids and the per-class generation
# of the evaluation: content image i is an evaluation image of the training classes in turn; its
# target is an unseen class, the classes in turn, shifted by one per round of content classes (so
# the first S x U episodes pair every content class with every target, and the first n x U meet
# every target n times when the S training classes are a multiple of the U unseen ones); its shots
# are K consecutive images of the target class, a different set for each content image (wrapping).


def content_of(domains: ClassDomains, index: int) -> tuple[str, int]:
    """(training class, image index) of the `index`-th evaluation content image."""
    seen = domains.classes("train")
    name = seen[index % len(seen)]
    return name, (index // len(seen)) % domains.count(name, "test")


def target_of(domains: ClassDomains, index: int) -> str:
    """The unseen class the `index`-th content image is translated to."""
    seen, unseen = domains.classes("train"), domains.classes("test")
    return unseen[(index + index // len(seen)) % len(unseen)]


def shot_indices(index: int, shots: int, count: int) -> list[int]:
    """Indices of the K shots shown with the `index`-th content image, among `count` class images."""
    return [(index * shots + j) % count for j in range(shots)]


def load(domains: ClassDomains, name: str, indices: Sequence[int]) -> Tensor:
    """Deterministic ("test") images of class `name`, (len(indices), 3, H, W) in [-1, 1]."""
    source = domains.source(name, "test")
    return torch.stack([source.load(i, seed=i) for i in indices])


def content_images(domains: ClassDomains, indices: Sequence[int]) -> Tensor:
    """The evaluation content images of the given indices, (n, 3, H, W) in [-1, 1]."""
    return torch.stack(
        [load(domains, name, [image])[0] for name, image in map(partial(content_of, domains), indices)]
    )


def evaluation_episodes(
    domains: ClassDomains, indices: Sequence[int], shots: int
) -> tuple[Tensor, list[str], Tensor]:
    """Content images (n, 3, H, W), their target classes and shots (n, K, 3, H, W) of the given
    evaluation indices."""
    targets = [target_of(domains, index) for index in indices]
    class_images = [
        load(domains, target, shot_indices(index, shots, domains.count(target, "test")))
        for index, target in zip(indices, targets)
    ]
    return content_images(domains, indices), targets, torch.stack(class_images)


# ---------------------------------------------------------------------------- training
class EpisodeDataset(Dataset):
    """Training episodes by key (content class, content index, shot class, shot indices, seed):
    {"content": (3, H, W), "content_label": (), "class_images": (K, 3, H, W), "class_label": ()}."""

    def __init__(self, sources: Sequence[ImageSource]) -> None:
        self.sources = list(sources)

    def __len__(self) -> int:
        return sum(len(source) for source in self.sources)

    def __getitem__(self, key: EpisodeKey) -> Batch:
        content_class, content_index, shot_class, shots, seed = key
        source = self.sources[shot_class]
        return {
            "content": self.sources[content_class].load(content_index, seed),
            "content_label": torch.tensor(content_class),
            "class_images": torch.stack([source.load(i, seed + 1 + n) for n, i in enumerate(shots)]),
            "class_label": torch.tensor(shot_class),
        }


class FewShotDataModule(pl.LightningDataModule):
    """Training episodes from the training classes; fixed evaluation episodes on the unseen classes.

    Args:
        domains: the classes (`ClassFolders` or a synthetic scenario).
        image_size: the size the model trains on (must equal the images').
        num_train_classes: the number of training classes, which the discriminator's class head is
            sized by (`${data.num_train_classes}` in the model configs); checked against the data.
        train_shots: K in training (the official K = 1).
        test_shots: K at evaluation (the FUNIT paper reports K = 1, 5, 10, 15, 20).
        distinct_classes: never draw the shots from the content image's class (`EpisodeSampler`).
    """

    kind = "fewshot"

    def __init__(
        self,
        *,
        domains: ClassDomains,
        image_size: int,
        num_train_classes: int,
        train_shots: int,
        test_shots: int,
        distinct_classes: bool,
        batch_size: int = 1,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for key, value in (
            ("batch_size", batch_size),
            ("train_shots", train_shots),
            ("test_shots", test_shots),
        ):
            check_positive(f"data.{key}", value)
        if image_size != domains.image_size:
            raise ConfigError(
                "data.image_size", image_size, f"must equal the images' size {domains.image_size}"
            )
        self.domains = domains
        self.train_classes, self.test_classes = domains.classes("train"), domains.classes("test")
        self._check_classes(num_train_classes, distinct_classes)
        for split, shots in (("train", train_shots), ("test", test_shots)):
            self._check_class_sizes(split, shots)
        self.image_size = image_size
        self.train_shots, self.test_shots, self.distinct_classes = train_shots, test_shots, distinct_classes
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.train_set: EpisodeDataset | None = None

    def _check_classes(self, num_train_classes: int, distinct_classes: bool) -> None:
        if not self.train_classes or not self.test_classes:
            raise DataError(
                f"no {'training' if not self.train_classes else 'test'} classes (expected {LAYOUT})"
            )
        overlap = sorted(set(self.train_classes) & set(self.test_classes))
        if overlap:
            raise DataError(
                f"classes {', '.join(overlap)} are both training and test classes; the test classes must be "
                "unseen in training (remove them from one split)"
            )
        if num_train_classes != len(self.train_classes):
            raise ConfigError(
                "data.num_train_classes",
                num_train_classes,
                f"the data has {len(self.train_classes)} training classes "
                "(the discriminator has one output each)",
            )
        if distinct_classes and len(self.train_classes) < 2:
            raise ConfigError(
                "data.distinct_classes", distinct_classes, "needs at least two training classes"
            )

    def _check_class_sizes(self, split: str, shots: int) -> None:
        for name in self.domains.classes(split):
            count = self.domains.count(name, split)
            if count < shots:
                raise DataError(
                    f"class folder {self.domains.location(name, split)} has {count} images; K={shots} shots "
                    f"need at least {shots} (data.{split}_shots)"
                )

    @property
    def scenario(self) -> SyntheticScenario | None:
        """The synthetic scenario when the data is procedural (its exact metrics apply), else None."""
        return self.domains if isinstance(self.domains, SyntheticScenario) else None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = EpisodeDataset(
                [self.domains.source(name, "train") for name in self.train_classes]
            )

    def train_dataloader(self) -> ResumableLoader:
        assert self.train_set is not None, "setup() runs before train_dataloader()"
        sampler = EpisodeSampler(
            [len(source) for source in self.train_set.sources],
            shots=self.train_shots,
            distinct_classes=self.distinct_classes,
            seed=self.seed,
            **ranks(self.trainer),
        )
        return resumable_loader(
            self.train_set, sampler, batch_size=self.batch_size, num_workers=self.num_workers, seed=self.seed
        )

    def sample_inputs(self, count: int) -> dict[str, Tensor]:
        """The first `count` evaluation episodes, as the models' `sample_rows` take them:
        {"content": (count, 3, H, W), "class_images": (count, K, 3, H, W)}."""
        content, _, class_images = evaluation_episodes(self.domains, range(count), self.test_shots)
        return {"content": content, "class_images": class_images}

    def unseen_class_episodes(
        self, n_content: int | None, batch_size: int
    ) -> Iterator[tuple[str, Tensor, Iterator[tuple[Tensor, Tensor]]]]:
        """The episodes of FUNIT's evaluation, per unseen class in order: (class name, its real images,
        its episodes in batches of `batch_size`, each (content (n, 3, H, W), shots (n, K, 3, H, W))).

        The episodes are the first `n_content` evaluation content images (the training classes in
        turn, `content_of`; None: as many as the class has real images), content image i with the
        K = `test_shots` shots `shot_indices(i, K, m)` of the class's m real images. The real images
        are all of the class's evaluation images. All in [-1, 1] on the CPU; `metrics.fewshot`
        translates them."""
        for name in self.test_classes:
            real = load(self.domains, name, range(self.domains.count(name, "test")))
            count = len(real) if n_content is None else n_content
            yield name, real, self._episode_batches(real, count, batch_size)

    def _episode_batches(self, real: Tensor, count: int, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        for start in range(0, count, batch_size):
            indices = range(start, min(start + batch_size, count))
            shots = torch.stack([real[shot_indices(i, self.test_shots, len(real))] for i in indices])
            yield content_images(self.domains, indices), shots
