"""ResNet encoder-decoder generator (Johnson et al. 2016) as used by CycleGAN."""

from torch import Tensor, nn

from i2i.nets.blocks import ConvBlock, ConvTransposeBlock, ResidualBlock


class ResnetGenerator(nn.Module):
    """c7s1-ngf, `n_downsampling` stride-2 convs, `n_blocks` residual blocks, transposed-conv
    up-sampling, c7s1-3 with tanh (`junyanz/pytorch-CycleGAN-and-pix2pix:models/networks.py`).

    The stem and output use reflection padding, the stride-2 convs zero padding, as the official
    code. Conv biases are on because instance norm has no affine (the official `use_bias` rule).
    Input sides must be multiples of 2**n_downsampling so the transposed convs restore them.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int,
        n_blocks: int,
        n_downsampling: int,
        norm: str,
    ) -> None:
        super().__init__()
        bias = norm != "bn"
        layers: list[nn.Module] = [
            ConvBlock(in_channels, ngf, 7, 1, 3, norm=norm, pad_type="reflect", bias=bias)
        ]
        channels = ngf
        for _ in range(n_downsampling):
            layers.append(ConvBlock(channels, channels * 2, 3, 2, 1, norm=norm, pad_type="zero", bias=bias))
            channels *= 2
        layers += [ResidualBlock(channels, norm=norm, pad_type="reflect", bias=bias) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers.append(ConvTransposeBlock(channels, channels // 2, norm=norm, bias=bias))
            channels //= 2
        layers.append(ConvBlock(channels, out_channels, 7, 1, 3, activation="tanh", pad_type="reflect"))
        self.model = nn.Sequential(*layers)
        self.downsampling_factor = 2**n_downsampling

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
