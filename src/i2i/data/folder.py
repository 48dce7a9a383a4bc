"""Folders of real images in the CycleGAN layout: root/{trainA,trainB,testA,testB}, optionally with
object boxes in one COCO-style file per folder, root/{trainA,trainB,testA,testB}.json.

Training transforms follow the official CycleGAN code: resize to load_size x load_size (bicubic),
random crop crop_size, random horizontal flip, scale to [-1, 1]. Test images are resized to
load_size and centre-cropped, so evaluation is deterministic. Each random choice comes from the
seed the sampler gives the pair, so a resumed run sees the same crops. Boxes go through the same
resize, crop and flip as their image (`ImageFolderSource.transform_boxed`).
"""

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor

from i2i.data.boxes import NO_BOXES, boxes_by_file
from i2i.errors import ConfigError, DataError, check_choice, check_positive

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
LAYOUT = "root/{trainA,trainB,testA,testB}"
# What PIL raises for a file it cannot read: OSError (no image, truncated pixels), SyntaxError,
# ValueError and EOFError from some decoders, and DecompressionBombError (not an OSError) for a
# header claiming more than twice Image.MAX_IMAGE_PIXELS.
UNREADABLE_IMAGE = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
MIN_BOX_SIDE = 1.0  # pixels of a box's width and height that must stay inside a crop to keep the box


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, sorted; a clear error when it is missing or empty."""
    if not folder.is_dir():
        raise DataError(f"missing image folder {folder} (expected the CycleGAN layout {LAYOUT})")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"no images in {folder} (looked for {' '.join(IMAGE_EXTENSIONS)})")
    return files


@contextmanager
def _opened(path: Path, what: str) -> Iterator[Image.Image]:
    try:
        with Image.open(path) as image:
            yield image
    except UNREADABLE_IMAGE as error:
        raise DataError(f"cannot read {what} {path}: {error} (remove or replace the file)") from error


def read_image(path: Path, mode: str = "RGB", what: str = "image") -> Image.Image:
    """The image in `path` decoded and converted to `mode` (grayscale, palette and RGBA become RGB);
    a DataError naming the file (as `what`) when it cannot be read. Every image i2i reads comes
    through here."""
    with _opened(path, what) as image:
        return image.convert(mode)


def read_image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header alone (nothing decoded); DataError as `read_image`."""
    with _opened(path, "image") as image:
        return image.size


class ImageFileSource:
    """Image files loaded on demand through the subclass's `transform(image, seed)`.

    Every header is opened once at start (fast, no decoding) so a run fails at start, not hours in,
    naming an unreadable file or one that is smaller than `min_size` (the config key `size_key` sets
    it) once the transform has resized it (`resized`). A file whose header reads but whose pixels do
    not decode is found only when it is loaded: it is then skipped with a warning naming it.
    `where` names the files' place in error messages.
    """

    def __init__(self, files: list[Path], *, where: Path, min_size: int, size_key: str) -> None:
        self.files, self.where = files, where
        self.bad_files: set[Path] = set()
        self._check_headers(min_size, size_key)

    def _check_headers(self, min_size: int, size_key: str) -> None:
        self.sizes: dict[Path, tuple[int, int]] = {}
        for path in self.files:
            width, height = self.sizes[path] = read_image_size(path)
            if min(self.resized(width, height)) < min_size:
                raise DataError(
                    f"image {path} is {width}x{height}; {size_key}={min_size} needs at least "
                    f"{min_size}x{min_size} (remove it or lower {size_key})"
                )

    def resized(self, width: int, height: int) -> tuple[int, int]:
        """The size the transform resizes a `width` x `height` image to before it crops."""
        return width, height

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int, seed: int) -> Tensor:
        """Image `index` in [-1, 1]. A file that fails to decode is reported once by name and
        replaced by the next readable one, so a long run is not lost to it."""
        return self.transform(self.read(index)[1], seed)

    def read(self, index: int) -> tuple[Path, Image.Image]:
        """The file `load` reads for image `index` (the next readable one from `index` on), decoded."""
        for offset in range(len(self.files)):
            path = self.files[(index + offset) % len(self.files)]
            if path in self.bad_files:
                continue
            try:
                return path, read_image(path)
            except DataError as error:
                self.bad_files.add(path)
                warnings.warn(f"skipping unreadable image {path}: {error.__cause__}", stacklevel=3)
        raise DataError(f"no readable image left in {self.where}")

    def transform(self, image: Image.Image, seed: int) -> Tensor:
        raise NotImplementedError


class ImageFolderSource(ImageFileSource):
    """The images of one domain and split, loaded and transformed on demand.

    `resize`: "square" resizes to load_size x load_size (CycleGAN); "shorter_side" resizes the
    shorter side to load_size and keeps the aspect ratio (FUNIT's `transforms.Resize(new_size)`).
    """

    def __init__(
        self,
        folder: Path,
        *,
        load_size: int,
        crop_size: int,
        train: bool,
        flip: bool = True,
        resize: str = "square",
    ) -> None:
        check_choice("data.domains.resize", resize, ("square", "shorter_side"))
        self.folder = folder
        self.load_size, self.crop_size = load_size, crop_size
        self.train, self.flip = train, flip and train
        self.resize = resize
        files = list_images(folder)
        super().__init__(files, where=folder, min_size=crop_size, size_key="data.domains.crop_size")

    def resized(self, width: int, height: int) -> tuple[int, int]:
        if self.resize == "square":
            return self.load_size, self.load_size
        scale = self.load_size / min(width, height)  # torchvision: the longer side rounds down
        if width <= height:
            return self.load_size, int(height * scale)
        return int(width * scale), self.load_size

    def transform(self, image: Image.Image, seed: int) -> Tensor:
        return self.transform_boxed(image, NO_BOXES, seed)[0]

    def transform_boxed(self, image: Image.Image, boxes: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        """The image resized, cropped and flipped as the module docstring says, in [-1, 1], and its
        boxes (K, 4) (x1, y1, x2, y2) in pixels moved with it: clipped to the crop, and dropped when
        less than MIN_BOX_SIDE of them is left inside it."""
        generator = torch.Generator().manual_seed(seed)
        size = [self.load_size, self.load_size] if self.resize == "square" else self.load_size
        width, height = image.size
        image = TF.resize(image, size, TF.InterpolationMode.BICUBIC)
        boxes = boxes * torch.tensor([image.width / width, image.height / height] * 2)
        margin_y, margin_x = image.height - self.crop_size, image.width - self.crop_size
        if self.train and margin_y == margin_x:
            top, left = (int(v) for v in torch.randint(0, margin_x + 1, (2,), generator=generator))
        elif self.train:
            top = int(torch.randint(0, margin_y + 1, (), generator=generator))
            left = int(torch.randint(0, margin_x + 1, (), generator=generator))
        else:
            top, left = margin_y // 2, margin_x // 2
        image = TF.crop(image, top, left, self.crop_size, self.crop_size)
        boxes = (boxes - torch.tensor([left, top] * 2)).clamp(0, self.crop_size)
        boxes = boxes[(boxes[:, 2:] - boxes[:, :2] >= MIN_BOX_SIDE).all(dim=1)]
        if self.flip and torch.rand((), generator=generator) < 0.5:
            image = TF.hflip(image)
            boxes = torch.stack(
                [self.crop_size - boxes[:, 2], boxes[:, 1], self.crop_size - boxes[:, 0], boxes[:, 3]], 1
            )
        return TF.to_tensor(image) * 2 - 1, boxes


class BoxedFolderSource(ImageFolderSource):
    """An `ImageFolderSource` whose images come with object boxes (`data.boxes.BoxedImageSource`),
    read from the COCO-style file `annotations` (`data.boxes.boxes_by_file`). An image the file
    does not list has no objects; an entry must give the size its image file has."""

    def __init__(
        self,
        folder: Path,
        *,
        annotations: Path,
        load_size: int,
        crop_size: int,
        train: bool,
        flip: bool = True,
        resize: str = "square",
    ) -> None:
        super().__init__(
            folder, load_size=load_size, crop_size=crop_size, train=train, flip=flip, resize=resize
        )
        self.annotations = annotations
        self.boxes = boxes_by_file(annotations, self.sizes)

    def load_boxed(self, index: int, seed: int) -> tuple[Tensor, Tensor]:
        """Image `index` and its boxes, transformed together (`transform_boxed`)."""
        path, image = self.read(index)
        return self.transform_boxed(image, self.boxes[path], seed)

    def check_max_instances(self, max_instances: int) -> None:
        """Refuse an image with more than `max_instances` boxes, naming it and its annotation file."""
        for path, boxes in self.boxes.items():
            if len(boxes) > max_instances:
                raise DataError(
                    f"{self.annotations}: {path.name} has {len(boxes)} boxes, more than "
                    f"data.max_instances={max_instances} (raise data.max_instances)"
                )


class UnpairedFolders:
    """Two domains read from a CycleGAN-layout folder; with `boxes`, each image folder's object boxes
    from the COCO-style file beside it, `<root>/<split><domain>.json` (`BoxedFolderSource`)."""

    domains = ("A", "B")

    def __init__(
        self, *, root: str, load_size: int = 286, crop_size: int = 256, flip: bool = True, boxes: bool = False
    ) -> None:
        check_positive("data.domains.crop_size", crop_size)
        if not isinstance(boxes, bool):
            raise ConfigError("data.domains.boxes", boxes, "must be true or false")
        if load_size < crop_size:
            raise DataError(
                f"data.domains.load_size={load_size} must be >= data.domains.crop_size={crop_size}"
            )
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(
                f"data.domains.root={self.root} does not exist (expected the CycleGAN layout {LAYOUT})"
            )
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        self.image_size = crop_size
        self.boxes = boxes

    def source(self, domain: str, split: str) -> ImageFolderSource:
        folder = self.root / f"{split}{domain}"
        train = split == "train"
        if self.boxes:
            return BoxedFolderSource(
                folder,
                annotations=folder.with_suffix(".json"),
                load_size=self.load_size,
                crop_size=self.crop_size,
                train=train,
                flip=self.flip,
            )
        return ImageFolderSource(
            folder, load_size=self.load_size, crop_size=self.crop_size, train=train, flip=self.flip
        )
