"""Networks that predict soft masks: where an image holds what a translation should change."""

import torch.nn.functional as F
from torch import Tensor, nn

from i2i.nets.blocks import ConvBlock


class CosegmentationMask(nn.Module):
    """LOMIT's co-segmentation network (`AnonymousIclrAuthor/Highway-Adaptive-Instance-Normalization:
    model.py`, `Mask` and `Coseg_Attention`): a soft mask over `content`, attended by `other`.

    A channel attention from the other image's code, a = sigmoid(W2 tanh(W1 GAP(other))) with a
    2C-wide hidden layer (the official width), scales the content code; then `n_layers` conv3-norm-
    ReLU (reflection padding; BN in the official code) and a 1x1 conv with a sigmoid give a
    (B, 1, h, w) mask in [0, 1] at the content code's resolution. The attention is what makes the
    segmentation joint: the input's mask picks the regions that share features with the exemplar.
    """

    def __init__(self, *, channels: int, n_layers: int, norm: str) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(channels, 2 * channels), nn.Tanh(), nn.Linear(2 * channels, channels), nn.Sigmoid()
        )
        self.body = nn.Sequential(
            *(ConvBlock(channels, channels, 3, 1, 1, norm=norm, pad_type="reflect") for _ in range(n_layers))
        )
        self.out = nn.Conv2d(channels, 1, 1)

    def forward(self, content: Tensor, other: Tensor) -> Tensor:
        attention = self.attention(other.mean(dim=(2, 3)))[..., None, None]
        return self.out(self.body(attention * content)).sigmoid()


def upsample_mask(mask: Tensor, like: Tensor) -> Tensor:
    """`mask` bilinearly resized to the spatial size of `like` (LOMIT's x4 up-sampling of its masks)."""
    return F.interpolate(mask, size=like.shape[-2:], mode="bilinear", align_corners=False)
