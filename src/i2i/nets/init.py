"""Weight initialisation schemes of the official code bases, applied to conv and linear layers.

Every model names its scheme the same way, in the `init` node of `conf/model/<model>.yaml`
(`WeightInit`): the kind for its generator networks, the kind for its discriminators, and the gain.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn
from torch.nn.utils import parametrize

from i2i.errors import check_choice, check_non_negative

INIT_KINDS = ("normal", "gaussian", "xavier", "kaiming", "orthogonal", "default", "conv_normal")


def init_weights(module: nn.Module, kind: str, gain: float) -> nn.Module:
    """Initialise every conv/linear weight of `module` in place and zero its biases.

    normal/gaussian: N(0, gain) (CycleGAN `normal`, MUNIT `gaussian`); conv_normal: N(0, gain) on conv
    weights only, biases and linear layers keeping PyTorch's init (DRIT's `gaussian_weights_init`,
    which matches class names starting with "Conv"); xavier: xavier_normal with
    `gain`; kaiming: kaiming_normal, fan_in (MUNIT/FUNIT); orthogonal: with `gain`; default: leave
    PyTorch's own init (U-GAT-IT PyTorch). BatchNorm weights get N(1, gain) as in CycleGAN.
    """
    check_choice("init", kind, INIT_KINDS)
    if kind == "default":
        return module
    for layer in module.modules():
        if kind == "conv_normal":
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(_learned_weight(layer), 0.0, gain)
            continue
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = _learned_weight(layer)
            if kind in ("normal", "gaussian"):
                nn.init.normal_(weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight, gain=gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d) and layer.affine:
            nn.init.normal_(layer.weight, 1.0, gain)
            nn.init.zeros_(layer.bias)
    return module


def _learned_weight(layer: nn.Module) -> nn.Parameter:
    """The weight a layer learns: under a parametrization (spectral norm) `weight` is computed."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


@dataclass(frozen=True)
class WeightInit:
    """A model's initialisation (`model.init`): `init_weights` of kind `generator` on its generator
    networks, then of kind `discriminator` on its discriminators. `gain` is the std of normal/gaussian
    weights, the gain of xavier/orthogonal ones and, with every kind but default, the std of BatchNorm
    weights around 1; kaiming weights do not use it."""

    generator: str
    discriminator: str
    gain: float

    def __post_init__(self) -> None:
        check_choice("model.init.generator", self.generator, INIT_KINDS)
        check_choice("model.init.discriminator", self.discriminator, INIT_KINDS)
        check_non_negative("model.init.gain", self.gain)

    def apply(self, *, generators: Iterable[nn.Module], discriminators: Iterable[nn.Module]) -> None:
        """Initialise the generators, then the discriminators, in the order given (the order of the
        random draws)."""
        for network in generators:
            init_weights(network, self.generator, self.gain)
        for network in discriminators:
            init_weights(network, self.discriminator, self.gain)
