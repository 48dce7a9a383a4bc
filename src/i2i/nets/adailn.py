"""Style-conditioned norm of U-GAT-IT (Kim et al., ICLR 2020, Eq. 1): adaptive instance-layer norm.

AdaILN(x, gamma, beta) = gamma * (rho * IN(x) + (1 - rho) * LN(x)) + beta, with gamma and beta
computed per sample by the generator's MLP and rho learned per channel. The maths (fused
statistics, biased variances, rho clipping) is `i2i.nets.norms.RhoMixedNorm`, shared with ILN.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from i2i.nets.blocks import ConvBlock
from i2i.nets.norms import RhoMixedNorm

# official PyTorch `adaILN`; the TF code starts rho at 1.0 and uses clip(rho - 0.1), also 0.9
ADAILN_RHO_INIT = 0.9


class AdaILN(RhoMixedNorm):
    """rho initialised to 0.9; `forward(x, gamma, beta)` with gamma and beta of shape (B, C)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__(channels, rho=ADAILN_RHO_INIT, eps=eps)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        return self.mixed(x, gamma, beta)


class AdaILNResidualBlock(nn.Module):
    """x + [conv3-AdaILN-ReLU, conv3-AdaILN](x), both norms fed the same gamma and beta
    (official `ResnetAdaILNBlock`; reflection padding, no conv bias there)."""

    def __init__(self, channels: int, *, bias: bool = False) -> None:
        super().__init__()
        self.conv1 = ConvBlock(channels, channels, 3, 1, 1, activation="none", pad_type="reflect", bias=bias)
        self.norm1 = AdaILN(channels)
        self.conv2 = ConvBlock(channels, channels, 3, 1, 1, activation="none", pad_type="reflect", bias=bias)
        self.norm2 = AdaILN(channels)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        out = F.relu(self.norm1(self.conv1(x), gamma, beta))
        return x + self.norm2(self.conv2(out), gamma, beta)
