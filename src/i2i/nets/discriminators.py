"""Convolutional discriminators shared by the models."""

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as spectral_normed

from i2i.errors import ConfigError
from i2i.nets.antialias import BlurDownsample
from i2i.nets.blocks import ActFirstResidualBlock, ConvBlock, PreNormResidualBlock, make_activation
from i2i.nets.cam import CAM


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN of pix2pix/CycleGAN (`n_layers=3`): one real/fake logit per patch.

    C64 (no norm) -> `n_layers - 1` stride-2 convs doubling the width (capped at 8x) -> one stride-1
    conv -> a 1-channel conv; every conv k4 p1 with LeakyReLU 0.2 (official `NLayerDiscriminator`).
    `antialias` (CUT's default, off for CycleGAN): each stride-2 conv is a stride-1 conv followed by
    a blur down-sampling (`i2i.nets.antialias.BlurDownsample`), the weights unchanged.
    """

    def __init__(self, *, in_channels: int = 3, ndf: int, n_layers: int, norm: str, antialias: bool) -> None:
        super().__init__()
        bias = norm != "bn"

        def strided(c_in: int, c_out: int, **options: Any) -> list[nn.Module]:
            if antialias:
                return [ConvBlock(c_in, c_out, 4, 1, 1, activation="lrelu", **options), BlurDownsample(c_out)]
            return [ConvBlock(c_in, c_out, 4, 2, 1, activation="lrelu", **options)]

        layers: list[nn.Module] = strided(in_channels, ndf)
        width = 1
        for n in range(1, n_layers + 1):
            previous, width = width, min(2**n, 8)
            if n < n_layers:
                layers += strided(ndf * previous, ndf * width, norm=norm, bias=bias)
            else:
                layers.append(
                    ConvBlock(ndf * previous, ndf * width, 4, 1, 1, norm=norm, activation="lrelu", bias=bias)
                )
        layers.append(ConvBlock(ndf * width, 1, 4, 1, 1, activation="none"))
        self.model = nn.Sequential(*layers)

    def output_size(self, size: int) -> int:
        """Side of the patch map for a `size` x `size` input."""
        for layer in self.model.modules():
            if isinstance(layer, nn.Conv2d):
                size = (size + 2 * layer.padding[0] - layer.kernel_size[0]) // layer.stride[0] + 1
            elif isinstance(layer, BlurDownsample):
                size = layer.output_size(size)
        return size

    def check_input_size(self, size: int) -> None:
        """Refuse an image size too small for the discriminator's depth, naming the minimum."""
        if self.output_size(size) < 1:
            minimum = next(s for s in range(size, 4096) if self.output_size(s) >= 1)
            raise ConfigError("data.image_size", size, f"this discriminator needs at least {minimum} px")

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class MultiScaleDiscriminator(nn.Module):
    """MUNIT/UNIT's multi-scale discriminator (`NVlabs/MUNIT:networks.py MsImageDis`).

    `num_scales` patch discriminators with separate weights; each sees the image down-sampled once
    more than the previous one by `AvgPool2d(3, stride=2, padding=1, count_include_pad=False)`.
    Each is a k4 s2 conv to `dim` (no norm), `n_layer - 1` k4 s2 convs doubling the width (with
    `norm`), every one followed by `activation`, then a 1x1 conv to one channel. `forward` returns
    the list of patch maps, finest first; the models sum their terms over them, as the
    original `calc_dis_loss`/`calc_gen_loss` do.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        dim: int,
        n_layer: int,
        num_scales: int,
        norm: str,
        activation: str,
        pad_type: str,
    ) -> None:
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.cnns = nn.ModuleList(
            self._scale(in_channels, dim, n_layer, norm, activation, pad_type) for _ in range(num_scales)
        )

    @staticmethod
    def _scale(
        in_channels: int, dim: int, n_layer: int, norm: str, activation: str, pad_type: str
    ) -> nn.Sequential:
        layers: list[nn.Module] = [
            ConvBlock(in_channels, dim, 4, 2, 1, activation=activation, pad_type=pad_type)
        ]
        for _ in range(n_layer - 1):
            layers.append(
                ConvBlock(dim, dim * 2, 4, 2, 1, norm=norm, activation=activation, pad_type=pad_type)
            )
            dim *= 2
        layers.append(nn.Conv2d(dim, 1, 1))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for i, cnn in enumerate(self.cnns):
            if i:
                x = self.downsample(x)
            outputs.append(cnn(x))
        return outputs

    def fits(self, size: int) -> bool:
        """Whether every scale can score a `size` x `size` image: reflection padding needs an input
        wider than the pad, and every conv must leave at least one pixel."""
        for cnn in self.cnns:
            side = size
            for block in cnn[:-1]:
                pad, conv = block[0], block[1]
                padding = conv.padding[0] if isinstance(pad, nn.Identity) else pad.padding[0]
                if not isinstance(pad, (nn.Identity, nn.ZeroPad2d)) and padding >= side:
                    return False
                side = (side + 2 * padding - conv.kernel_size[0]) // conv.stride[0] + 1
                if side < 1:
                    return False
            size = (size - 1) // 2 + 1  # the average pooling between scales
        return True

    def check_input_size(self, size: int) -> None:
        """Refuse an image size too small for the coarsest scale, naming the minimum."""
        if not self.fits(size):
            minimum = next(s for s in range(size, 4096) if self.fits(s))
            why = f"the {len(self.cnns)}-scale discriminator needs at least {minimum} px"
            raise ConfigError("data.image_size", size, why)


def _act_first_stages(
    *, in_channels: int, nf: int, max_channels: int, n_stages: int, shortcut_bias: bool
) -> tuple[nn.Sequential, int]:
    """The residual trunk of both FUNIT discriminators and its output width: c7s1-nf (no activation),
    then `n_stages` x [ActFirst(nf, nf), ActFirst(nf, min(2 nf, max_channels))], with reflection
    padding 1 and 3x3 stride-2 average pooling between stages (not after the last)."""
    layers: list[nn.Module] = [ConvBlock(in_channels, nf, 7, 1, 3, activation="none", pad_type="reflect")]
    for stage in range(n_stages):
        out = min(2 * nf, max_channels)
        layers += [
            ActFirstResidualBlock(nf, nf, shortcut_bias=shortcut_bias),
            ActFirstResidualBlock(nf, out, shortcut_bias=shortcut_bias),
        ]
        if stage < n_stages - 1:
            layers += [nn.ReflectionPad2d(1), nn.AvgPool2d(3, stride=2)]
        nf = out
    return nn.Sequential(*layers), nf


def _check_stage_sizes(image_size: int, n_stages: int) -> None:
    """Refuse an image size whose last stage would be narrower than its 3x3 reflection-padded convs
    allow (2 px), naming the minimum."""

    def fits(size: int) -> bool:
        for _ in range(n_stages - 1):
            size = (size - 1) // 2 + 1  # reflection pad 1, then 3x3 stride-2 pooling
        return size >= 2

    if not fits(image_size):
        minimum = next(s for s in range(image_size, 1 << 16) if fits(s))
        raise ConfigError(
            "data.image_size", image_size, f"a discriminator of {n_stages} stages needs at least {minimum} px"
        )


class GPPatchMcResDis(nn.Module):
    """FUNIT's multi-task patch discriminator (`NVlabs/FUNIT:networks.py GPPatchMcResDis`).

    `n_res_blocks / 2` stages of activation-first residual blocks (bias-free learned shortcuts),
    then LeakyReLU 0.2 and a 1x1 conv with one output channel per training class. `forward(x, y)`
    returns the score map of each image's own class, channel y[i] of image i, (B, h, w), and the
    global-average-pooled trunk features (B, C) on which FUNIT's feature matching is computed.
    Official: nf 64, 10 blocks (5 stages, 64 -> 1024 channels), 119 classes: 54,252,599 weights.
    """

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, nf: int, n_res_blocks: int, max_channels: int
    ) -> None:
        super().__init__()
        if n_res_blocks < 2 or n_res_blocks % 2:
            raise ConfigError(
                "model.discriminator.n_res_blocks", n_res_blocks, "must be a positive even number"
            )
        self.n_stages = n_res_blocks // 2
        self.features, channels = _act_first_stages(
            in_channels=in_channels,
            nf=nf,
            max_channels=max_channels,
            n_stages=self.n_stages,
            shortcut_bias=False,
        )
        # not in place: the trunk features are also returned for feature matching
        self.head = nn.Sequential(
            make_activation("lrelu", inplace=False), nn.Conv2d(channels, num_classes, 1)
        )

    def check_input_size(self, size: int) -> None:
        _check_stage_sizes(size, self.n_stages)

    def forward(self, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(x)
        scores = self.head(features)
        picked = scores[torch.arange(len(scores), device=scores.device), labels]
        return picked, features.mean(dim=(2, 3))


class ProjectionResDiscriminator(nn.Module):
    """imaginaire's FUNIT and COCO-FUNIT discriminator (`imaginaire/discriminators/funit.py
    ResDiscriminator`), a projection discriminator (research/nvidia.md §0 item 6, §1.7).

    The trunk of `GPPatchMcResDis` with `n_layers` stages and biased learned shortcuts; head
    LeakyReLU 0.2 + 1x1 conv to one channel, plus the projection <embed(y), GAP(features)> added to
    every patch. Spectral norm on every conv (not the embedding) when `spectral_norm`. `forward(x, y)`
    returns (scores (B, 1, h, w), GAP features (B, C)). Official: nf 64, 6 layers, max 1024 channels.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        nf: int,
        max_channels: int,
        n_layers: int,
        spectral_norm: bool,
    ) -> None:
        super().__init__()
        self.n_stages = n_layers
        self.features, channels = _act_first_stages(
            in_channels=in_channels, nf=nf, max_channels=max_channels, n_stages=n_layers, shortcut_bias=True
        )
        self.head = nn.Sequential(make_activation("lrelu", inplace=False), nn.Conv2d(channels, 1, 1))
        self.embedding = nn.Embedding(num_classes, channels)
        if spectral_norm:
            for conv in [
                m for m in (*self.features.modules(), *self.head.modules()) if isinstance(m, nn.Conv2d)
            ]:
                spectral_normed(conv)

    def check_input_size(self, size: int) -> None:
        _check_stage_sizes(size, self.n_stages)

    def forward(self, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(x)
        pooled = features.mean(dim=(2, 3))
        projection = (self.embedding(labels) * pooled).sum(dim=1)
        return self.head(features) + projection.view(-1, 1, 1, 1), pooled


# The shallowest CAM discriminator: one stride-2 conv, the stride-1 conv, the output conv.
MIN_CAM_LAYERS = 3


def depth_for_size(n_layers: int, reference_size: int | None, image_size: int) -> int:
    """`n_layers` at `reference_size`, one layer fewer per halving of the image below it (rounded
    down: 256 -> 128 px drops one, 256 -> 64 px two), so the receptive field keeps its share of the
    image; never fewer than MIN_CAM_LAYERS. `reference_size=None` keeps `n_layers` at every size."""
    if reference_size is None or image_size >= reference_size:
        return n_layers
    halvings = (reference_size // image_size).bit_length() - 1
    return max(MIN_CAM_LAYERS, n_layers - halvings)


def _spectral(block: ConvBlock) -> ConvBlock:
    spectral_normed(block[1])
    return block


class CAMDiscriminator(nn.Module):
    """U-GAT-IT's discriminator (official `Discriminator(n_layers)`): spectral-norm convs k4 with
    reflection padding and LeakyReLU 0.2 — `n_layers - 2` of stride 2 doubling the width from `ndf`,
    then one of stride 1 — then the CAM head (spectral-norm logits) and a spectral-norm k4 conv to
    one channel. forward returns (patch logits, cam_logit (B, 2)).

    The official global discriminator has 7 layers (receptive field 286 px) and the local one 5
    (70 px), for 256 px images; at 64 px the 7-layer one reaches a 1x1 map and its padding fails.
    So the depth follows the image size (`depth_for_size`): with `reference_size` 256, 64 px
    images get 5 and 3 layers (receptive fields 70 and 16 px, the official shares of the image).
    """

    def __init__(
        self, *, in_channels: int = 3, ndf: int, n_layers: int, reference_size: int | None, image_size: int
    ) -> None:
        super().__init__()
        if n_layers < MIN_CAM_LAYERS:
            raise ConfigError(
                "n_layers", n_layers, f"a CAM discriminator has at least {MIN_CAM_LAYERS} layers"
            )
        self.n_layers = depth_for_size(n_layers, reference_size, image_size)
        conv = lambda c_in, c_out, stride: _spectral(
            ConvBlock(c_in, c_out, 4, stride, 1, activation="lrelu", pad_type="reflect")
        )
        layers = [conv(in_channels, ndf, 2)]
        layers += [conv(ndf * 2 ** (i - 1), ndf * 2**i, 2) for i in range(1, self.n_layers - 2)]
        channels = ndf * 2 ** (self.n_layers - 2)
        layers.append(conv(channels // 2, channels, 1))
        self.features = nn.Sequential(*layers)
        self.cam = CAM(channels, activation="lrelu", spectral_norm=True)
        self.head = _spectral(
            ConvBlock(channels, 1, 4, 1, 1, activation="none", pad_type="reflect", bias=False)
        )

    def output_size(self, size: int) -> int:
        """Side of the logit map for a `size` x `size` input; 0 where a layer cannot take its input
        (a reflection pad needs an input wider than the padding)."""
        for layer in (*self.features.modules(), *self.head.modules()):
            if isinstance(layer, nn.ReflectionPad2d):
                if layer.padding[0] >= size:
                    return 0
                size += 2 * layer.padding[0]
            elif isinstance(layer, nn.Conv2d):
                size = (size + 2 * layer.padding[0] - layer.kernel_size[0]) // layer.stride[0] + 1
                if size < 1:
                    return 0
        return size

    def minimum_input_size(self) -> int:
        return next(s for s in range(1, 1 << 16) if self.output_size(s) >= 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x, cam_logit, _ = self.cam(self.features(x))
        return self.head(x), cam_logit


class AttributeDiscriminator(nn.Module):
    """StarGAN's discriminator as LOMIT uses it (`AnonymousIclrAuthor/Highway-Adaptive-Instance-
    Normalization:model.py Discriminator`): a real/fake critic and a multi-label attribute classifier.

    `n_layers` k4 s2 convs doubling the width from `ndf` (LeakyReLU 0.01, no norm, reflection
    padding as that code), then two heads on the final (image_size / 2**n_layers)^2 map: a 3x3 conv
    to one score per patch, and a conv spanning the whole map to `num_attributes` logits.
    `forward(x)` returns (scores (B, 1, h, w), logits (B, num_attributes)).
    """

    def __init__(self, *, image_size: int, num_attributes: int, ndf: int, n_layers: int) -> None:
        super().__init__()
        final = image_size // 2**n_layers
        # the 3x3 head's reflection padding needs a final map of at least 2x2
        if image_size % 2**n_layers or final < 2:
            raise ConfigError(
                "data.image_size",
                image_size,
                f"this discriminator (n_layers={n_layers}) needs a multiple of {2**n_layers} that is "
                f"at least {2 ** (n_layers + 1)}",
            )
        if num_attributes < 1:
            raise ConfigError("num_attributes", num_attributes, "the attribute head needs an attribute")
        layers, channels = [], 3
        for i in range(n_layers):
            layers.append(ConvBlock(channels, ndf * 2**i, 4, 2, 1, activation="lrelu001", pad_type="reflect"))
            channels = ndf * 2**i
        self.main = nn.Sequential(*layers)
        self.source = ConvBlock(channels, 1, 3, 1, 1, activation="none", pad_type="reflect")
        self.attributes = nn.Conv2d(channels, num_attributes, final)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.main(x)
        return self.source(features), self.attributes(features).flatten(1)


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
        dim: int,
        max_dim: int,
        norm: str,
        activation: str,
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
