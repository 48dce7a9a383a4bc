"""Types shared across the package: batches, translation directions and the inference protocol."""

from typing import Literal, Protocol

import torch
from torch import Tensor

Batch = dict[str, Tensor]
Direction = Literal["AtoB", "BtoA"]
DIRECTIONS: tuple[Direction, ...] = ("AtoB", "BtoA")
SOURCE_TARGET: dict[str, tuple[str, str]] = {"AtoB": ("A", "B"), "BtoA": ("B", "A")}


class Translator(Protocol):
    """What metrics, callbacks and the CLI need from a model: translate a batch in [-1, 1]."""

    device: torch.device

    def translate(self, x: Tensor, direction: Direction, **options: object) -> Tensor: ...
