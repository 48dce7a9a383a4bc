"""Exponential moving average of generator weights (FUNIT's `gen_test`, TUNIT's G_EMA).

The averaged copy is a submodule of the model (so it is saved in checkpoints, resumes exactly and
is what translation uses); this callback only updates it. A model that keeps averages is
`i2i.abilities.WeightAveraged`: its `ema_pairs()` returns (average, live) module pairs.
"""

import pytorch_lightning as pl
import torch

from i2i.abilities import WeightAveraged
from i2i.errors import ConfigError


class EMAUpdate(pl.Callback):
    """After every iteration from `start_iteration` on: average = decay * average + (1 - decay) * live.

    Before `start_iteration` the average copies the live weights, so it starts from the trained
    model rather than from initialisation (TUNIT's `ema_start`); FUNIT uses start_iteration 0.
    Buffers (e.g. norm statistics) are copied, not averaged.
    """

    def __init__(self, decay: float, start_iteration: int = 0) -> None:
        if not 0 <= decay < 1:
            raise ConfigError("callbacks.ema.decay", decay, "must be in [0, 1)")
        self.decay = decay
        self.start_iteration = start_iteration

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not isinstance(pl_module, WeightAveraged):
            raise ConfigError("callbacks.ema", type(pl_module).__name__, "this model keeps no weight average")

    @torch.no_grad()
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        decay = self.decay if pl_module.iteration > self.start_iteration else 0.0
        for average, live in pl_module.ema_pairs():
            averaged = [p for p in average.parameters()]
            torch._foreach_lerp_(averaged, [p.detach() for p in live.parameters()], 1 - decay)
            for target, source in zip(average.buffers(), live.buffers()):
                target.copy_(source)
