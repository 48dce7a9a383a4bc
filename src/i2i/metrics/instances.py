"""Exact per-object measurements for `shapes_instances` (`metrics.synthetic.score_instances` composes
them), read at the ground truth's objects.

Images are float tensors in [0, 1], (B, 3, H, W); objects are N rows of per-object ground truth, each
naming its image (`image_index`, (N,)). Masks are bool (N, H, W); boxes (N, 4) (x1, y1, x2, y2) in
pixels.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from i2i.metrics.shapes import border_color, nearest_entry, segment_objects


def masked_mean(images: Tensor, masks: Tensor) -> Tensor:
    """Mean colour of each image (N, 3, H, W) inside its mask (N, H, W), (N, 3); NaN for an empty mask."""
    weights = masks.unsqueeze(1).float()
    return (images * weights).flatten(2).sum(2) / weights.flatten(2).sum(2)


def took_look(
    images: Tensor,
    ring_masks: Tensor,
    core_masks: Tensor,
    palette: Sequence[Sequence[float]],
    ring_entry: int,
    core_entry: int,
) -> Tensor:
    """Per object (N,) bool: the mean colour of its image (N, 3, H, W) on the object's ring is nearest
    palette entry `ring_entry`, and on its core nearest `core_entry` (an object's look: an outline is
    (object colour, background), a filled object (object colour, object colour)); False for an
    object with an empty ring or core."""
    rings = nearest_entry(masked_mean(images, ring_masks).nan_to_num(), palette)
    cores = nearest_entry(masked_mean(images, core_masks).nan_to_num(), palette)
    readable = ring_masks.flatten(1).any(1) & core_masks.flatten(1).any(1)
    return readable & (rings == ring_entry) & (cores == core_entry)


def box_masks(boxes: Tensor, size: int, margin: float) -> Tensor:
    """(N, H, W) bool: the pixels whose centre lies in each box grown by `margin` pixels."""
    centres = torch.arange(size, dtype=boxes.dtype, device=boxes.device) + 0.5
    x1, y1, x2, y2 = (boxes[:, i, None] for i in range(4))
    inside_x = (centres >= x1 - margin) & (centres < x2 + margin)  # (N, W)
    inside_y = (centres >= y1 - margin) & (centres < y2 + margin)  # (N, H)
    return inside_y[:, :, None] & inside_x[:, None, :]


def fill_holes(masks: Tensor) -> Tensor:
    """Masks (N, H, W) bool with every region they enclose filled: the pixels outside a mask that no
    4-connected path of such pixels joins to the image border become part of it (an outline becomes
    the shape it outlines)."""
    free = ~masks
    outside = torch.zeros_like(masks)
    outside[:, 0], outside[:, -1], outside[:, :, 0], outside[:, :, -1] = (
        free[:, 0],
        free[:, -1],
        free[:, :, 0],
        free[:, :, -1],
    )
    while True:
        padded = F.pad(outside[:, None].float(), (1, 1, 1, 1))[:, 0] > 0
        neighbours = padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
        grown = outside | (neighbours & free)
        if torch.equal(grown, outside):
            return ~outside
        outside = grown


def found_objects(images: Tensor, boxes: Tensor, margin: float) -> Tensor:
    """The object each image (N, 3, H, W) shows in its box: the object pixels (`segment_objects`)
    inside the box grown by `margin`, with the regions they enclose filled, (N, H, W) bool."""
    return fill_holes(segment_objects(images) & box_masks(boxes, images.shape[-1], margin))


def background_nearer(images: Tensor, source: Sequence[float], target: Sequence[float]) -> Tensor:
    """Per image (B,) bool: the border colour is nearer the target background than the source's."""
    return nearest_entry(border_color(images), [source, target]) == 1
