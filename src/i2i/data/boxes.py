"""Object boxes beside the images: the batch format, and COCO-style annotation files.

Data with boxes adds to each training batch, beside "A" and "B" (B, 3, H, W):
- "boxes_A", "boxes_B": float32 (B, M, 4), (x1, y1, x2, y2) in pixels of the image in the batch
  (after resize, crop and flip; pixel i spans [i, i + 1));
- "boxes_A_valid", "boxes_B_valid": bool (B, M), which rows hold a box. An image's boxes come first;
  the rows after them are zeros and invalid. M is `data.max_instances`.
Data without boxes adds none of these keys.

Annotation files are COCO-style JSON: `images` (entries with `file_name`, `id`, `width`, `height`)
and `annotations` (entries with `image_id` and `bbox` [x, y, w, h] in pixels of the original image);
other keys (categories, areas, segmentations) are ignored.
"""

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from i2i.errors import DataError

# A box may leave its image by this many pixels (COCO boxes are rounded); it is clipped to the image.
BOX_TOLERANCE = 1.0
NO_BOXES = torch.zeros(0, 4)


@runtime_checkable
class BoxedImageSource(Protocol):
    """Images of one domain and split that come with object boxes."""

    def __len__(self) -> int: ...

    def load(self, index: int, seed: int) -> Tensor: ...

    def load_boxed(self, index: int, seed: int) -> tuple[Tensor, Tensor]:
        """Image `index` in [-1, 1] (3, H, W), transformed with `seed` as `load` does, and its boxes
        (K, 4) float32 (x1, y1, x2, y2) in pixels of that image."""
        ...

    def check_max_instances(self, max_instances: int) -> None:
        """An I2IError naming the file (or key) when an image has more than `max_instances` boxes."""
        ...


def pad_boxes(boxes: Tensor, rows: int) -> tuple[Tensor, Tensor]:
    """(K, 4) boxes as `rows` rows, (rows, 4) float32, the rows after the K boxes zeros, and which rows
    hold a box, (rows,) bool."""
    if len(boxes) > rows:
        raise ValueError(f"{len(boxes)} boxes do not fit in {rows} rows")
    padded = torch.zeros(rows, 4)
    padded[: len(boxes)] = boxes
    return padded, torch.arange(rows) < len(boxes)


def padded_batch(boxes: Sequence[Tensor], rows: int) -> tuple[Tensor, Tensor]:
    """The boxes of several images (each (K_i, 4)) in the batch format: (B, rows, 4) float32 and the
    rows that hold a box, (B, rows) bool (`pad_boxes` of each)."""
    padded = [pad_boxes(image_boxes, rows) for image_boxes in boxes]
    return torch.stack([image_rows for image_rows, _ in padded]), torch.stack([valid for _, valid in padded])


def boxes_by_file(annotations: Path, sizes: Mapping[Path, tuple[int, int]]) -> dict[Path, Tensor]:
    """The boxes of each image file of `sizes` ({file: (width, height)}) from the COCO-style file
    `annotations` (`read_coco_boxes`), (K, 4) in pixels of the file. A file it does not list has no
    objects; an entry must give the size its file has (a DataError naming both otherwise)."""
    entries = read_coco_boxes(annotations)
    boxes = {}
    for path, (width, height) in sizes.items():
        size, boxes[path] = entries.get(path.name, ((width, height), NO_BOXES))
        if size != (width, height):
            raise DataError(
                f"{annotations}: the entry of {path.name} gives its size as {size[0]}x{size[1]}, but "
                f"{path} is {width}x{height} (fix the entry's width and height)"
            )
    return boxes


def read_coco_boxes(path: Path) -> dict[str, tuple[tuple[int, int], Tensor]]:
    """The boxes of a COCO-style file, by image file name: {file_name: ((width, height), boxes (K, 4)
    float32 (x1, y1, x2, y2) in pixels of the original image)}. A file name's folders are dropped:
    the name is matched inside the image folder. A missing or malformed file, an annotation of an
    unknown image, or a box outside its image is a DataError naming the file and the entry."""
    if not path.is_file():
        raise DataError(
            f"missing box annotations {path} (data.domains.boxes=true reads a COCO-style JSON beside "
            "each image folder: add it, or set data.domains.boxes=false)"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {path}: not JSON ({error}); fix or replace the file") from error
    if not isinstance(document, dict) or not all(
        isinstance(document.get(key), list) for key in ("images", "annotations")
    ):
        raise DataError(f"{path}: expected a COCO-style object with the lists 'images' and 'annotations'")
    images: dict[Any, tuple[str, int, int]] = {}
    for number, entry in enumerate(document["images"]):
        where = f"{path}: images[{number}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise DataError(f"{where} needs a 'file_name' string (and 'id', 'width', 'height')")
        size = [entry.get("width"), entry.get("height")]
        if not all(_is_integer(value) and value > 0 for value in size):
            raise DataError(
                f"{where} ({entry['file_name']}) needs 'width' and 'height' in pixels, got {size}"
            )
        image_id = entry.get("id")
        if not isinstance(image_id, (int, str)) or isinstance(image_id, bool) or image_id in images:
            raise DataError(
                f"{where} ({entry['file_name']}) needs an 'id' no other image has, got {image_id!r}"
            )
        images[image_id] = (Path(entry["file_name"]).name, size[0], size[1])
    boxes: dict[Any, list[list[float]]] = {image_id: [] for image_id in images}
    for number, entry in enumerate(document["annotations"]):
        where = f"{path}: annotations[{number}]"
        image_id = entry.get("image_id") if isinstance(entry, dict) else None
        if image_id not in images:
            raise DataError(f"{where} names image_id {image_id!r}, which no entry of 'images' has")
        name, width, height = images[image_id]
        boxes[image_id].append(_checked_box(entry.get("bbox"), width, height, f"{where} (image {name})"))
    return {
        name: ((width, height), torch.tensor(boxes[image_id], dtype=torch.float32).reshape(-1, 4))
        for image_id, (name, width, height) in images.items()
    }


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_box(bbox: object, width: int, height: int, where: str) -> list[float]:
    """A COCO bbox [x, y, w, h] as [x1, y1, x2, y2] clipped to the image; DataError when malformed,
    empty or outside the image by more than BOX_TOLERANCE."""
    numbers = isinstance(bbox, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox
    )
    if not numbers or len(bbox) != 4:
        raise DataError(f"{where}: 'bbox' must be [x, y, width, height] in pixels, got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise DataError(f"{where}: bbox {bbox} has no area (width and height must be > 0)")
    if (
        x < -BOX_TOLERANCE
        or y < -BOX_TOLERANCE
        or x + w > width + BOX_TOLERANCE
        or y + h > height + BOX_TOLERANCE
    ):
        raise DataError(f"{where}: bbox {bbox} [x, y, w, h] leaves the {width}x{height} image")
    return [max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))]


def coco_document(entries: Sequence[tuple[str, int, int, Tensor]]) -> dict[str, Any]:
    """A COCO-style document of images (file name, width, height, boxes (K, 4) (x1, y1, x2, y2)), the
    images numbered from 0 in order, one category "object"."""
    images, annotations = [], []
    for image_id, (name, width, height, boxes) in enumerate(entries):
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for x1, y1, x2, y2 in boxes.tolist():
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": 1, "name": "object"}]
    return {"images": images, "annotations": annotations, "categories": categories}
