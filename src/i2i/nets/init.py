"""Weight initialisation schemes of the official code bases, applied to conv and linear layers."""

from torch import nn
from torch.nn.utils import parametrize

from i2i.errors import check_choice

INIT_KINDS = ("normal", "gaussian", "xavier", "kaiming", "orthogonal", "default")


def init_weights(module: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise every conv/linear weight of `module` in place and zero its biases.

    normal/gaussian: N(0, gain) (CycleGAN `normal`, MUNIT `gaussian`); xavier: xavier_normal with
    `gain`; kaiming: kaiming_normal, fan_in (MUNIT/FUNIT); orthogonal: with `gain`; default: leave
    PyTorch's own init (U-GAT-IT PyTorch). BatchNorm weights get N(1, gain) as in CycleGAN.
    """
    check_choice("init", kind, INIT_KINDS)
    if kind == "default":
        return module
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # under a parametrization (spectral norm) `weight` is computed; initialise what is learned
            if parametrize.is_parametrized(layer, "weight"):
                weight = layer.parametrizations.weight.original
            else:
                weight = layer.weight
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

