"""Types shared across the package: batches and translation directions (a model's abilities, the
inference protocols, are in `i2i.abilities`)."""

from typing import Literal

from torch import Tensor

Batch = dict[str, Tensor]
Direction = Literal["AtoB", "BtoA"]
DIRECTIONS: tuple[Direction, ...] = ("AtoB", "BtoA")
SOURCE_TARGET: dict[str, tuple[str, str]] = {"AtoB": ("A", "B"), "BtoA": ("B", "A")}
