"""Conv, transposed-conv and residual blocks with configurable padding, norm and activation."""

from torch import Tensor, nn

from i2i.errors import check_choice
from i2i.nets.norms import make_norm

PADDINGS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}


def make_activation(kind: str) -> nn.Module:
    """The activation called `kind`: relu, lrelu (slope 0.2), lrelu001 (slope 0.01), tanh or none."""
    activations = {
        "relu": lambda: nn.ReLU(inplace=True),
        "lrelu": lambda: nn.LeakyReLU(0.2, inplace=True),
        "lrelu001": lambda: nn.LeakyReLU(0.01, inplace=True),
        "tanh": nn.Tanh,
        "none": nn.Identity,
    }
    check_choice("activation", kind, activations)
    return activations[kind]()


class ConvBlock(nn.Sequential):
    """pad -> conv -> norm -> activation, the unit every generator and discriminator is built from."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        *,
        norm: str = "none",
        activation: str = "relu",
        pad_type: str = "zero",
        bias: bool = True,
    ) -> None:
        check_choice("pad_type", pad_type, PADDINGS)
        # zero padding is done by the conv itself (no extra copy); other modes need their own layer
        inner_padding = padding if pad_type == "zero" else 0
        super().__init__(
            PADDINGS[pad_type](padding) if padding and pad_type != "zero" else nn.Identity(),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, inner_padding, bias=bias),
            make_norm(norm, out_channels),
            make_activation(activation),
        )


class ConvTransposeBlock(nn.Sequential):
    """Transposed conv (x2 up-sampling with k3 s2 p1 op1) -> norm -> activation (CycleGAN's decoder)."""

    def __init__(
        self, in_channels: int, out_channels: int, *, norm: str, activation: str = "relu", bias: bool = True
    ) -> None:
        super().__init__(
            nn.ConvTranspose2d(
                in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=bias
            ),
            make_norm(norm, out_channels),
            make_activation(activation),
        )


class ResidualBlock(nn.Module):
    """x + [conv3-norm-act, conv3-norm](x): the residual block of CycleGAN, UNIT and MUNIT.

    No activation after the second conv, as in the official ResnetBlock and MUNIT ResBlock.
    """

    def __init__(
        self, channels: int, *, norm: str, activation: str = "relu", pad_type: str = "reflect", bias: bool = True
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBlock(channels, channels, 3, 1, 1, norm=norm, activation=activation, pad_type=pad_type, bias=bias),
            ConvBlock(channels, channels, 3, 1, 1, norm=norm, activation="none", pad_type=pad_type, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)
