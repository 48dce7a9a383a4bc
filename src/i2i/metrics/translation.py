"""Batched translation for scoring: a model's `translate` over many images, a chunk at a time."""

import torch
from torch import Tensor

from i2i.types import Translator


def translate_in_chunks(
    model: Translator, images: Tensor, direction: str | None, chunk: int = 16, **options
) -> Tensor:
    """Run `model.translate` over `images` in chunks; returns the translations in [0, 1] on the CPU.

    An option that is a tensor with one row per image (e.g. exemplars) is chunked with the images."""
    outputs = []
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].to(model.device)
        chunk_options = options | {
            k: v[start : start + chunk].to(model.device) for k, v in options.items() if _per_image(v, images)
        }
        outputs.append(model.translate(x, direction, **chunk_options).float().cpu())
    return (torch.cat(outputs).clamp(-1, 1) + 1) / 2


def _per_image(option: object, images: Tensor) -> bool:
    return isinstance(option, Tensor) and len(option) == len(images)
