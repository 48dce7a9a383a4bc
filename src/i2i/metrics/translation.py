"""Batched translation for scoring: a model's translation over many images, a chunk at a time."""

from collections.abc import Callable

import torch
from torch import Tensor


def translate_in_chunks(
    translate: Callable[..., Tensor], images: Tensor, device: torch.device, chunk: int = 16, **options: Tensor
) -> Tensor:
    """`translate(x, **options)` over `images`, `chunk` images at a time on `device`; returns the
    translations in [0, 1] on the CPU. `translate` is one of a model's abilities (`i2i.abilities`),
    e.g. `model.translate_like`; each option holds one row per image (e.g. exemplars) and is chunked
    with the images."""
    outputs = []
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].to(device)
        chunk_options = {k: v[start : start + chunk].to(device) for k, v in options.items()}
        outputs.append(translate(x, **chunk_options).float().cpu())
    return (torch.cat(outputs).clamp(-1, 1) + 1) / 2
