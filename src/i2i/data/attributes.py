"""Attribute-labelled images for exemplar-guided models (LOMIT): tables, folders, pairs, datamodule.

A training batch pairs each input with an exemplar whose selected attributes differ (or, as the
official LOMIT code, with any random image): {"A": inputs, "B": exemplars, "attr_A", "attr_B"}
with the attributes as (B, K) floats in {0, 1}, K = len(selected_attrs).

Attribute tables come in two formats, chosen by the file's suffix:
- CelebA's `list_attr_celeba.txt`: a count line, a line of attribute names, then
  `<file> <v_1> ... <v_K>` per image with values 1 / -1;
- a CSV (`.csv`) with the header `file,<attr>,...` and values 1 / 0 (or -1).
"""

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from i2i.data.datamodule import ImageSource, UnpairedDataModule
from i2i.data.folder import ImageFileSource
from i2i.data.sampling import UnpairedSampler
from i2i.errors import ConfigError, DataError, check_choice, check_non_negative, check_positive
from i2i.types import Batch

PAIRINGS = ("different", "random")


@dataclass(frozen=True)
class AttributeTable:
    """Image file names, the table line of each, and their attribute values (N, K) bool, in file order."""

    path: Path
    names: tuple[str, ...]
    files: tuple[str, ...]
    lines: tuple[int, ...]
    values: Tensor


def read_attribute_table(path: str | Path) -> AttributeTable:
    """Read a CelebA-format or CSV attribute table; a clear error names the file and line of a problem."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"attribute table {path} does not exist")
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows or len(rows[0]) < 2:
            raise DataError(f"{path}: the first line must be the header file,<attribute>,...")
        names, first = rows[0][1:], 1
    else:
        rows = [line.split() for line in path.read_text().splitlines()]
        if len(rows) < 2:
            raise DataError(
                f"{path}: expected CelebA's format (a count line, attribute names, a line per image)"
            )
        names, first = rows[1], 2
    files, lines, values = [], [], []
    for number, row in enumerate(rows[first:], start=first + 1):
        if not row:
            continue
        if len(row) != len(names) + 1:
            raise DataError(f"{path} line {number}: {len(row) - 1} values for {len(names)} attributes")
        try:
            values.append([int(value) > 0 for value in row[1:]])
        except ValueError as error:
            raise DataError(f"{path} line {number}: attribute values must be 1 or -1/0 ({error})") from error
        files.append(row[0])
        lines.append(number)
    if not files:
        raise DataError(f"{path} lists no images")
    values = torch.tensor(values, dtype=torch.bool)
    return AttributeTable(path, tuple(names), tuple(files), tuple(lines), values)


def select_columns(
    available: Sequence[str], selected: Sequence[str], where: str, key: str = "data.selected_attrs"
) -> list[int]:
    """Column indices of the `selected` attribute names; an unknown name is refused listing the known ones."""
    if not selected:
        raise ConfigError(key, list(selected), "select at least one attribute")
    for name in selected:
        if name not in available:
            raise ConfigError(key, name, f"not an attribute of {where}; choose from {', '.join(available)}")
    if len(set(selected)) != len(selected):
        raise ConfigError(key, list(selected), "an attribute is listed twice")
    return [list(available).index(name) for name in selected]


class AttributeData(Protocol):
    """Where attribute-labelled images come from (a synthetic scenario or `AttributeFolder`)."""

    attribute_names: tuple[str, ...]
    image_size: int

    def labelled(self, split: str) -> tuple[ImageSource, Tensor]:
        """The images of `split` and their attributes, (N, len(attribute_names)) bool."""


class AttributeImageSource(ImageFileSource):
    """Listed image files, loaded as the official LOMIT loader does: [random horizontal flip,]
    centre crop `crop_size`, resize to `image_size` (bilinear), scale to [-1, 1]."""

    def __init__(
        self, files: list[Path], *, where: Path, crop_size: int, image_size: int, flip: bool
    ) -> None:
        self.crop_size, self.image_size, self.flip = crop_size, image_size, flip
        super().__init__(files, where=where, min_size=crop_size, size_key="data.domains.crop_size")

    def transform(self, image: Image.Image, seed: int) -> Tensor:
        if self.flip and torch.rand((), generator=torch.Generator().manual_seed(seed)) < 0.5:
            image = TF.hflip(image)
        image = TF.center_crop(image, [self.crop_size])
        image = TF.resize(image, [self.image_size], TF.InterpolationMode.BILINEAR)
        return TF.to_tensor(image) * 2 - 1


class AttributeFolder:
    """Images in `root` listed by an attribute table (CelebA's `list_attr_celeba.txt` or a CSV).

    The first `test_rows` lines of the table are the test split (the official LOMIT code holds out
    the first 2000 CelebA lines with `(i + 1) < 2000`, i.e. 1999). With `require_any_of`, only
    images that have at least one of those attributes are used (the official code keeps the
    black-, blond- and brown-haired faces only).
    """

    def __init__(
        self,
        *,
        root: str,
        attr_path: str,
        image_size: int = 128,
        crop_size: int = 178,
        flip: bool = True,
        test_rows: int = 1999,
        require_any_of: Sequence[str] | None = None,
    ) -> None:
        check_positive("data.image_size", image_size)
        check_non_negative("data.domains.test_rows", test_rows)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"data.domains.root={self.root} does not exist (the folder of the listed images)")
        self.table = read_attribute_table(attr_path)
        self.attribute_names = self.table.names
        self.image_size, self.crop_size, self.flip, self.test_rows = image_size, crop_size, flip, test_rows
        keep = torch.ones(len(self.table.files), dtype=torch.bool)
        if require_any_of:
            key = "data.domains.require_any_of"
            columns = select_columns(self.table.names, require_any_of, str(self.table.path), key)
            keep = self.table.values[:, columns].any(dim=1)
        self.rows = keep.nonzero().flatten().tolist()
        self._check_files_exist()

    def _check_files_exist(self) -> None:
        for row in self.rows:
            if not (self.root / self.table.files[row]).is_file():
                raise DataError(
                    f"{self.table.path} line {self.table.lines[row]} lists {self.table.files[row]}, "
                    f"which is not in {self.root} (add the image or remove the line)"
                )

    def labelled(self, split: str) -> tuple[AttributeImageSource, Tensor]:
        check_choice("split", split, ("train", "test"))
        rows = [r for r in self.rows if (r < self.test_rows) == (split == "test")]
        if not rows:
            raise DataError(
                f"{self.table.path}: no {split} images (the first data.domains.test_rows={self.test_rows} "
                "listed images are the test split)"
            )
        files = [self.root / self.table.files[r] for r in rows]
        flip = self.flip and split == "train"
        source = AttributeImageSource(
            files, where=self.root, crop_size=self.crop_size, image_size=self.image_size, flip=flip
        )
        return source, self.table.values[rows]


class ExemplarPairs(Dataset):
    """{"A": input, "B": exemplar, "attr_A", "attr_B"} for the sampler's (input, exemplar, seed) keys."""

    def __init__(self, source: ImageSource, labels: Tensor) -> None:
        self.source, self.labels = source, labels.float()

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int, int]) -> Batch:
        index, exemplar, seed = key
        return {
            "A": self.source.load(index, seed),
            "B": self.source.load(exemplar, seed + 1),
            "attr_A": self.labels[index],
            "attr_B": self.labels[exemplar],
        }


class ExemplarSampler(UnpairedSampler):
    """Epochs of (input, exemplar, seed) keys over one labelled set: inputs in shuffled order, each
    exemplar drawn uniformly among the images whose attributes differ from the input's
    (`pairing="different"`) or among all images (`"random"`, the official code's two consecutive
    random batches). Deterministic from (seed, epoch) and split across ranks like its parent."""

    def __init__(
        self, labels: Tensor, *, pairing: str, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        check_choice("data.pairing", pairing, PAIRINGS)
        super().__init__(len(labels), len(labels), seed=seed, rank=rank, world_size=world_size)
        self.pairing = pairing
        _, group = torch.unique(labels, dim=0, return_inverse=True)
        self.by_group = torch.argsort(group, stable=True)  # image indices, grouped by attribute vector
        sizes = torch.bincount(group)
        self.group_start, self.group_size = (torch.cumsum(sizes, 0) - sizes)[group], sizes[group]
        if pairing == "different" and len(sizes) < 2:
            raise DataError(
                "all images have the same selected attributes; data.pairing=different needs two kinds"
            )

    def partners(self, order: Tensor, generator: torch.Generator) -> Tensor:
        if self.pairing == "random":
            return super().partners(order, generator)
        inputs = order % self.len_a
        start, size = self.group_start[inputs], self.group_size[inputs]
        # a uniform position among the images outside the input's group, skipping over that group
        position = (torch.rand(len(order), generator=generator) * (self.len_a - size)).long()
        return self.by_group[torch.where(position < start, position, position + size)]


def next_different(labels: Tensor, count: int) -> list[int]:
    """For each of the first `count` rows, the next row (cyclically) whose labels differ: the fixed
    exemplars of test grids and metrics. A row without any such row is its own exemplar."""
    exemplars = []
    for i in range(min(count, len(labels))):
        differs = (labels != labels[i]).any(dim=1).roll(-i - 1)
        exemplars.append(int((i + 1 + int(differs.int().argmax())) % len(labels)) if differs.any() else i)
    return exemplars


class AttributeDataModule(UnpairedDataModule):
    """Input/exemplar pairs with their selected attributes; resumable mid-epoch like the unpaired data."""

    kind = "attributes"

    def __init__(
        self,
        *,
        domains: AttributeData,
        selected_attrs: Sequence[str],
        pairing: str,
        image_size: int,
        batch_size: int = 1,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(
            domains=domains, image_size=image_size, batch_size=batch_size, num_workers=num_workers, seed=seed
        )
        check_choice("data.pairing", pairing, PAIRINGS)
        self.columns = select_columns(domains.attribute_names, selected_attrs, type(domains).__name__)
        self.selected_attrs, self.pairing = tuple(selected_attrs), pairing
        self.test_set: ExemplarPairs | None = None

    def _pairs(self, split: str) -> ExemplarPairs:
        source, labels = self.domains.labelled(split)
        return ExemplarPairs(source, labels[:, self.columns])

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.test_set = self._pairs("train"), self._pairs("test")

    def sampler(self, rank: int, world_size: int) -> ExemplarSampler:
        assert self.train_set is not None, "setup() runs before sampler()"
        labels = self.train_set.labels
        return ExemplarSampler(labels, pairing=self.pairing, seed=self.seed, rank=rank, world_size=world_size)

    def sample_inputs(self, count: int) -> Batch:
        """The first `count` test images, each with the next test image of other attributes as exemplar."""
        self.setup()
        assert self.test_set is not None
        keys = [(i, j, i) for i, j in enumerate(next_different(self.test_set.labels, count))]
        items = [self.test_set[key] for key in keys]
        return {name: torch.stack([item[name] for item in items]) for name in items[0]}

    def test_images(self, domain: str, count: int) -> Tensor:
        raise TypeError("attribute data has no domains; use sample_inputs(count)")
