"""The base of callbacks that act every N iterations and once more when training ends."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytorch_lightning as pl
import torch

from i2i.errors import check_integer


class EveryNIterations(pl.Callback):
    """Calls `run` after every `every_n_iterations`-th iteration and at the end of training, never
    twice for the same iteration. `name` is the callback's key in the config, for error messages.

    When the run-length callback (placed before this one) stops training, `run` happens inside that
    last batch rather than after the loop has wound down, so a checkpoint written then resumes
    exactly like one written mid-run."""

    def __init__(self, every_n_iterations: int, name: str) -> None:
        check_integer(f"callbacks.{name}.every_n_iterations", every_n_iterations, minimum=1)
        self.every_n_iterations = every_n_iterations
        self._ran_at: int | None = None

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise NotImplementedError

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if pl_module.iteration % self.every_n_iterations == 0 or trainer.should_stop:
            self._run_once(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._run_once(trainer, pl_module)

    def _run_once(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._ran_at != pl_module.iteration:
            self.run(trainer, pl_module)
            self._ran_at = pl_module.iteration


@contextmanager
def evaluating(pl_module: pl.LightningModule) -> Iterator[None]:
    """Eval mode and no gradients for the duration, then back to training; random draws inside
    (e.g. sampled styles) come from a forked generator, so the training RNG does not shift and a
    resumed run stays identical to an uninterrupted one."""
    was_training = pl_module.training
    pl_module.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            yield
    finally:
        pl_module.train(was_training)
