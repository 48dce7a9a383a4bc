"""Convolutional discriminators shared by the models."""

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from i2i.errors import ConfigError
from i2i.nets.blocks import ConvBlock
from i2i.nets.cam import CAM


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
    spectral_norm(block[1])
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
        self, *, in_channels: int = 3, ndf: int = 64, n_layers: int, reference_size: int | None, image_size: int
    ) -> None:
        super().__init__()
        if n_layers < MIN_CAM_LAYERS:
            raise ConfigError("n_layers", n_layers, f"a CAM discriminator has at least {MIN_CAM_LAYERS} layers")
        self.n_layers = depth_for_size(n_layers, reference_size, image_size)
        conv = lambda c_in, c_out, stride: _spectral(  # noqa: E731
            ConvBlock(c_in, c_out, 4, stride, 1, activation="lrelu", pad_type="reflect")
        )
        layers = [conv(in_channels, ndf, 2)]
        layers += [conv(ndf * 2 ** (i - 1), ndf * 2**i, 2) for i in range(1, self.n_layers - 2)]
        channels = ndf * 2 ** (self.n_layers - 2)
        layers.append(conv(channels // 2, channels, 1))
        self.features = nn.Sequential(*layers)
        self.cam = CAM(channels, activation="lrelu", spectral_norm=True)
        self.head = _spectral(ConvBlock(channels, 1, 4, 1, 1, activation="none", pad_type="reflect", bias=False))

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
