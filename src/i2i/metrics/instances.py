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

from i2i.metrics.shapes import OBJECT_THRESHOLD, border_color, nearest_entry, segment_objects


def masked_mean(images: Tensor, masks: Tensor) -> Tensor:
    """Mean colour of each image (N, 3, H, W) inside its mask (N, H, W), (N, 3); NaN for an empty mask."""
    weights = masks.unsqueeze(1).float()
    return (images * weights).flatten(2).sum(2) / weights.flatten(2).sum(2)


def took_look(
    images: Tensor,
    ring_masks: Tensor,
    core_masks: Tensor,
    palette: Sequence[Sequence[float]],
    object_entry: int,
    background_entry: int,
    filled: bool,
) -> Tensor:
    """Per object (N,) bool: its image (N, 3, H, W) shows the object in the look of a domain whose
    object and background colours are palette entries `object_entry` and `background_entry`, read as
    the mean colours on the object's ring and core. The ring's colour is nearest the object colour and
    stands out from the image's own background (border colour) as an object pixel does
    (`segment_objects`); so does the core's when the look is `filled`, and when it is an outline the
    core's colour is nearest the background colour and does not stand out. False for an object with an
    empty ring or core."""
    backgrounds = border_color(images)
    ring, core = masked_mean(images, ring_masks), masked_mean(images, core_masks)

    def stands_out(colors: Tensor) -> Tensor:
        return (colors - backgrounds).norm(dim=1) > OBJECT_THRESHOLD

    def nearest(colors: Tensor) -> Tensor:
        return nearest_entry(colors.nan_to_num(), palette)

    ring_ok = (nearest(ring) == object_entry) & stands_out(ring)
    if filled:
        core_ok = (nearest(core) == object_entry) & stands_out(core)
    else:
        core_ok = (nearest(core) == background_entry) & ~stands_out(core)
    readable = ring_masks.flatten(1).any(1) & core_masks.flatten(1).any(1)
    return readable & ring_ok & core_ok


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
