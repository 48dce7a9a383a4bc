"""What a resumed run does when its learning-rate schedule was planned for another horizon.

A checkpoint carries its schedulers' multipliers with their horizon (`total`), and restoring them
would keep the old plan: a finished run extended with a larger `trainer.max_steps` would go on at
learning rate 0. `extend_schedule` (conf/train.yaml) chooses instead: `replan` continues on the
schedule planned for the configured horizon (`i2i.models.schedules.replan`), `refuse` stops with
one line. A run resumed with its own horizon is left exactly as restored.
"""

import copy
import logging
from typing import Any

import pytorch_lightning as pl

from i2i.errors import CheckpointError, check_choice
from i2i.models.schedules import replan

log = logging.getLogger(__name__)

EXTEND_POLICIES = ("replan", "refuse")


def _multipliers(scheduler: Any) -> list[Any]:
    # only LambdaLR-style schedulers have a plan of their own; StepLR and the like have no horizon
    return list(getattr(scheduler, "lr_lambdas", []))


def _plan(multipliers: list[Any]) -> list[dict[str, Any]]:
    return [dict(vars(multiplier)) for multiplier in multipliers]


class ScheduleHorizon(pl.Callback):
    """Re-plans (or refuses) the learning-rate schedules a checkpoint restores with another horizon."""

    def __init__(self, extend: str) -> None:
        check_choice("extend_schedule", extend, EXTEND_POLICIES)
        self.extend = extend
        self._planned: list[list[Any]] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The schedulers are built from the config by now, and not yet restored from a checkpoint.
        configs = trainer.lr_scheduler_configs
        self._planned = [copy.deepcopy(_multipliers(config.scheduler)) for config in configs]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        changed = [
            (config.scheduler, planned)
            for config, planned in zip(trainer.lr_scheduler_configs, self._planned, strict=True)
            if _plan(_multipliers(config.scheduler)) != _plan(planned)
        ]
        if not changed:
            return
        # one multiplier per optimizer's single parameter group: the first one names the change
        restored, now = _plan(_multipliers(changed[0][0]))[0], _plan(changed[0][1])[0]
        keys = [key for key in sorted(now) if restored.get(key) != now[key]]
        was = ", ".join(f"{key}={restored.get(key)}" for key in keys)
        planned_now = ", ".join(f"{key}={now[key]}" for key in keys)
        if self.extend == "refuse":
            raise CheckpointError(
                f"the checkpoint's learning-rate schedule was planned with {was} "
                f"(model.scheduler.lr_lambda, from trainer.max_steps), this run with {planned_now}, and "
                "extend_schedule=refuse: resume with the checkpoint's trainer.max_steps, or set "
                "extend_schedule=replan to continue on the schedule planned for this run"
            )
        for scheduler, planned in changed:
            replan(scheduler, planned)
        learning_rates = ", ".join(f"{lr:.3g}" for scheduler, _ in changed for lr in scheduler.get_last_lr())
        log.info(
            "iteration %d: learning-rate schedule re-planned from %s to %s; learning rate now %s",
            pl_module.iteration,
            was,
            planned_now,
            learning_rates,
        )
