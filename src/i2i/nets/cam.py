"""The class activation map (CAM) attention head of U-GAT-IT (Kim et al., ICLR 2020, §2.1).

An auxiliary classifier scores a feature map twice, from its global average pool and from its
global max pool (one linear logit each, no bias). The weight vector of each logit then re-weights
the feature channels: channels that tell the domains apart are amplified, so later layers attend to
the regions that matter. The two re-weighted maps are concatenated and fused by a 1x1 conv. The
generator (ReLU) and the discriminators (LeakyReLU 0.2, spectral-norm logits) share this head.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as spectral_normed

from i2i.nets.blocks import make_activation


class CAM(nn.Module):
    """Returns (features, cam_logit (B, 2) = [GAP logit, GMP logit], heatmap (B, 1, H, W)).

    The heatmap is the channel sum of the fused features, as in the official code. Computation:
    conv1x1([x * w_gap, x * w_gmp]) equals conv1x1 with the weight W[:, :C] * w_gap + W[:, C:] * w_gmp
    applied to x itself, so the re-weighting is folded into the 1x1 kernel: half the conv FLOPs and no
    2C-channel tensor, identical values and gradients. The parameters keep the official shapes.

    With `spectral_norm` the re-weighting uses the normalised logit weights, the same vectors the
    logits use (official TF `fully_connected_with_w`); the official PyTorch code re-weights with the
    un-normalised `weight_orig` (research/ugatit_others.md §1.3).
    """

    def __init__(self, channels: int, *, activation: str, spectral_norm: bool) -> None:
        super().__init__()
        self.gap_fc = nn.Linear(channels, 1, bias=False)
        self.gmp_fc = nn.Linear(channels, 1, bias=False)
        if spectral_norm:
            self.gap_fc, self.gmp_fc = spectral_normed(self.gap_fc), spectral_normed(self.gmp_fc)
        self.conv1x1 = nn.Conv2d(2 * channels, channels, 1, bias=True)  # not spectral-normed (official)
        self.activation = make_activation(activation)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # each weight is read once: under spectral norm every read runs a power iteration
        w_gap, w_gmp = self.gap_fc.weight, self.gmp_fc.weight  # (1, C)
        gap_logit = F.linear(x.mean(dim=(2, 3)), w_gap)
        gmp_logit = F.linear(x.amax(dim=(2, 3)), w_gmp)
        channels = x.shape[1]
        kernel = self.conv1x1.weight[:, :, 0, 0]
        fused = kernel[:, :channels] * w_gap + kernel[:, channels:] * w_gmp
        x = self.activation(F.conv2d(x, fused[..., None, None], self.conv1x1.bias))
        return x, torch.cat([gap_logit, gmp_logit], dim=1), x.sum(dim=1, keepdim=True)


def heatmap_rgb(maps: Tensor) -> Tensor:
    """Attention maps (B, 1, H, W) in [0, 1] as (B, 3, H, W) images in [-1, 1], in the jet colour map
    the official U-GAT-IT strips use (blue = low, red = high), so they sit in image grids."""
    x = maps.float().clamp(0, 1)
    rgb = torch.cat([1.5 - (4 * x - centre).abs() for centre in (3, 2, 1)], dim=1).clamp(0, 1)
    return rgb * 2 - 1
