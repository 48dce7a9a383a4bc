"""Building blocks shared by every model: conv and residual blocks, norms, generators, discriminators.

Import from the submodules (`i2i.nets.blocks`, `i2i.nets.norms`, ...); nothing here imports
from `i2i.models`.
"""
