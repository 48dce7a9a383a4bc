"""ResNet encoder-decoder generator (Johnson et al. 2016) as used by CycleGAN and CUT."""

from collections.abc import Iterator, Sequence

from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.antialias import BlurDownsample, BlurUpsample
from i2i.nets.blocks import ConvBlock, ConvTransposeBlock, ResidualBlock


class ResnetGenerator(nn.Module):
    """c7s1-ngf, `n_downsampling` stride-2 convs, `n_blocks` residual blocks, transposed-conv
    up-sampling, c7s1-3 with tanh (`junyanz/pytorch-CycleGAN-and-pix2pix:models/networks.py`).

    The stem and output use reflection padding, the stride-2 convs zero padding, as the official
    code. Conv biases are on because instance norm has no affine (the official `use_bias` rule).
    Input sides must be multiples of 2**n_downsampling so the transposed convs restore them.

    `antialias` (CUT's default, off for CycleGAN): each stride-2 conv is a stride-1 conv then a blur
    down-sampling, each transposed conv a blur up-sampling then a stride-1 conv (`i2i.nets.antialias`);
    the weights are the same in number and shape.
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
        antialias: bool,
    ) -> None:
        super().__init__()
        bias = norm != "bn"
        layers: list[nn.Module] = [
            ConvBlock(in_channels, ngf, 7, 1, 3, norm=norm, pad_type="reflect", bias=bias)
        ]
        channels = ngf
        for _ in range(n_downsampling):
            stride = 1 if antialias else 2
            layers.append(
                ConvBlock(channels, channels * 2, 3, stride, 1, norm=norm, pad_type="zero", bias=bias)
            )
            if antialias:
                layers.append(BlurDownsample(channels * 2))
            channels *= 2
        layers += [ResidualBlock(channels, norm=norm, pad_type="reflect", bias=bias) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            if antialias:
                layers.append(BlurUpsample(channels))
                layers.append(ConvBlock(channels, channels // 2, 3, 1, 1, norm=norm, bias=bias))
            else:
                layers.append(ConvTransposeBlock(channels, channels // 2, norm=norm, bias=bias))
            channels //= 2
        layers.append(ConvBlock(channels, out_channels, 7, 1, 3, activation="tanh", pad_type="reflect"))
        self.model = nn.Sequential(*layers)
        self.downsampling_factor = 2**n_downsampling

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def official_layers(self) -> Iterator[nn.Module]:
        """The layers in the order of the official code's one flat `nn.Sequential`: blocks unpacked,
        placeholders (`nn.Identity`) left out, residual blocks whole. CUT names the generator's layers
        by their index in this order (`nce_layers` 0, 4, 8, 12, 16)."""

        def unpacked(module: nn.Module) -> Iterator[nn.Module]:
            for layer in module.children():
                if isinstance(layer, nn.Sequential):
                    yield from unpacked(layer)
                elif not isinstance(layer, nn.Identity):
                    yield layer

        return unpacked(self.model)

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """The number of channels of the output of each of `layers` (official indices), known from
        the architecture without running it."""
        channels, found = self.model[0][1].in_channels, {}
        for index, layer in enumerate(self.official_layers()):
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                channels = layer.out_channels
            found[index] = channels
        self._check_layers(layers, len(found))
        return [found[index] for index in layers]

    def features(self, x: Tensor, layers: Sequence[int]) -> list[Tensor]:
        """The outputs of `layers` (official indices, increasing) for input x; the layers after the
        last of them are not run."""
        self._check_layers(layers, sum(1 for _ in self.official_layers()))
        features = []
        for index, layer in enumerate(self.official_layers()):
            x = layer(x)
            if index in layers:
                features.append(x)
                if index == layers[-1]:
                    break
        return features

    @staticmethod
    def _check_layers(layers: Sequence[int], count: int) -> None:
        if list(layers) != sorted(set(layers)) or not layers or layers[0] < 0 or layers[-1] >= count:
            raise ConfigError(
                "model.nce_layers", list(layers), f"must be increasing layer indices from 0 to {count - 1}"
            )
