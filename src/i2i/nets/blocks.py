"""Conv, transposed-conv and residual blocks with configurable padding, norm and activation."""

import math

import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import check_choice
from i2i.nets.norms import make_norm

PADDINGS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}


def make_activation(kind: str, inplace: bool = True) -> nn.Module:
    """The activation called `kind`: relu, lrelu (slope 0.2), lrelu001 (slope 0.01), tanh or none.

    In place by default (saves memory after a conv or norm); pass inplace=False where the input is
    still needed, e.g. the first layer of a residual branch.
    """
    activations = {
        "relu": lambda: nn.ReLU(inplace=inplace),
        "lrelu": lambda: nn.LeakyReLU(0.2, inplace=inplace),
        "lrelu001": lambda: nn.LeakyReLU(0.01, inplace=inplace),
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
    """x + res_scale * [conv3-norm-act, conv3-norm-final_activation](x): the residual block of
    CycleGAN, UNIT, MUNIT and FUNIT (TUNIT scales the residual by 0.1).

    No activation after the second conv (`final_activation="none"`), as in the official ResnetBlock
    and MUNIT ResBlock; imaginaire's `Res2dBlock` (order CNACNA) has one (`final_activation=activation`).
    """

    def __init__(
        self,
        channels: int,
        *,
        norm: str,
        activation: str = "relu",
        final_activation: str = "none",
        pad_type: str = "reflect",
        bias: bool = True,
        res_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(
            ConvBlock(
                channels, channels, 3, 1, 1, norm=norm, activation=activation, pad_type=pad_type, bias=bias
            ),
            ConvBlock(
                channels,
                channels,
                3,
                1,
                1,
                norm=norm,
                activation=final_activation,
                pad_type=pad_type,
                bias=bias,
            ),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.body(x) if self.res_scale != 1 else x + self.body(x)


class ActFirstResidualBlock(nn.Module):
    """Pre-activation residual block of FUNIT's discriminator (`NVlabs/FUNIT:blocks.py ActFirstResBlock`):
    x_s + [act-conv3-(norm), act-conv3-(norm)](x), hidden width min(in, out), reflect padding; the
    shortcut x_s is a 1x1 conv when the width changes, else x. The original shortcut has no bias;
    imaginaire's `Res2dBlock` in order NACNAC (its FUNIT discriminator) has one (`shortcut_bias`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        norm: str = "none",
        activation: str = "lrelu",
        shortcut_bias: bool = False,
    ) -> None:
        super().__init__()
        hidden = min(in_channels, out_channels)
        self.body = nn.Sequential(
            make_activation(activation, inplace=False),  # x is still needed by the shortcut
            ConvBlock(in_channels, hidden, 3, 1, 1, norm=norm, activation=activation, pad_type="reflect"),
            ConvBlock(hidden, out_channels, 3, 1, 1, norm=norm, activation="none", pad_type="reflect"),
        )
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, bias=shortcut_bias)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.body(x)


class PreNormResidualBlock(nn.Module):
    """StarGAN v2's discriminator `ResBlk`, which TUNIT's `ActFirstResBlk` copies with FRN:
    (shortcut(x) + residual(x)) / sqrt(2), the 1/sqrt(2) keeping the output's variance that of x.

    residual: norm -> act -> conv3 (in -> in) -> [2x2 average pool] -> norm -> act -> conv3 (in -> out);
    shortcut: a bias-free 1x1 conv when the width changes -> [2x2 average pool]. Zero padding.
    TUNIT: norm "frn" and activation "none" (FRN's learned threshold is the activation).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        norm: str,
        activation: str = "none",
        downsample: bool = False,
    ) -> None:
        super().__init__()
        self.downsample = downsample
        self.norm1, self.norm2 = make_norm(norm, in_channels), make_norm(norm, in_channels)
        self.act1 = make_activation(activation, inplace=False)  # with norm "none" its input is x itself
        self.act2 = make_activation(activation)
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, bias=False)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        residual = self.conv1(self.act1(self.norm1(x)))
        shortcut = self.shortcut(x)
        if self.downsample:
            residual, shortcut = F.avg_pool2d(residual, 2), F.avg_pool2d(shortcut, 2)
        residual = self.conv2(self.act2(self.norm2(residual)))
        return (shortcut + residual) / math.sqrt(2)


class LinearBlock(nn.Sequential):
    """linear -> activation (the MLP unit of MUNIT/FUNIT)."""

    def __init__(self, in_features: int, out_features: int, *, activation: str = "relu") -> None:
        super().__init__(nn.Linear(in_features, out_features), make_activation(activation))


class MLP(nn.Sequential):
    """`n_blocks` linear layers in_dim -> hidden_dim ... -> out_dim with `activation` between them and
    `final_activation` after the last (MUNIT/FUNIT: none; imaginaire and COCO-FUNIT: relu)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden_dim: int,
        n_blocks: int,
        activation: str,
        final_activation: str,
    ) -> None:
        dims = [in_dim] + [hidden_dim] * (n_blocks - 1) + [out_dim]
        layers = [
            LinearBlock(d_in, d_out, activation=activation if i < n_blocks - 1 else final_activation)
            for i, (d_in, d_out) in enumerate(zip(dims, dims[1:]))
        ]
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.flatten(1))
