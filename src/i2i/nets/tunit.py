"""TUNIT's guiding network and generator (`clovaai/tunit:models/guidingNet.py`, `models/generator.py`).

The guiding network finds the domains (clusters) and style codes that the generator and the
multi-domain discriminator (`nets/discriminators.py`) are trained with; the generator is FUNIT's,
built from the shared MUNIT-family encoder, decoder and MLP.
"""

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.autoencoder import ContentEncoder, Decoder
from i2i.nets.blocks import MLP, ConvBlock


class GuidingNetwork(nn.Module):
    """A VGG trunk with batch norm, global average pooling and two linear heads on the pooled feature:
    `cluster` gives K logits (the IIC clustering head, `disc` in the official code) and `style` a
    `style_dim` vector (the MoCo embedding and the generator's style code, `cont`). Neither output
    is L2-normalised, as in the official code. `layers`: the trunk's conv3 widths, "M" a 2x2 max pool
    (TUNIT: torchvision's VGG11, "A").

    Initialisation as the official `_initialize_weights`: convs kaiming normal (fan_out, ReLU), batch
    norm weight 1 and bias 0, linears N(0, 0.01), every bias 0.
    """

    def __init__(self, *, layers: Sequence[int | str], num_clusters: int, style_dim: int) -> None:
        super().__init__()
        trunk: list[nn.Module] = []
        width = 3
        for layer in layers:
            if layer == "M":
                trunk.append(nn.MaxPool2d(2, 2))
            else:
                trunk.append(ConvBlock(width, int(layer), 3, 1, 1, norm="bn", activation="relu"))
                width = int(layer)
        self.trunk = nn.Sequential(*trunk)
        self.cluster = nn.Linear(width, num_clusters)
        self.style = nn.Linear(width, style_dim)
        self.num_clusters, self.style_dim = num_clusters, style_dim
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def features(self, x: Tensor) -> Tensor:
        """The pooled trunk feature, (B, width)."""
        return F.adaptive_avg_pool2d(self.trunk(x), 1).flatten(1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(style codes (B, style_dim), cluster logits (B, K)) from one pass of the trunk."""
        features = self.features(x)
        return self.style(features), self.cluster(features)


class TUNITGenerator(nn.Module):
    """FUNIT's generator as TUNIT uses it, with the style code given (it comes from the guiding network).

    Content encoder: c7s1-dim, log2(image_size / content_size) k4 s2 convs doubling the width, `n_res`
    residual blocks, instance norm; decoder: `n_res` AdaIN residual blocks, the same number of
    [x2 up-sampling, conv5, AdaIN, ReLU] blocks, c7s1-3 tanh; every residual block returns
    x + 0.1 * residual. An MLP (style_dim -> mlp_dim -> mlp_dim -> all AdaIN parameters) maps the
    style code to the decoder's AdaIN parameters. Official: dim 64 (32 from 256 px on), content 16x16,
    n_res 2, mlp_dim 256, 3 linear layers. Norms, ReLU and reflection padding are fixed by the
    architecture, as in the official code; widths and depths are arguments.
    """

    def __init__(
        self,
        *,
        image_size: int,
        style_dim: int,
        dim: int,
        content_size: int,
        n_res: int,
        mlp_dim: int,
        mlp_blocks: int,
        res_scale: float,
    ) -> None:
        super().__init__()
        n_downsample = round(math.log2(max(image_size, 1) / content_size))
        if n_downsample < 1 or content_size * 2**n_downsample != image_size:
            raise ConfigError(
                "data.image_size",
                image_size,
                f"TUNIT's generator needs {content_size} x a power of two (32, 64, 128 ...)",
            )
        conv = {"activation": "relu", "pad_type": "reflect", "res_scale": res_scale}
        self.encoder = ContentEncoder(
            dim=dim, n_downsample=n_downsample, n_res=n_res, norm="in", res_final_activation="none", **conv
        )
        self.decoder = Decoder(
            in_channels=self.encoder.out_channels,
            n_upsample=n_downsample,
            n_res=n_res,
            res_norm="adain",
            up_norm="adain",
            **conv,
        )
        self.mlp = MLP(
            style_dim,
            self.decoder.num_adain_params,
            hidden_dim=mlp_dim,
            n_blocks=mlp_blocks,
            activation="relu",
            final_activation="none",
        )

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, content: Tensor, style: Tensor) -> Tensor:
        return self.decoder(content, self.mlp(style))

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return self.decode(self.encode(x), style)
