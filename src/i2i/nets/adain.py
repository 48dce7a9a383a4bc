"""Adaptive instance normalisation (Huang & Belongie 2017) with parameters given at call time.

MUNIT, FUNIT, COCO-FUNIT and TUNIT decode a content code with AdaIN layers whose per-sample affine
parameters come from one MLP. The MLP output is split in decoder-module order, `[mean | std]` per
layer, exactly as the official `assign_adain_params` consumes it, so official weights convert by
position. Here the parameters are passed as an argument instead of being assigned to module
attributes before the forward pass: no hidden state, and one split instead of a loop of slices.

imaginaire's FUNIT and COCO-FUNIT instead hand every AdaIN layer the same style vector, which each
layer projects to its own parameters (`ProjectedAdaptiveNorm`, research/nvidia.md §0 item 8).

LOMIT's Highway AdaIN mixes two AdaINs of one content code pixel by pixel with a soft mask.
"""

import torch
from torch import Tensor, nn

from i2i.errors import check_choice
from i2i.nets.blocks import ConvBlock, make_activation
from i2i.nets.norms import flat_safe


def adaptive_instance_norm(x: Tensor, params: Tensor, eps: float = 1e-5) -> Tensor:
    """IN(x) * std + mean with (mean, std) = params.chunk(2, dim=1), params (B, 2C).

    The statistics are the biased per-sample, per-channel ones of the official `F.batch_norm` on a
    (1, B*C, H, W) view; the affine is folded into one multiply-add over x. A constant channel's
    gradient is 0, not 1/sqrt(eps) times the centred output gradient (`i2i.nets.norms.flat_safe`).
    """
    mean, std = params.unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
    var, mu = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    scale = std * flat_safe(torch.rsqrt(var + eps), var)
    return torch.addcmul(mean - mu * scale, x, scale)


#: how Highway AdaIN measures the content's spread; see `highway_adaptive_instance_norm`
HADAIN_STDS = ("spatial", "std_of_std")


def highway_adaptive_instance_norm(
    x: Tensor,
    mask: Tensor,
    foreground: Tensor,
    background: Tensor,
    *,
    std: str = "spatial",
    eps: float = 1e-5,
) -> Tensor:
    """LOMIT's Highway AdaIN: mask * AdaIN(x, foreground) + (1 - mask) * AdaIN(x, background).

    x (B, C, H, W); mask (B, 1, H, W) in [0, 1]; foreground and background (B, 2C) as `[mean | std]`,
    like `adaptive_instance_norm`. Both AdaINs share one normalised x, so the sum is computed as
    x_hat * lerp(std_b, std_f, mask) + lerp(mean_b, mean_f, mask).

    `std="spatial"` (default) normalises by the per-channel spatial std (biased, eps on the variance),
    the AdaIN of the paper; with mask 1 (0) the result is exactly `adaptive_instance_norm` with the
    foreground (background) parameters. `std="std_of_std"` reproduces the official `highway_AdaIN`
    (`AnonymousIclrAuthor/Highway-Adaptive-Instance-Normalization:model.py`), which divides by
    std over H of the per-row stds over W (both unbiased) plus eps: a statistic that is not the
    spread of x (it is near 0 for a code whose rows all spread alike), kept only to match that code.
    Either way a constant channel's gradient is 0, not 1/sqrt(eps) (1/eps) times the centred output
    gradient (`i2i.nets.norms.flat_safe`).
    """
    check_choice("hadain_std", std, HADAIN_STDS)
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    if std == "spatial":
        normalised = (x - mean) * flat_safe(torch.rsqrt(var + eps), var)
    else:
        std_of_std = x.std(dim=3).std(dim=2)[..., None, None]
        normalised = (x - mean) * flat_safe((std_of_std + eps).reciprocal(), var)
    mean_f, std_f = foreground[..., None, None].chunk(2, dim=1)
    mean_b, std_b = background[..., None, None].chunk(2, dim=1)
    # torch.lerp takes one dtype; under bf16 autocast the mask (a conv's sigmoid) is bf16 while the
    # parameters are float32 (the std is the exp of a log-variance, which autocast runs in float32)
    weight = mask.to(mean_f.dtype)
    return normalised * torch.lerp(std_b, std_f, weight) + torch.lerp(mean_b, mean_f, weight)


class AdaptiveInstanceNorm2d(nn.Module):
    """AdaIN over `num_features` channels; `forward(x, params)` with params (B, 2 * num_features)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.num_params = 2 * num_features

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        return adaptive_instance_norm(x, params, self.eps)


class ProjectedAdaptiveNorm(nn.Module):
    """imaginaire's `AdaptiveNorm` (projection on, one Linear): IN(x) * (1 + gamma) + beta with
    (gamma, beta) = Linear(style_dim -> 2C)(style); `forward(x, style)` with style (B, style_dim)."""

    def __init__(self, num_features: int, style_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.projection = nn.Linear(style_dim, 2 * num_features)
        self.num_params = style_dim

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        gamma, beta = self.projection(style).chunk(2, dim=1)
        return adaptive_instance_norm(x, torch.cat([beta, 1 + gamma], dim=1), self.eps)


class AdaINConvBlock(nn.Module):
    """[x2 nearest up-sampling ->] pad -> conv -> AdaIN -> activation; `forward(x, params)` with
    params (B, 2 * out_channels), or with `style_dim` set, `forward(x, style)` with style
    (B, style_dim) projected by the layer itself (`ProjectedAdaptiveNorm`). `num_params` is the
    width of the conditioning `forward` takes."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int,
        *,
        activation: str = "relu",
        pad_type: str = "reflect",
        upsample: bool = False,
        style_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest") if upsample else nn.Identity()
        self.conv = ConvBlock(
            in_channels, out_channels, kernel_size, 1, padding, activation="none", pad_type=pad_type
        )
        if style_dim is None:
            self.norm: nn.Module = AdaptiveInstanceNorm2d(out_channels)
        else:
            self.norm = ProjectedAdaptiveNorm(out_channels, style_dim)
        self.activation = make_activation(activation)
        self.num_params = self.norm.num_params

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        return self.activation(self.norm(self.conv(self.upsample(x)), params))


class AdaINResidualBlock(nn.Module):
    """x + res_scale * [conv3-AdaIN-act, conv3-AdaIN](x), the decoder block of MUNIT/FUNIT/TUNIT;
    `forward(x, params)` with params (B, 4C): the two layers' `[mean | std]` in order."""

    def __init__(
        self, channels: int, *, activation: str = "relu", pad_type: str = "reflect", res_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.first = AdaINConvBlock(channels, channels, 3, 1, activation=activation, pad_type=pad_type)
        self.second = AdaINConvBlock(channels, channels, 3, 1, activation="none", pad_type=pad_type)
        self.num_params = self.first.num_params + self.second.num_params

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        first, second = params.split([self.first.num_params, self.second.num_params], dim=1)
        residual = self.second(self.first(x, first), second)
        return x + self.res_scale * residual if self.res_scale != 1 else x + residual


class ProjectedAdaINResidualBlock(nn.Module):
    """x + [conv3-AdaIN-act, conv3-AdaIN-act](x), every AdaIN projecting the same style vector:
    imaginaire's `Res2dBlock` (order CNACNA, adaptive norm) of the FUNIT/COCO-FUNIT decoder;
    `forward(x, style)` with style (B, style_dim)."""

    def __init__(
        self, channels: int, *, style_dim: int, activation: str = "relu", pad_type: str = "reflect"
    ) -> None:
        super().__init__()
        block = dict(activation=activation, pad_type=pad_type, style_dim=style_dim)
        self.first = AdaINConvBlock(channels, channels, 3, 1, **block)
        self.second = AdaINConvBlock(channels, channels, 3, 1, **block)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return x + self.second(self.first(x, style), style)


class ProjectedAdaINUpBlock(nn.Module):
    """imaginaire's `UpRes2dBlock` as its FUNIT decoder configures it (hidden width = out, learned
    shortcut, adaptive norm everywhere): shortcut [x2 up, conv1-AdaIN-act], residual [conv5-AdaIN-act
    at the input resolution, x2 up, conv5-AdaIN-act]; `forward(x, style)` with style (B, style_dim).

    The official decoder passes `skip_activation_norm='instance'`, which the block reads only as a
    truth value: the shortcut gets the adaptive norm and its own projection, as here.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        style_dim: int,
        activation: str = "relu",
        pad_type: str = "reflect",
    ) -> None:
        super().__init__()
        block = dict(activation=activation, pad_type=pad_type, style_dim=style_dim)
        self.shortcut = AdaINConvBlock(in_channels, out_channels, 1, 0, upsample=True, **block)
        self.first = AdaINConvBlock(in_channels, out_channels, 5, 2, **block)
        self.second = AdaINConvBlock(out_channels, out_channels, 5, 2, upsample=True, **block)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return self.shortcut(x, style) + self.second(self.first(x, style), style)
