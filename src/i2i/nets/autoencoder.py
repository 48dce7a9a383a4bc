"""Encoders and decoders of the MUNIT family (UNIT, MUNIT, FUNIT, COCO-FUNIT, LOMIT, TUNIT).

Faithful to `NVlabs/MUNIT:networks.py` and `NVlabs/FUNIT:networks.py` (research/nvidia.md §1.1,
§1.2, §1.6): every conv is pad -> conv -> norm -> activation with reflection padding; encoders
down-sample with k4 s2 convs, decoders up-sample with x2 nearest + k5 conv.
"""

from torch import Tensor, nn

from i2i.nets.adain import (
    AdaINConvBlock,
    AdaINResidualBlock,
    ProjectedAdaINResidualBlock,
    ProjectedAdaINUpBlock,
)
from i2i.nets.blocks import MLP, ConvBlock, ResidualBlock


class ContentEncoder(nn.Sequential):
    """c7s1-dim, `n_downsample` k4 s2 convs doubling the width, `n_res` residual blocks.

    MUNIT/UNIT: dim 64, 2 down-samplings, 4 blocks (256 x H/4 x W/4); FUNIT: 3 and 2 (512 x H/8).
    imaginaire's FUNIT/COCO-FUNIT: 4 and 2 (1024 x H/16), affine instance norm ("in_affine", its
    default) and an activation after each block's second conv (`res_final_activation`).
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        dim: int,
        n_downsample: int,
        n_res: int,
        norm: str,
        activation: str,
        res_final_activation: str,
        pad_type: str,
        res_scale: float,
    ) -> None:
        layers = [ConvBlock(in_channels, dim, 7, 1, 3, norm=norm, activation=activation, pad_type=pad_type)]
        for _ in range(n_downsample):
            layers.append(
                ConvBlock(dim, dim * 2, 4, 2, 1, norm=norm, activation=activation, pad_type=pad_type)
            )
            dim *= 2
        layers += [
            ResidualBlock(
                dim,
                norm=norm,
                activation=activation,
                final_activation=res_final_activation,
                pad_type=pad_type,
                res_scale=res_scale,
            )
            for _ in range(n_res)
        ]
        super().__init__(*layers)
        self.out_channels = dim
        self.downsampling_factor = 2**n_downsample


class StyleEncoder(nn.Sequential):
    """c7s1-dim, two k4 s2 convs doubling the width, `n_downsample - 2` more at that width, global
    average pooling, a 1x1 conv to `style_dim`; no normalisation (MUNIT style / FUNIT class encoder).

    Returns (B, style_dim).
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        dim: int,
        n_downsample: int,
        style_dim: int,
        norm: str,
        activation: str,
        pad_type: str,
    ) -> None:
        layers = [ConvBlock(in_channels, dim, 7, 1, 3, norm=norm, activation=activation, pad_type=pad_type)]
        for i in range(n_downsample):
            out = dim * 2 if i < 2 else dim
            layers.append(ConvBlock(dim, out, 4, 2, 1, norm=norm, activation=activation, pad_type=pad_type))
            dim = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1)]
        super().__init__(*layers)
        self.style_dim = style_dim

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).flatten(1)


class Decoder(nn.Module):
    """`n_res` residual blocks, `n_upsample` x [x2 nearest up-sampling, k5 conv halving the width],
    c7s1-3 with tanh.

    `res_norm`/`up_norm` name the norms of the residual and up-sampling blocks: "adain" makes them
    style-conditioned (then `forward(content, adain_params)` takes the MLP output, split in module
    order); any other name is a plain norm of `make_norm`. MUNIT: res adain, up ln; UNIT: in, ln;
    FUNIT: adain, in; TUNIT: adain, adain (residuals scaled by 0.1).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int = 3,
        n_upsample: int,
        n_res: int,
        res_norm: str,
        up_norm: str,
        activation: str,
        pad_type: str,
        res_scale: float,
    ) -> None:
        super().__init__()
        dim = in_channels
        blocks: list[nn.Module] = []
        for _ in range(n_res):
            if res_norm == "adain":
                blocks.append(
                    AdaINResidualBlock(dim, activation=activation, pad_type=pad_type, res_scale=res_scale)
                )
            else:
                blocks.append(
                    ResidualBlock(
                        dim, norm=res_norm, activation=activation, pad_type=pad_type, res_scale=res_scale
                    )
                )
        for _ in range(n_upsample):
            if up_norm == "adain":
                blocks.append(
                    AdaINConvBlock(
                        dim, dim // 2, 5, 2, activation=activation, pad_type=pad_type, upsample=True
                    )
                )
            else:
                blocks.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="nearest"),
                        ConvBlock(
                            dim, dim // 2, 5, 1, 2, norm=up_norm, activation=activation, pad_type=pad_type
                        ),
                    )
                )
            dim //= 2
        blocks.append(ConvBlock(dim, out_channels, 7, 1, 3, activation="tanh", pad_type=pad_type))
        self.blocks = nn.ModuleList(blocks)
        self.param_sizes = [
            b.num_params for b in blocks if isinstance(b, (AdaINResidualBlock, AdaINConvBlock))
        ]
        self.num_adain_params = sum(self.param_sizes)

    def forward(self, content: Tensor, adain_params: Tensor | None = None) -> Tensor:
        chunks = iter(adain_params.split(self.param_sizes, dim=1) if self.param_sizes else ())
        x = content
        for block in self.blocks:
            x = (
                block(x, next(chunks))
                if isinstance(block, (AdaINResidualBlock, AdaINConvBlock))
                else block(x)
            )
        return x


def content_autoencoder(
    *,
    in_channels: int,
    dim: int,
    n_downsample: int,
    n_res: int,
    res_norm: str,
    activation: str,
    pad_type: str,
) -> tuple[ContentEncoder, Decoder]:
    """The content encoder (IN) and the decoder (`res_norm` residual blocks, LN up-sampling convs,
    tanh) of MUNIT's `AdaINGen` (res_norm adain) and UNIT's `VAEGen` (res_norm in)."""
    conv = {"activation": activation, "pad_type": pad_type, "res_scale": 1.0}
    encoder = ContentEncoder(
        in_channels=in_channels,
        dim=dim,
        n_downsample=n_downsample,
        n_res=n_res,
        norm="in",
        res_final_activation="none",
        **conv,
    )
    decoder = Decoder(
        in_channels=encoder.out_channels,
        out_channels=in_channels,
        n_upsample=n_downsample,
        n_res=n_res,
        res_norm=res_norm,
        up_norm="ln",
        **conv,
    )
    return encoder, decoder


class AdaINAutoEncoder(nn.Module):
    """The generator of one MUNIT domain (`NVlabs/MUNIT:networks.py AdaINGen`).

    A content encoder (IN), a style encoder (no norm, `style_downsample` strided convs), an MLP
    mapping the style code to every AdaIN parameter of the decoder, and the decoder (AdaIN
    residual blocks, LN up-sampling convs, tanh). The norms are fixed by the architecture, as in
    the official code; widths and depths are arguments.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        dim: int,
        style_dim: int,
        n_downsample: int,
        n_res: int,
        mlp_dim: int,
        mlp_blocks: int,
        style_downsample: int,
        activation: str,
        pad_type: str,
    ) -> None:
        super().__init__()
        self.style_encoder = StyleEncoder(
            in_channels=in_channels,
            dim=dim,
            n_downsample=style_downsample,
            style_dim=style_dim,
            norm="none",
            activation=activation,
            pad_type=pad_type,
        )
        self.content_encoder, self.decoder = content_autoencoder(
            in_channels=in_channels,
            dim=dim,
            n_downsample=n_downsample,
            n_res=n_res,
            res_norm="adain",
            activation=activation,
            pad_type=pad_type,
        )
        self.mlp = MLP(
            style_dim,
            self.decoder.num_adain_params,
            hidden_dim=mlp_dim,
            n_blocks=mlp_blocks,
            activation=activation,
            final_activation="none",
        )
        self.style_dim = style_dim
        self.downsampling_factor = 2**n_downsample

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(content (B, C, H/f, W/f), style (B, style_dim)) of images x."""
        return self.content_encoder(x), self.style_encoder(x)

    def decode(self, content: Tensor, style: Tensor) -> Tensor:
        return self.decoder(content, self.mlp(style))

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction of x from its own content and style."""
        return self.decode(*self.encode(x))


class AutoEncoder(nn.Module):
    """The generator of one UNIT domain (`NVlabs/MUNIT:networks.py VAEGen`) without its noise.

    The content encoder (IN) gives the latent mean; the decoder has IN residual blocks and LN
    up-sampling convs. The reduced VAE's sampling (z = mean + N(0, I) in training) belongs to the
    model, which also needs the mean itself for the KL term.
    """

    def __init__(
        self, *, in_channels: int = 3, dim: int, n_downsample: int, n_res: int, activation: str, pad_type: str
    ) -> None:
        super().__init__()
        self.encoder, self.decoder = content_autoencoder(
            in_channels=in_channels,
            dim=dim,
            n_downsample=n_downsample,
            n_res=n_res,
            res_norm="in",
            activation=activation,
            pad_type=pad_type,
        )
        self.downsampling_factor = 2**n_downsample

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, hidden: Tensor) -> Tensor:
        return self.decoder(hidden)

    def forward(self, x: Tensor) -> Tensor:
        """The deterministic reconstruction decode(encode(x))."""
        return self.decode(self.encode(x))


class ProjectionDecoder(nn.Module):
    """imaginaire's FUNIT and COCO-FUNIT decoder (`imaginaire/generators/funit.py Decoder`): `n_res`
    AdaIN residual blocks at the content width, `n_upsample` AdaIN up-sampling residual blocks
    halving it, c7s1-3 with tanh (research/nvidia.md §1.7).

    Every AdaIN layer projects the same style vector (B, style_dim) to its own parameters, so
    `forward(content, style)` takes the MLP output whole; `num_adain_params` (= style_dim, the MLP's
    output width) keeps the interface of `Decoder`. The official decoder always has 2 residual
    blocks, whatever `num_res_blocks` says; `n_res` is 2 in the configs.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        style_dim: int,
        out_channels: int = 3,
        n_res: int,
        n_upsample: int,
        activation: str,
        pad_type: str,
    ) -> None:
        super().__init__()
        dim = in_channels
        conditioned: list[nn.Module] = [
            ProjectedAdaINResidualBlock(dim, style_dim=style_dim, activation=activation, pad_type=pad_type)
            for _ in range(n_res)
        ]
        for _ in range(n_upsample):
            conditioned.append(
                ProjectedAdaINUpBlock(
                    dim, dim // 2, style_dim=style_dim, activation=activation, pad_type=pad_type
                )
            )
            dim //= 2
        self.blocks = nn.ModuleList(conditioned)
        self.to_image = ConvBlock(dim, out_channels, 7, 1, 3, activation="tanh", pad_type=pad_type)
        self.num_adain_params = style_dim

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        x = content
        for block in self.blocks:
            x = block(x, style)
        return self.to_image(x)
