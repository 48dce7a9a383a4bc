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


class FilterResponseNorm2d(nn.Module):
    """Filter response normalisation with its thresholded linear unit (Singh & Krishnan 2020).

    `max(gamma * x / sqrt(mean_hw(x^2) + eps) + beta, tau)`: per sample and channel, no mean is
    subtracted and no batch statistics are kept; the learned threshold tau makes it the layer's
    activation too. TUNIT's discriminator (`clovaai/tunit:models/blocks.py FRN`): eps 1e-6,
    gamma 1, beta 0, tau 0 at initialisation.
    """

    def __init__(self, num_features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.tau = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + self.eps)
        return torch.maximum(torch.addcmul(self.beta, self.gamma, x), self.tau)


NORMS: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda channels: nn.Identity(),
    "bn": nn.BatchNorm2d,
    "in": lambda channels: nn.InstanceNorm2d(channels, affine=False, track_running_stats=False),
    "in_affine": lambda channels: nn.InstanceNorm2d(channels, affine=True, track_running_stats=False),
    "ln": LayerNorm2d,
    "frn": FilterResponseNorm2d,
}


def make_norm(kind: str, channels: int) -> nn.Module:
    """The normalisation layer called `kind` (one of NORMS) for `channels` feature maps."""
    check_choice("norm", kind, NORMS)
    return NORMS[kind](channels)
