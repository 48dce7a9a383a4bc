"""The networks of DRIT / DRIT++ (Lee et al., ECCV 2018; IJCV 2020), also DUNIT's global branch.

Faithful to `HsinYingLee/DRIT:src/networks.py` (research/ugatit_others.md §4.1). Each class holds the
networks of both domains, A and B, because the official code shares weights across them:
- `ContentEncoders` E^c_A, E^c_B: per domain c7s1 (LeakyReLU 0.01, no norm), `n_downsample` k3 s2
  convs (instance norm, ReLU) and `n_res - 1` residual blocks; then ONE residual block and additive
  N(0, 1) noise (training only) shared by both domains, so both contents land in one space. Call:
  `content_encoders(x, domain)` -> (B, C, H / 2^n_downsample, W / 2^n_downsample).
- `AttributeEncoders` E^a_A, E^a_B: nothing shared. The official default (`--concat 1`, injection
  "concat") is BicycleGAN's variational encoder, returning (mu, logvar); `--concat 0` (injection
  "featurewise") a deterministic conv stack, returning (z, None).
- `Generators` G_A, G_B: "concat" tiles the attribute code and concatenates it to the features before
  each of the residual stack and every up-sampling (after one residual block shared by both
  domains); "featurewise" feeds MLP(z) into every residual block through 1x1 convs (`MisINSResBlock`).
  Call: `generators(content, attribute, domain)` -> images in [-1, 1].
- `ContentDiscriminator`: k7 s2 convs on the content map, a k4 conv, a 1x1 conv to logits.
The image discriminators are `i2i.nets.discriminators.MultiScaleDiscriminator` with LeakyReLU 0.01.

Where the official code fixes a number these classes take it as an argument (the configs write the
official values): widths, depths, the attribute size. The content discriminator's `n_strided` is 3 at
the official 216 px crops; smaller images get as many as fit (`ContentDiscriminator`).
"""

from typing import Literal

import torch
from torch import Tensor, nn

from i2i.errors import ConfigError, check_choice
from i2i.nets.blocks import (
    MLP,
    ActFirstResidualBlock,
    ConvBlock,
    ConvTransposeBlock,
    ResidualBlock,
    make_activation,
)

Domain = Literal["A", "B"]
DOMAINS: tuple[Domain, ...] = ("A", "B")
INJECTIONS = ("concat", "featurewise")
# the up-sampling blocks' layer norm: per sample over (C, H, W), per-channel affine from 1 and 0, as
# the official LayerNorm (F.layer_norm with the affine expanded over H, W)
UP_NORM = "gn1"


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise in training, nothing in evaluation (the official GaussianNoiseLayer)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.std == 0:
            return x
        return x + self.std * torch.randn_like(x)


class ContentEncoders(nn.Module):
    """E^c_A and E^c_B, their last residual block and the noise shared (module docstring)."""

    def __init__(self, *, in_channels: int = 3, dim: int, n_downsample: int, n_res: int, noise_std: float):
        super().__init__()
        if n_res < 1:
            raise ConfigError("model.content_encoder.n_res", n_res, "must be >= 1 (the last block is shared)")
        self.out_channels = dim * 2**n_downsample
        self.downsampling_factor = 2**n_downsample
        self.stems = nn.ModuleDict(
            {domain: self._stem(in_channels, dim, n_downsample, n_res) for domain in DOMAINS}
        )
        self.shared = nn.Sequential(ResidualBlock(self.out_channels, norm="in"), GaussianNoise(noise_std))

    @staticmethod
    def _stem(in_channels: int, dim: int, n_downsample: int, n_res: int) -> nn.Sequential:
        layers = [ConvBlock(in_channels, dim, 7, 1, 3, activation="lrelu001", pad_type="reflect")]
        for _ in range(n_downsample):
            layers.append(ConvBlock(dim, dim * 2, 3, 2, 1, norm="in", activation="relu", pad_type="reflect"))
            dim *= 2
        layers += [ResidualBlock(dim, norm="in") for _ in range(n_res - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor, domain: Domain) -> Tensor:
        """The content map of images `x` of `domain`."""
        return self.shared(self.stems[domain](x))


class VariationalAttributeEncoder(nn.Module):
    """The official `E_attr_concat` of one domain (BicycleGAN's E_ResNet): k4 s2 conv to `dim`, then
    `n_downsample - 1` pre-activation residual blocks (LeakyReLU 0.2, no norm) each halving the size,
    widths dim * min(4, n + 1); LeakyReLU, global average, two linear heads: (mu, logvar).

    The official block pools its residual branch and then adds a pooled-then-1x1 shortcut; pooling
    and a 1x1 conv commute, so `ActFirstResidualBlock` (shortcut with bias) followed by one pool is
    the same function with the same parameters.
    """

    def __init__(self, *, in_channels: int, dim: int, n_downsample: int, attribute_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            ConvBlock(in_channels, dim, 4, 2, 1, activation="none", pad_type="reflect")
        ]
        width = dim
        for n in range(1, n_downsample):
            previous, width = width, dim * min(4, n + 1)
            layers += [
                ActFirstResidualBlock(previous, width, activation="lrelu", shortcut_bias=True),
                nn.AvgPool2d(2),
            ]
        layers += [make_activation("lrelu"), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.mu = nn.Linear(width, attribute_dim)
        self.logvar = nn.Linear(width, attribute_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(x)
        return self.mu(features), self.logvar(features)


class DeterministicAttributeEncoder(nn.Module):
    """The official `E_attr` of one domain (`--concat 0`): c7s1-dim, `n_downsample` k4 s2 convs to
    widths dim * min(4, 2^n) (ReLU, no norm), global average, a 1x1 conv to the code: (z, None)."""

    def __init__(self, *, in_channels: int, dim: int, n_downsample: int, attribute_dim: int) -> None:
        super().__init__()
        layers = [ConvBlock(in_channels, dim, 7, 1, 3, activation="relu", pad_type="reflect")]
        width = dim
        for n in range(1, n_downsample + 1):
            previous, width = width, dim * min(4, 2**n)
            layers.append(ConvBlock(previous, width, 4, 2, 1, activation="relu", pad_type="reflect"))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(width, attribute_dim, 1), nn.Flatten()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        return self.model(x), None


class AttributeEncoders(nn.Module):
    """E^a_A and E^a_B: `forward(x, domain)` -> (mu, logvar) for injection "concat" (variational),
    (z, None) for "featurewise" (deterministic)."""

    def __init__(
        self, *, in_channels: int = 3, injection: str, dim: int, n_downsample: int, attribute_dim: int
    ) -> None:
        super().__init__()
        check_choice("model.injection", injection, INJECTIONS)
        encoder = VariationalAttributeEncoder if injection == "concat" else DeterministicAttributeEncoder
        self.encoders = nn.ModuleDict(
            {
                domain: encoder(
                    in_channels=in_channels, dim=dim, n_downsample=n_downsample, attribute_dim=attribute_dim
                )
                for domain in DOMAINS
            }
        )

    def forward(self, x: Tensor, domain: Domain) -> tuple[Tensor, Tensor | None]:
        return self.encoders[domain](x)


def tiled(features: Tensor, code: Tensor) -> Tensor:
    """`features` (B, C, H, W) with the code (B, D) tiled over H x W appended: (B, C + D, H, W)."""
    b, _, h, w = features.shape
    return torch.cat([features, code.view(b, -1, 1, 1).expand(b, code.size(1), h, w)], dim=1)


class ConcatDecoder(nn.Module):
    """The per-domain part of the official `G_concat`: [content ++ z] -> `n_res` residual blocks ->
    `n_upsample` x ([++ z] -> transposed conv halving the width, layer norm, ReLU) -> [++ z] -> 1x1
    transposed conv -> tanh."""

    def __init__(self, *, channels: int, attribute_dim: int, n_res: int, n_upsample: int, out_channels: int):
        super().__init__()
        width = channels + attribute_dim
        self.res = nn.Sequential(*(ResidualBlock(width, norm="in") for _ in range(n_res)))
        self.ups = nn.ModuleList()
        for _ in range(n_upsample):
            width += attribute_dim
            self.ups.append(ConvTransposeBlock(width, width // 2, norm=UP_NORM))
            width //= 2
        self.out = nn.Sequential(nn.ConvTranspose2d(width + attribute_dim, out_channels, 1), nn.Tanh())

    def forward(self, content: Tensor, attribute: Tensor) -> Tensor:
        x = self.res(tiled(content, attribute))
        for up in self.ups:
            x = up(tiled(x, attribute))
        return self.out(tiled(x, attribute))


class AttributeInjectedResidualBlock(nn.Module):
    """The official `MisINSResBlock`: x + f(x, e) with f = [conv3-IN, ++e, 1x1-ReLU, 1x1-ReLU] twice,
    e (B, E) the block's slice of MLP(z) tiled over the map; the 1x1 convs mix e into the features."""

    def __init__(self, channels: int, extra: int) -> None:
        super().__init__()
        conv = lambda: ConvBlock(
            channels, channels, 3, 1, 1, norm="in", activation="none", pad_type="reflect"
        )
        mix = lambda: nn.Sequential(
            ConvBlock(channels + extra, channels + extra, 1), ConvBlock(channels + extra, channels, 1)
        )
        self.conv1, self.mix1, self.conv2, self.mix2 = conv(), mix(), conv(), mix()

    def forward(self, x: Tensor, extra: Tensor) -> Tensor:
        out = self.mix1(tiled(self.conv1(x), extra))
        return x + self.mix2(tiled(self.conv2(out), extra))


class FeatureWiseDecoder(nn.Module):
    """The per-domain part of the official `G` (`--concat 0`): MLP z -> `n_res` x C codes, `n_res`
    attribute-injected residual blocks, `n_upsample` transposed convs (layer norm, ReLU), a 1x1
    transposed conv and tanh."""

    def __init__(
        self,
        *,
        channels: int,
        attribute_dim: int,
        n_res: int,
        n_upsample: int,
        mlp_dim: int,
        out_channels: int,
    ) -> None:
        super().__init__()
        self.mlp = MLP(
            attribute_dim,
            channels * n_res,
            hidden_dim=mlp_dim,
            n_blocks=3,
            activation="relu",
            final_activation="none",
        )
        self.res = nn.ModuleList(AttributeInjectedResidualBlock(channels, channels) for _ in range(n_res))
        ups: list[nn.Module] = []
        for _ in range(n_upsample):
            ups.append(ConvTransposeBlock(channels, channels // 2, norm=UP_NORM))
            channels //= 2
        self.out = nn.Sequential(*ups, nn.ConvTranspose2d(channels, out_channels, 1), nn.Tanh())

    def forward(self, content: Tensor, attribute: Tensor) -> Tensor:
        codes = self.mlp(attribute).chunk(len(self.res), dim=1)
        x = content
        for block, code in zip(self.res, codes, strict=True):
            x = block(x, code)
        return self.out(x)


class Generators(nn.Module):
    """G_A and G_B (module docstring). `n_res` counts every residual block a content map passes:
    with "concat" the first is shared by both domains (the official `dec_share`) and the other
    `n_res - 1` belong to a domain (officially 1 + 3); with "featurewise" all `n_res` (officially 4)."""

    def __init__(
        self,
        *,
        injection: str,
        content_channels: int,
        attribute_dim: int,
        n_res: int,
        n_upsample: int,
        mlp_dim: int,
        out_channels: int = 3,
    ) -> None:
        super().__init__()
        check_choice("model.injection", injection, INJECTIONS)
        if injection == "concat":
            if n_res < 1:
                raise ConfigError("model.generator.n_res", n_res, "must be >= 1 (the first block is shared)")
            self.shared: nn.Module = ResidualBlock(content_channels, norm="in")
            make = lambda: ConcatDecoder(
                channels=content_channels,
                attribute_dim=attribute_dim,
                n_res=n_res - 1,
                n_upsample=n_upsample,
                out_channels=out_channels,
            )
        else:
            self.shared = nn.Identity()
            make = lambda: FeatureWiseDecoder(
                channels=content_channels,
                attribute_dim=attribute_dim,
                n_res=n_res,
                n_upsample=n_upsample,
                mlp_dim=mlp_dim,
                out_channels=out_channels,
            )
        self.decoders = nn.ModuleDict({domain: make() for domain in DOMAINS})

    def forward(self, content: Tensor, attribute: Tensor, domain: Domain) -> Tensor:
        """Images of `domain` from content maps (B, C, h, w) and attribute codes (B, attribute_dim)."""
        return self.decoders[domain](self.shared(content), attribute.to(content.dtype))


def _strided_side(side: int) -> int:
    """The side after a k7 s2 conv with reflection padding 1 (0 where the padding cannot apply)."""
    return (side + 2 - 7) // 2 + 1 if side > 1 else 0


class ContentDiscriminator(nn.Module):
    """The official `Dis_content`: `n_strided` k7 s2 p1 convs, a k4 conv, a 1x1 conv to one logit per
    position; LeakyReLU 0.01, reflection padding, no norm (the official `norm='Instance'` is never
    applied: its test compares two string literals).

    At the official 216 px crops the 54 px content map leaves the k4 conv a 4 px input after 3
    strided convs, so it scores one logit per image. A smaller map takes as many of the `n_strided`
    as leave the k4 conv at least 4 px (64 px images, a 16 px map: 1), scoring a patch map.
    """

    def __init__(self, *, channels: int, n_strided: int, content_size: int) -> None:
        super().__init__()
        if content_size < 4:
            raise ValueError(f"a content map of {content_size} px is narrower than the k4 conv")
        depth, side = 0, content_size
        while depth < n_strided and _strided_side(side) >= 4:
            depth, side = depth + 1, _strided_side(side)
        self.n_strided = depth
        layers = [
            ConvBlock(channels, channels, 7, 2, 1, activation="lrelu001", pad_type="reflect")
            for _ in range(depth)
        ]
        layers += [ConvBlock(channels, channels, 4, 1, 0, activation="lrelu001"), nn.Conv2d(channels, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, content: Tensor) -> Tensor:
        return self.model(content)
