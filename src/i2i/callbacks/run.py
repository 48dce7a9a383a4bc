"""Run length and checkpoints, counted in iterations (one batch = one iteration).

Lightning's `global_step` counts optimizer steps, which in manual optimization is two or more per
batch; these callbacks read the model's own `iteration` counter instead, so `trainer.max_steps`
and `every_n_iterations` in the configs mean iterations for every model.
"""

import logging
import os
from pathlib import Path

import pytorch_lightning as pl

from i2i.callbacks.periodic import EveryNIterations
from i2i.errors import check_positive

log = logging.getLogger(__name__)


class StopAtIteration(pl.Callback):
    """Ends training once the model has run `max_iterations` iterations."""

    def __init__(self, max_iterations: int) -> None:
        check_positive("trainer.max_steps", max_iterations)
        self.max_iterations = max_iterations

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if pl_module.iteration >= self.max_iterations:
            trainer.should_stop = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.iteration >= self.max_iterations:  # resumed from a finished run
            trainer.should_stop = True


class IterationCheckpoint(EveryNIterations):
    """Writes `last.ckpt` every `every_n_iterations` and at the end of training, atomically.

    The checkpoint is written to a temporary file and renamed over `last.ckpt`, so a run killed while
    saving keeps the previous checkpoint intact. With `keep_every` set, a copy `iter_<n>.ckpt` is
    also kept every that many iterations.
    """

    def __init__(self, dirpath: str, every_n_iterations: int, keep_every: int | None = None) -> None:
        super().__init__(every_n_iterations, "checkpoint")
        self.dirpath = Path(dirpath)
        self.keep_every = keep_every
        self.last_path = self.dirpath / "last.ckpt"

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        iteration = pl_module.iteration
        temporary = self.dirpath / f".last.ckpt.tmp{os.getpid()}"
        trainer.save_checkpoint(temporary, weights_only=False)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            os.replace(temporary, self.last_path)
            if self.keep_every and iteration % self.keep_every == 0:
                os.link(self.last_path, self.dirpath / f"iter_{iteration:07d}.ckpt")
            log.info("iteration %d: checkpoint %s", iteration, self.last_path)
