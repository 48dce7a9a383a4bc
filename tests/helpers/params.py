"""Parameter counting shared by the tests that compare networks with the official counts."""

from torch import nn


def count(*modules: nn.Module) -> int:
    """The number of parameters of `modules` together."""
    return sum(p.numel() for module in modules for p in module.parameters())
