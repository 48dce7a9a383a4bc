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


class AttributeDiscriminator(nn.Module):
    """StarGAN's discriminator as LOMIT uses it (`AnonymousIclrAuthor/Highway-Adaptive-Instance-
    Normalization:model.py Discriminator`): a real/fake critic and a multi-label attribute classifier.

    `n_layers` k4 s2 convs doubling the width from `ndf` (LeakyReLU 0.01, no norm, reflection
    padding as that code), then two heads on the final (image_size / 2**n_layers)^2 map: a 3x3 conv
    to one score per patch, and a conv spanning the whole map to `num_attributes` logits.
    `forward(x)` returns (scores (B, 1, h, w), logits (B, num_attributes)).
    """

    def __init__(self, *, image_size: int, num_attributes: int, ndf: int = 64, n_layers: int = 6) -> None:
        super().__init__()
        final = image_size // 2**n_layers
        # the 3x3 head's reflection padding needs a final map of at least 2x2
        if image_size % 2**n_layers or final < 2:
            raise ConfigError(
                "data.image_size",
                image_size,
                f"this discriminator (n_layers={n_layers}) needs a multiple of {2**n_layers} that is at least "
                f"{2 ** (n_layers + 1)}",
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
