"""Anti-aliased down- and up-sampling by a fixed binomial blur (Zhang, "Making Convolutional Networks
Shift-Invariant Again", ICML 2019), as CUT's generator and discriminator use them
(`taesungp/contrastive-unpaired-translation:models/networks.py`, `no_antialias` false by default).

A strided conv becomes a stride-1 conv followed by `BlurDownsample`; a transposed conv becomes
`BlurUpsample` followed by a stride-1 conv. The filters are constants (non-persistent buffers): they
add no weights and no checkpoint entries.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def binomial_filter(size: int) -> Tensor:
    """The normalised 2-D binomial filter of side `size` (outer product of a row of Pascal's triangle)."""
    row = torch.tensor([float(math.comb(size - 1, k)) for k in range(size)])
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class BlurDownsample(nn.Module):
    """Halves the side: reflection padding 1, then the 3x3 binomial filter with stride 2, per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("kernel", binomial_filter(3).expand(channels, 1, 3, 3).clone(), persistent=False)
        self.pad = nn.ReflectionPad2d(1)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(self.pad(x), self.kernel.to(x.dtype), stride=2, groups=x.shape[1])

    @staticmethod
    def output_size(size: int) -> int:
        """Side of the output for a `size` x `size` input; 0 where reflection padding cannot take it."""
        return (size - 1) // 2 + 1 if size >= 2 else 0


class BlurUpsample(nn.Module):
    """Doubles the side: replication padding 1, then a stride-2 transposed conv with the 4x4 binomial
    filter (scaled by 4, so a constant image stays constant), cropped to exactly twice the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        kernel = binomial_filter(4) * 4
        self.register_buffer("kernel", kernel.expand(channels, 1, 4, 4).clone(), persistent=False)
        self.pad = nn.ReplicationPad2d(1)

    def forward(self, x: Tensor) -> Tensor:
        up = F.conv_transpose2d(self.pad(x), self.kernel.to(x.dtype), stride=2, padding=2, groups=x.shape[1])
        return up[:, :, 1:-1, 1:-1]
