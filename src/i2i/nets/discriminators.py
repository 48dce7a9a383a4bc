"""Convolutional discriminators shared by the models."""

from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.blocks import ConvBlock


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


class MultiScaleDiscriminator(nn.Module):
    """MUNIT/UNIT's multi-scale discriminator (`NVlabs/MUNIT:networks.py MsImageDis`).

    `num_scales` patch discriminators with separate weights; each sees the image down-sampled once
    more than the previous one by `AvgPool2d(3, stride=2, padding=1, count_include_pad=False)`.
    Each is a k4 s2 conv to `dim` (no norm), `n_layer - 1` k4 s2 convs doubling the width (with
    `norm`), every one followed by `activation`, then a 1x1 conv to one channel. `forward` returns
    the list of patch maps, finest first; `AdversarialLoss` sums its terms over them, as the
    original `calc_dis_loss`/`calc_gen_loss` do.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        dim: int = 64,
        n_layer: int = 4,
        num_scales: int = 3,
        norm: str = "none",
        activation: str = "lrelu",
        pad_type: str = "reflect",
    ) -> None:
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.cnns = nn.ModuleList(
            self._scale(in_channels, dim, n_layer, norm, activation, pad_type) for _ in range(num_scales)
        )

    @staticmethod
    def _scale(in_channels: int, dim: int, n_layer: int, norm: str, activation: str, pad_type: str) -> nn.Sequential:
        layers: list[nn.Module] = [ConvBlock(in_channels, dim, 4, 2, 1, activation=activation, pad_type=pad_type)]
        for _ in range(n_layer - 1):
            layers.append(ConvBlock(dim, dim * 2, 4, 2, 1, norm=norm, activation=activation, pad_type=pad_type))
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
