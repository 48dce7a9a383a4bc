"""Exact measurements for the `shapes_*` scenarios' metrics (`metrics.synthetic` composes them),
computed against the renderer's ground truth.

Images are float tensors in [0, 1], (B, 3, H, W). Objects are found without knowing the domain: the
background colour is the median of the 2-pixel border (scenarios keep objects off the border) and
an object pixel is one farther than `OBJECT_THRESHOLD` (RGB distance) from it.
"""

import math
from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

OBJECT_THRESHOLD = 0.3
MIN_OBJECT_PIXELS = 4


def border_color(images: Tensor, width: int = 2) -> Tensor:
    """Median colour of the `width`-pixel image border, (B, 3)."""
    top, bottom = images[..., :width, :], images[..., -width:, :]
    left, right = images[..., width:-width, :width], images[..., width:-width, -width:]
    border = torch.cat([t.flatten(2) for t in (top, bottom, left, right)], dim=2)
    return border.median(dim=2).values


def segment_objects(images: Tensor) -> Tensor:
    """Object mask (B, H, W): pixels farther than OBJECT_THRESHOLD from the border colour."""
    distance = (images - border_color(images)[..., None, None]).norm(dim=1)
    return distance > OBJECT_THRESHOLD


def mask_iou(predicted: Tensor, target: Tensor) -> Tensor:
    """Intersection over union per image, (B,); 1 when both masks are empty."""
    intersection = (predicted & target).flatten(1).sum(1).float()
    union = (predicted | target).flatten(1).sum(1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))


def mean_color(images: Tensor, masks: Tensor) -> Tensor:
    """Mean colour inside each mask, (B, 3); NaN where a mask has fewer than MIN_OBJECT_PIXELS."""
    weights = masks.unsqueeze(1).float()
    count = weights.flatten(1).sum(1)
    color = (images * weights).flatten(2).sum(2) / count.clamp(min=1)[:, None]
    return torch.where((count >= MIN_OBJECT_PIXELS)[:, None], color, torch.full_like(color, float("nan")))


def palette_distance(colors: Tensor, palette: Sequence[Sequence[float]]) -> Tensor:
    """Distance from each colour (B, 3) to its nearest palette entry, (B,)."""
    entries = torch.tensor(palette, dtype=colors.dtype, device=colors.device)
    return torch.cdist(colors, entries).min(dim=1).values


def nearest_entry(colors: Tensor, palette: Sequence[Sequence[float]]) -> Tensor:
    """Index of the nearest palette entry of each colour (B, 3), (B,)."""
    entries = torch.tensor(palette, dtype=colors.dtype, device=colors.device)
    return torch.cdist(colors, entries).argmin(dim=1)


def looks_like_target(
    translations: Tensor,
    input_masks: Tensor,
    source_background: Sequence[float],
    target_background: Sequence[float],
    source_palette: Sequence[Sequence[float]],
    target_palette: Sequence[Sequence[float]],
) -> Tensor:
    """Per image (B,) bool: the background is nearer the target domain's than the source's, and the
    object colour (mean over the object pixels found inside the input's object mask) is nearer a
    target colour mode than any source mode."""
    background = border_color(translations)
    background_ok = palette_distance(background, [target_background]) < palette_distance(
        background, [source_background]
    )
    objects = mean_color(translations, segment_objects(translations) & input_masks)
    object_ok = palette_distance(objects, target_palette) < palette_distance(objects, source_palette)
    return background_ok & object_ok  # NaN colours (no object found) compare False


def mode_coverage(
    translations: Tensor,
    input_masks: Tensor,
    source_background: Sequence[float],
    target_background: Sequence[float],
    source_palette: Sequence[Sequence[float]],
    target_palette: Sequence[Sequence[float]],
) -> Tensor:
    """Per input (B,), the fraction of the target colour modes that its k translations produce.

    `translations` is (B, k, 3, H, W): k translations of each input with sampled styles. A
    translation produces the mode nearest its object colour, and only when it passes
    `looks_like_target` (a source-coloured or empty output produces none).
    """
    batch, k = translations.shape[:2]
    flat = translations.flatten(0, 1)
    masks = input_masks.repeat_interleave(k, dim=0)
    valid = looks_like_target(
        flat, masks, source_background, target_background, source_palette, target_palette
    )
    colors = mean_color(flat, segment_objects(flat) & masks)
    modes = nearest_entry(colors.nan_to_num(), target_palette)
    produced = torch.zeros(batch * k, len(target_palette), dtype=torch.bool, device=flat.device)
    produced[torch.arange(batch * k), modes] = valid
    return produced.view(batch, k, -1).any(dim=1).float().mean(dim=1)


# --- shapes_geometry: which shape each object became, and where --------------------------------
# A filled axis-aligned square fills its bounding box (fill ratio 1), a disc pi/4 = 0.785 of it;
# a small disc whose one-pixel tips fall outside the box (`object_extent`) fills up to ~0.93 of it.
SQUARE_MIN_FILL = 0.9
ROUND_FILL = (0.65, 0.95)
MAX_ASPECT = 1.25  # a bounding box longer than this on one side is no square or circle
EXTENT_MIN_SHARE = 0.2


class Placed(Protocol):
    """An object of the ground truth: centre (x, y) in pixels (pixel i spans [i, i + 1)) and radius."""

    cx: float
    cy: float
    radius: float


def label_components(masks: Tensor) -> Tensor:
    """8-connected components of (B, H, W) bool masks: (B, H, W) int64 labels, 0 for background.

    Every pixel starts with its own label and takes the largest label of its 3x3 neighbourhood until
    nothing changes, so each component ends up labelled by its largest pixel index (plus one).
    """
    height, width = masks.shape[-2:]
    index = torch.arange(1, height * width + 1, dtype=torch.float32, device=masks.device).view(height, width)
    labels = torch.where(masks, index, torch.zeros_like(index))
    while True:
        grown = torch.where(masks, F.max_pool2d(labels[:, None], 3, stride=1, padding=1)[:, 0], labels)
        if torch.equal(grown, labels):
            return labels.long()
        labels = grown


def object_extent(blob: Tensor) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), inclusive, of an object mask (H, W) bool, counting only rows and
    columns that hold at least EXTENT_MIN_SHARE of the fullest one: the anti-aliased edge of a
    shape adds a few stray pixels to the segmentation, which must not widen its box. None when
    the object is smaller than 3 x 3 pixels."""
    bounds = []
    for counts in (blob.sum(dim=1), blob.sum(dim=0)):
        kept = (counts >= EXTENT_MIN_SHARE * counts.max()).nonzero()[:, 0]
        if len(kept) == 0 or kept[-1] - kept[0] < 2:
            return None
        bounds += [int(kept[0]), int(kept[-1])]
    return bounds[0], bounds[1], bounds[2], bounds[3]


def classify_shape(blob: Tensor) -> str:
    """ "square", "circle" or "other" for one object mask (H, W) bool, from its box (`object_extent`).

    Fill ratio: object pixels in the box over its area (square 1, disc 0.785-0.93, ROUND_FILL).
    Corner test, which tells the two apart where the fill ratios meet: each 2 x 2 patch in a corner
    of the box holds >= 2 object pixels for a square (the box may end in a half-covered edge row or
    column) and <= 1 for a disc (the box corner lies sqrt(2) - 1 = 0.41 radii outside it). A box
    much longer than wide is neither.
    """
    extent = object_extent(blob)
    if extent is None:
        return "other"
    top, bottom, left, right = extent
    box = blob[top : bottom + 1, left : right + 1].float()
    height, width = box.shape
    if max(height, width) > MAX_ASPECT * min(height, width):
        return "other"
    fill = box.mean().item()
    ends = (slice(0, 2), slice(-2, None))
    corners = [box[rows, cols].sum().item() for rows in ends for cols in ends]
    if fill >= SQUARE_MIN_FILL and all(c >= 2 for c in corners):
        return "square"
    if ROUND_FILL[0] <= fill < ROUND_FILL[1] and all(c <= 1 for c in corners):
        return "circle"
    return "other"


def measure_objects(images: Tensor, layouts: Sequence[Sequence[Placed]]) -> tuple[list[str], list[float]]:
    """For every ground-truth object of every image (B, 3, H, W) in [0, 1]: the shape of the object
    found at its place, and the distance in pixels from that object's centroid to the true centre.

    The object found is the connected component covering most object pixels within half a radius
    of the true centre. An object that vanished (no such pixel) is "missing" and counts as one
    radius away: its error is as large as the object itself.
    """
    labels = label_components(segment_objects(images))
    height, width = labels.shape[-2:]
    ys = torch.arange(height, dtype=torch.float32).view(-1, 1) + 0.5
    xs = torch.arange(width, dtype=torch.float32).view(1, -1) + 0.5
    shapes, errors = [], []
    for image_labels, layout in zip(labels.cpu(), layouts):
        for placement in layout:
            near = ((xs - placement.cx) ** 2 + (ys - placement.cy) ** 2 <= (placement.radius / 2) ** 2) & (
                image_labels > 0
            )
            if not near.any():
                shapes.append("missing")
                errors.append(placement.radius)
                continue
            blob = image_labels == image_labels[near].mode().values
            weight = blob.float() / blob.sum()
            cx, cy = (weight * xs).sum().item(), (weight * ys).sum().item()
            shapes.append(classify_shape(blob))
            errors.append(math.hypot(cx - placement.cx, cy - placement.cy))
    return shapes, errors


def erode(masks: Tensor, pixels: int = 1) -> Tensor:
    """Boolean masks (B, H, W) shrunk by `pixels` (square neighbourhood)."""
    return ~dilate(~masks, pixels)


def dilate(masks: Tensor, pixels: int = 1) -> Tensor:
    """Boolean masks (B, H, W) grown by `pixels` (square neighbourhood)."""
    grown = torch.nn.functional.max_pool2d(masks[:, None].float(), 2 * pixels + 1, stride=1, padding=pixels)
    return grown[:, 0] > 0


def recoloured(
    translations: Tensor, input_masks: Tensor, input_colors: Tensor, exemplar_colors: Tensor
) -> Tensor:
    """Per image (B,) bool: the mean colour of the translation inside the input's objects (eroded by
    1 px, away from anti-aliased edges) is nearer the exemplar's object colour than the input's.
    Colours (B, 3) in [0, 1]."""
    colors = mean_color(translations, erode(input_masks))
    return (colors - exemplar_colors).norm(dim=1) < (colors - input_colors).norm(dim=1)  # NaN compares False


def background_error(translations: Tensor, inputs: Tensor, input_masks: Tensor) -> Tensor:
    """Per image (B,): mean absolute difference between translation and input, in [0, 1] units, over
    the input's background pixels farther than 1 px from any object (edge pixels mix both colours)."""
    background = (~dilate(input_masks))[:, None].float()
    error = ((translations - inputs).abs() * background).flatten(1).sum(1)
    return error / (3 * background.flatten(1).sum(1)).clamp(min=1)
