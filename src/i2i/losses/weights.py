"""The base of every model's loss-weight dataclass: one validator for all of them.

A model declares its weights as a frozen dataclass deriving from `LossWeights` (the fields stay in
the model's file, where its objective reads them); building it checks, naming the `loss.` key:
- `gan_mode`, where the model has one, is one of GAN_MODES;
- every weight (a field ending in `_w`) and every field listed in `non_negative` is >= 0;
- every field listed in `positive` is > 0.
"""

from dataclasses import dataclass, fields

from i2i.errors import check_choice, check_non_negative, check_positive
from i2i.losses.adversarial import GAN_MODES

WEIGHT_SUFFIX = "_w"


@dataclass(frozen=True)
class LossWeights:
    """Validated loss weights; subclasses declare the fields (see the module docstring)."""

    # Class attributes, unannotated so that they are no dataclass fields (nor config keys):
    non_negative = ()  # the fields besides the `*_w` weights that must be >= 0
    positive = ()  # the fields that must be > 0

    def __post_init__(self) -> None:
        names = [field.name for field in fields(self)]
        if "gan_mode" in names:
            check_choice("loss.gan_mode", self.gan_mode, GAN_MODES)
        for name in names:
            if name.endswith(WEIGHT_SUFFIX) or name in self.non_negative:
                check_non_negative(f"loss.{name}", getattr(self, name))
        for name in self.positive:
            check_positive(f"loss.{name}", getattr(self, name))
