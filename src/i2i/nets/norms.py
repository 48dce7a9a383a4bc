"""Normalisation layers and the factory that builds them by name.

`make_norm("in", 64)` gives the layer a config names; conv blocks accept the same names.
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from i2i.errors import check_choice


class LayerNorm2d(nn.Module):
    """MUNIT's layer norm: per sample over (C, H, W) with the unbiased std, then a per-channel affine.

    Faithful to `NVlabs/MUNIT:networks.py LayerNorm`: `(x - mean) / (std + eps)` (eps added to the
    std, not the variance), gamma initialised U(0, 1) and beta 0.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:
            self.gamma = nn.Parameter(torch.rand(num_features))
            self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(1)
        mean = flat.mean(1).view(-1, 1, 1, 1)
        std = flat.std(1).view(-1, 1, 1, 1)
        x = (x - mean) / (std + self.eps)
        if self.affine:
            x = x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)
        return x


NORMS: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda channels: nn.Identity(),
    "bn": nn.BatchNorm2d,
    "in": lambda channels: nn.InstanceNorm2d(channels, affine=False, track_running_stats=False),
    "in_affine": lambda channels: nn.InstanceNorm2d(channels, affine=True, track_running_stats=False),
    "ln": LayerNorm2d,
    # PyTorch's layer norm over (C, H, W), affine initialised to 1 and 0: the 'ln' of LOMIT's code
    "gn1": lambda channels: nn.GroupNorm(1, channels),
}


def make_norm(kind: str, channels: int) -> nn.Module:
    """The normalisation layer called `kind` (one of NORMS) for `channels` feature maps."""
    check_choice("norm", kind, NORMS)
    return NORMS[kind](channels)
