"""Exact metrics for the `shapes_*` scenarios, computed from the renderer's ground truth.

Images are float tensors in [0, 1], (B, 3, H, W). Objects are found without knowing the domain: the
background colour is the median of the 2-pixel border (scenarios keep objects off the border) and
an object pixel is one farther than `OBJECT_THRESHOLD` (RGB distance) from it.
"""

from collections.abc import Sequence

import torch
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
