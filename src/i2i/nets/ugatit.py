"""The U-GAT-IT generator (Kim et al., ICLR 2020, §2.1; official `znxlwm/UGATIT-pytorch:networks.py`).

Encoder: c7s1-ngf, `n_downsampling` stride-2 convs, `n_blocks` residual blocks, all with instance
norm (no affine) and reflection padding. CAM attention head. An MLP turns the attended features
into one (gamma, beta) pair per sample. Decoder: `n_blocks` AdaILN residual blocks fed that pair,
nearest x2 up-sampling + conv + ILN per down-sampling step, c7s1-3 and tanh. No conv has a bias
except the CAM's 1x1 fusion (official PyTorch; research/ugatit_others.md §1.1).
"""

from typing import NamedTuple

from torch import Tensor, nn

from i2i.nets.adailn import AdaILNResidualBlock
from i2i.nets.blocks import ConvBlock, ResidualBlock
from i2i.nets.cam import CAM


class GeneratorOutput(NamedTuple):
    image: Tensor  # (B, 3, H, W) in [-1, 1]
    cam_logit: Tensor  # (B, 2): the CAM classifier's GAP and GMP logits ("is this the source domain?")
    heatmap: Tensor  # (B, 1, H / 2**n_downsampling, W / 2**n_downsampling): channel sum after the CAM


class UGATITGenerator(nn.Module):
    """See the module docstring. `light` feeds the MLP the global average pool of the attended
    features (C inputs); the full model feeds it the flattened map (C * (image_size / 4)**2 inputs,
    so its weights are tied to one image size: 268 M of the 279 M parameters at 256 px)."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int,
        n_blocks: int,
        n_downsampling: int,
        light: bool,
        image_size: int,
    ) -> None:
        super().__init__()
        self.light = light
        self.downsampling_factor = 2**n_downsampling
        channels = ngf * self.downsampling_factor
        encoder: list[nn.Module] = [
            ConvBlock(in_channels, ngf, 7, 1, 3, norm="in", pad_type="reflect", bias=False)
        ]
        for i in range(n_downsampling):
            encoder.append(
                ConvBlock(ngf * 2**i, ngf * 2 ** (i + 1), 3, 2, 1, norm="in", pad_type="reflect", bias=False)
            )
        encoder += [
            ResidualBlock(channels, norm="in", pad_type="reflect", bias=False) for _ in range(n_blocks)
        ]
        self.encoder = nn.Sequential(*encoder)
        self.cam = CAM(channels, activation="relu", spectral_norm=False)
        mlp_inputs = channels if light else channels * (image_size // self.downsampling_factor) ** 2
        self.mlp = nn.Sequential(
            nn.Linear(mlp_inputs, channels, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels, channels, bias=False),
            nn.ReLU(inplace=True),
        )
        self.gamma = nn.Linear(channels, channels, bias=False)
        self.beta = nn.Linear(channels, channels, bias=False)
        self.bottleneck = nn.ModuleList(AdaILNResidualBlock(channels) for _ in range(n_blocks))
        decoder: list[nn.Module] = []
        for i in range(n_downsampling):
            width = channels // 2**i
            decoder += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                ConvBlock(width, width // 2, 3, 1, 1, norm="iln", pad_type="reflect", bias=False),
            ]
        decoder.append(
            ConvBlock(ngf, out_channels, 7, 1, 3, activation="tanh", pad_type="reflect", bias=False)
        )
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: Tensor) -> GeneratorOutput:
        x, cam_logit, heatmap = self.cam(self.encoder(x))
        style = self.mlp(x.mean(dim=(2, 3)) if self.light else x.flatten(1))
        gamma, beta = self.gamma(style), self.beta(style)
        for block in self.bottleneck:
            x = block(x, gamma, beta)
        return GeneratorOutput(self.decoder(x), cam_logit, heatmap)
