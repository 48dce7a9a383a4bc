"""Learning-rate multipliers of the official code, as functions of the iteration (for LambdaLR).

The spine steps every scheduler once per iteration, so each policy here is written in iterations.
Their horizon (`total`, `trainer.max_steps` in the configs) is part of a checkpoint's scheduler
state. A run resumed with another horizon is re-planned (`replan`): from the iteration it resumes at,
the learning rate is the one a run planned for the new horizon from the start would have there. With
CycleGAN's constant-then-linear policy, a run of 150 iterations extended to 180 trains iteration 150
at 1 - (150 - 90) / 90 = 1/3 of the base rate (it had reached 0) and decays linearly to 0 at 180.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch.optim.lr_scheduler import LambdaLR

from i2i.errors import ConfigError, check_integer, check_number, check_positive


@dataclass(frozen=True)
class ConstantThenLinearDecay:
    """1.0 for the first `decay_from` fraction of `total` iterations, then linear decay to 0 at `total`.

    CycleGAN: 100 constant + 100 decaying epochs (decay_from 0.5); U-GAT-IT: constant for the first
    half of the iterations, linear to 0 over the second (decay_from 0.5). decay_from 1.0 is constant.
    """

    total: int
    decay_from: float

    def __post_init__(self) -> None:
        check_integer("scheduler.lr_lambda.total", self.total, minimum=1)
        check_number("scheduler.lr_lambda.decay_from", self.decay_from)
        if not 0 <= self.decay_from <= 1:
            raise ConfigError("scheduler.lr_lambda.decay_from", self.decay_from, "must be in [0, 1]")

    def __call__(self, iteration: int) -> float:
        start = self.decay_from * self.total
        if iteration < start or start >= self.total:
            return 1.0
        return max(0.0, 1.0 - (iteration - start) / (self.total - start))


@dataclass(frozen=True)
class ConstantThenStepDecay:
    """1.0 for the first `decay_from` fraction of `total` iterations, then multiplied by `gamma` every
    `step` fraction of `total`.

    LOMIT: 200k iterations, `StepLR(10k, 0.5)` stepped after every iteration past 100k (decay_from
    0.5, step 0.05, gamma 0.5); the official first halving lands one iteration later (110,001), which
    nothing here reproduces on purpose.
    """

    total: int
    decay_from: float
    step: float
    gamma: float

    def __post_init__(self) -> None:
        check_integer("scheduler.lr_lambda.total", self.total, minimum=1)
        check_number("scheduler.lr_lambda.decay_from", self.decay_from)
        if not 0 <= self.decay_from <= 1:
            raise ConfigError("scheduler.lr_lambda.decay_from", self.decay_from, "must be in [0, 1]")
        check_positive("scheduler.lr_lambda.step", self.step)
        check_positive("scheduler.lr_lambda.gamma", self.gamma)

    def __call__(self, iteration: int) -> float:
        start, every = round(self.decay_from * self.total), max(1, round(self.step * self.total))
        if iteration < start:
            return 1.0
        return self.gamma ** ((iteration - start) // every)


def replan(scheduler: LambdaLR, planned: Sequence[Callable[[int], float]]) -> None:
    """Give a scheduler restored from a checkpoint the multipliers this run planned, and set the
    learning rate of the iteration it resumes at (`last_epoch`: one step per iteration) from them."""
    scheduler.lr_lambdas = list(planned)
    groups = scheduler.optimizer.param_groups
    for group, base_lr, multiplier in zip(groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base_lr * multiplier(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in groups]
