"""Convolutional discriminators shared by the models."""

import math

from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.blocks import ConvBlock, PreNormResidualBlock, make_activation


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN of pix2pix/CycleGAN (`n_layers=3`): one real/fake logit per patch.

    C64 (no norm) -> `n_layers - 1` stride-2 convs doubling the width (capped at 8x) -> one stride-1
    conv -> a 1-channel conv; every conv k4 p1 with LeakyReLU 0.2 (official `NLayerDiscriminator`).
    """

    def __init__(self, *, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "in") -> None:
        super().__init__()
        bias = norm != "bn"
        layers: list[nn.Module] = [ConvBlock(in_channels, ndf, 4, 2, 1, activation="lrelu")]
        width = 1
        for n in range(1, n_layers + 1):
            previous, width = width, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers.append(ConvBlock(ndf * previous, ndf * width, 4, stride, 1, norm=norm, activation="lrelu", bias=bias))
        layers.append(ConvBlock(ndf * width, 1, 4, 1, 1, activation="none"))
        self.model = nn.Sequential(*layers)

    def output_size(self, size: int) -> int:
        """Side of the patch map for a `size` x `size` input."""
        for conv in (m for m in self.model.modules() if isinstance(m, nn.Conv2d)):
            size = (size + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
        return size

    def check_input_size(self, size: int) -> None:
        """Refuse an image size too small for the discriminator's depth, naming the minimum."""
        if self.output_size(size) < 1:
            minimum = next(s for s in range(size, 4096) if self.output_size(s) >= 1)
            raise ConfigError("data.image_size", size, f"this discriminator needs at least {minimum} px")

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class MultiDomainDiscriminator(nn.Module):
    """StarGAN v2's discriminator as TUNIT builds it (`clovaai/tunit:models/discriminator.py`): one
    real/fake logit per domain, of which the logit of each image's (pseudo-)domain is used.

    conv3 3 -> dim, then log2(image_size) - 2 stages of two `PreNormResidualBlock`s (the first keeps
    the width, the second doubles it up to `max_dim` and halves the size), leaving 4x4; then LReLU 0.2,
    a valid conv4 to 1x1, LReLU 0.2 and a 1x1 conv to `num_domains` logits. TUNIT: FRN blocks, dim 64
    (32 from 256 px on), max_dim 1024.
    """

    def __init__(
        self,
        *,
        image_size: int,
        num_domains: int,
        dim: int = 64,
        max_dim: int = 1024,
        norm: str = "frn",
        activation: str = "none",
    ) -> None:
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ConfigError("data.image_size", image_size, "this discriminator needs a power of two >= 8")
        layers: list[nn.Module] = [nn.Conv2d(3, dim, 3, 1, 1)]
        for _ in range(int(math.log2(image_size)) - 2):
            out = min(dim * 2, max_dim)
            layers += [
                PreNormResidualBlock(dim, dim, norm=norm, activation=activation),
                PreNormResidualBlock(dim, out, norm=norm, activation=activation, downsample=True),
            ]
            dim = out
        layers += [
            make_activation("lrelu"),
            nn.Conv2d(dim, dim, 4, 1, 0),
            make_activation("lrelu"),
            nn.Conv2d(dim, num_domains, 1, 1, 0),
        ]
        self.model = nn.Sequential(*layers)
        self.num_domains = num_domains

    def logits(self, x: Tensor) -> Tensor:
        """Every domain's logit, (B, num_domains)."""
        return self.model(x).flatten(1)

    def forward(self, x: Tensor, domain: Tensor) -> Tensor:
        """The logit of each image's domain, (B,); `domain` holds indices (B,)."""
        return self.logits(x).gather(1, domain.view(-1, 1)).squeeze(1)
