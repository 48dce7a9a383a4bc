"""Learning-rate multipliers of the official code, as functions of the iteration (for LambdaLR).

The spine steps every scheduler once per iteration, so each policy here is written in iterations.
"""

from dataclasses import dataclass

from i2i.errors import ConfigError, check_positive


@dataclass(frozen=True)
class ConstantThenLinearDecay:
    """1.0 for the first `decay_from` fraction of `total` iterations, then linear decay to 0 at `total`.

    CycleGAN: 100 constant + 100 decaying epochs (decay_from 0.5); U-GAT-IT: constant for the first
    half of the iterations, linear to 0 over the second (decay_from 0.5). decay_from 1.0 is constant.
    """

    total: int
    decay_from: float

    def __post_init__(self) -> None:
        check_positive("scheduler.lr_lambda.total", self.total)
        if not 0 <= self.decay_from <= 1:
            raise ConfigError("scheduler.lr_lambda.decay_from", self.decay_from, "must be in [0, 1]")

    def __call__(self, iteration: int) -> float:
        start = self.decay_from * self.total
        if iteration < start or start >= self.total:
            return 1.0
        return max(0.0, 1.0 - (iteration - start) / (self.total - start))
