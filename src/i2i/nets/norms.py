"""Normalisation layers and the factory that builds them by name.

`make_norm("in", 64)` gives the layer a config names; conv blocks accept the same names.

Constant feature maps (a deviation from every official code, applied by every norm here and by
AdaIN): where a sample's channel (or, for the layer norm, the whole sample) is exactly constant, the
normalised value is 0 whatever the scale, so the layer outputs its shift (beta) there, exactly as the
official layers do; but the official gradient with respect to the input is scale * (g - mean(g)) with
scale 1/sqrt(eps) (316 for instance norm, 1e5 for MUNIT's layer norm with eps on the std). A flat
image (a saturated sky, a black background, a saturated translation re-encoded) keeps every feature
map constant through reflect-padded conv blocks, so a stack of k norms multiplies the gradient by
about 316^k: MUNIT's 11 instance norms and 8 AdaINs overflow float32 to inf, then inf - inf = NaN,
and Adam writes NaN weights (`the d loss is nan` one iteration later). The norms computed here
(`flat_safe`) set the scale to 0 where the variance is exactly 0: the output is unchanged (beta), the
gradient there is 0 (as PyTorch's own `std` backward at zero spread), and nothing changes wherever
the variance is positive. `InstanceNorm2d` keeps PyTorch's kernel and zeroes the input gradient of
exactly constant maps instead (its docstring), with the same effect.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import check_choice


def flat_safe(scale: Tensor, variance: Tensor) -> Tensor:
    """A normalisation's per-(sample, channel) `scale` with 0 where `variance` (same shape, or
    broadcastable) is exactly 0, i.e. the map is constant: see the module docstring."""
    return scale.masked_fill(variance == 0, 0)


class _ZeroGradWhere(torch.autograd.Function):
    """Identity whose backward multiplies the gradient by `keep` (0 or 1 per sample and channel)."""

    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor) -> Tensor:
        ctx.save_for_backward(keep)
        return x.view_as(x)  # a view, not a copy: the forward costs nothing

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (keep,) = ctx.saved_tensors
        # a multiply, not masked_fill/where (several times slower on CPU); 0 * a finite gradient is
        # exactly 0. `grad` is instance_norm's fresh input gradient, which nothing else reads, so
        # it is scaled in place (a new tensor costs 4x the multiply on CPU), except when
        # differentiating it again (the gradient penalties' create_graph) needs it recorded
        if torch.is_grad_enabled():
            return grad * keep, None
        return grad.mul_(keep), None


class InstanceNorm2d(nn.Module):
    """Instance norm: per sample and channel over (H, W), biased variance, eps on the variance, an
    optional affine initialised to 1 and 0: `nn.InstanceNorm2d(affine=..., track_running_stats=False)`,
    with the same parameter names, except on constant maps (the module docstring).

    PyTorch's own `F.instance_norm` computes it (its output bit for bit in float32, at native speed; a
    decomposition into `var_mean` and a multiply-add was 3-4x slower forward+backward on CPU); only
    the gradient reaching the input is then multiplied by 0 on the maps that are exactly constant
    (max == min: exact, and two cheap reductions) and by 1 elsewhere, so it is 0 there instead of
    1/sqrt(eps) times the centred gradient, and PyTorch's wherever the variance is positive. On a
    constant map the output is PyTorch's too: the shift up to rounding. The input is normalised in
    float32 (statistics in float32 under AMP) and the output has the input's dtype.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        if torch.is_grad_enabled() and xf.requires_grad:  # no input gradient, no mask (inference)
            values = xf.detach()
            keep = (values.amax((2, 3), keepdim=True) != values.amin((2, 3), keepdim=True)).float()
            xf = _ZeroGradWhere.apply(xf, keep)
        weight, bias = (self.weight, self.bias) if self.affine else (None, None)
        return F.instance_norm(xf, weight=weight, bias=bias, eps=self.eps).to(x.dtype)


class LayerNorm2d(nn.Module):
    """MUNIT's layer norm: per sample over (C, H, W) with the unbiased std, then a per-channel affine.

    Faithful to `NVlabs/MUNIT:networks.py LayerNorm`: `(x - mean) / (std + eps)` (eps added to the
    std, not the variance), gamma initialised U(0, 1) and beta 0; except on a constant sample, whose
    gradient is 0 instead of 1/eps = 1e5 times the centred output gradient (`flat_safe`).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:
            self.gamma = nn.Parameter(torch.rand(num_features))
            self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        # one read of x for both statistics, then normalisation and affine folded into one
        # per-(sample, channel) multiply-add
        std, mean = torch.std_mean(x.flatten(1), dim=1)
        inverse = flat_safe((std + self.eps).reciprocal(), std).view(-1, 1)
        scale = inverse * self.gamma.view(1, -1) if self.affine else inverse.expand(-1, x.size(1))
        shift = -mean.view(-1, 1) * scale
        if self.affine:
            shift = shift + self.beta.view(1, -1)
        return torch.addcmul(shift[..., None, None], x, scale[..., None, None])


class RhoMixedNorm(nn.Module):
    """Base of U-GAT-IT's norms: rho * IN(x) + (1 - rho) * LN(x) with a learned rho per channel.

    The statistics are fused: one `var_mean` over (H, W) gives the instance statistics, and the layer
    statistics over (C, H, W) follow from them exactly by the law of total variance (the mean of
    the channel variances plus the variance of the channel means), so the input is read once for
    all of them. The mix and the subclass's affine then fold into one per-(sample, channel) scale
    and shift applied in a single pass. Variances are biased, as TF's `tf.nn.moments` in the
    official TF code; the official PyTorch code takes `torch.var` of `torch.var` over H then W,
    which is not the variance over (H, W). Statistics are in float32 under AMP. Constant maps (a
    channel for the instance part, the sample for the layer part) get a zero scale (`flat_safe`).
    `clip_rho_` keeps rho in [0, 1]; the model calls it after every generator step.
    """

    def __init__(self, channels: int, *, rho: float, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.full((channels,), float(rho)))

    def mixed(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        """The rho mix of IN and LN of `x` (B, C, H, W), times `gamma` plus `beta` (each (B, C) or (C,))."""
        xf = x.float()
        in_var, in_mean = torch.var_mean(xf, dim=(2, 3), correction=0)  # (B, C)
        ln_mean = in_mean.mean(1, keepdim=True)
        ln_var = in_var.mean(1, keepdim=True) + (in_mean - ln_mean).pow(2).mean(1, keepdim=True)
        in_scale = flat_safe(torch.rsqrt(in_var + self.eps), in_var)
        ln_scale = flat_safe(torch.rsqrt(ln_var + self.eps), ln_var)
        rho = self.rho.float()
        scale = rho * in_scale + (1 - rho) * ln_scale
        shift = -(rho * in_mean * in_scale + (1 - rho) * ln_mean * ln_scale)
        gamma, beta = gamma.float(), beta.float()
        scale, shift = scale * gamma, shift * gamma + beta
        return torch.addcmul(shift[..., None, None], xf, scale[..., None, None]).to(x.dtype)


class ILN(RhoMixedNorm):
    """U-GAT-IT's instance-layer norm of the up-sampling blocks: learned gamma (1) and beta (0),
    rho initialised to 0 (pure layer norm), as both official codes."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__(channels, rho=0.0, eps=eps)
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.mixed(x, self.gamma, self.beta)


@torch.no_grad()
def clip_rho_(module: nn.Module) -> None:
    """Clip the rho of every `RhoMixedNorm` inside `module` to [0, 1], in place (two fused calls)."""
    rhos = [m.rho for m in module.modules() if isinstance(m, RhoMixedNorm)]
    if rhos:
        torch._foreach_clamp_min_(rhos, 0.0)
        torch._foreach_clamp_max_(rhos, 1.0)


class FilterResponseNorm2d(nn.Module):
    """Filter response normalisation with its thresholded linear unit (Singh & Krishnan 2020).

    `max(gamma * x / sqrt(mean_hw(x^2) + eps) + beta, tau)`: per sample and channel, no mean is
    subtracted and no batch statistics are kept; the learned threshold tau makes it the layer's
    activation too. TUNIT's discriminator (`clovaai/tunit:models/blocks.py FRN`): eps 1e-6,
    gamma 1, beta 0, tau 0 at initialisation.
    """

    def __init__(self, num_features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.tau = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + self.eps)
        return torch.maximum(torch.addcmul(self.beta, self.gamma, x), self.tau)


NORMS: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda channels: nn.Identity(),
    "bn": nn.BatchNorm2d,
    "in": InstanceNorm2d,
    "in_affine": lambda channels: InstanceNorm2d(channels, affine=True),
    "ln": LayerNorm2d,
    "iln": ILN,
    # PyTorch's layer norm over (C, H, W), affine initialised to 1 and 0: the 'ln' of LOMIT's code
    "gn1": lambda channels: nn.GroupNorm(1, channels),
    "frn": FilterResponseNorm2d,
}


def make_norm(kind: str, channels: int) -> nn.Module:
    """The normalisation layer called `kind` (one of NORMS) for `channels` feature maps."""
    check_choice("norm", kind, NORMS)
    return NORMS[kind](channels)
