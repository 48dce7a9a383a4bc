"""Run length and checkpoints, counted in iterations (one batch = one iteration).

Lightning's `global_step` counts optimizer steps, which in manual optimization is two or more per
batch; these callbacks read the model's own `iteration` counter instead, so `trainer.max_steps`
and `every_n_iterations` in the configs mean iterations for every model.
"""

import logging
import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from i2i.callbacks.periodic import EveryNIterations
from i2i.errors import check_divisible, check_integer
from i2i.loggers import LOGGER_RUNS_KEY, logger_runs

log = logging.getLogger(__name__)


class StopAtIteration(pl.Callback):
    """Ends training once the model has run `max_iterations` iterations."""

    def __init__(self, max_iterations: int) -> None:
        check_integer("trainer.max_steps", max_iterations, minimum=1)
        self.max_iterations = max_iterations

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if pl_module.iteration >= self.max_iterations:
            trainer.should_stop = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.iteration >= self.max_iterations:  # resumed from a finished run
            trainer.should_stop = True


class SyncedCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint straight to the path it is given and syncs it to disk.

    Lightning's own writer (`_atomic_save`, through fsspec's transaction) stages the file with
    `tempfile.mkstemp()` in the system temp dir and moves it over afterwards, so every kill during a
    write left a full-size file there, and it syncs nothing. `IterationCheckpoint` gives this a
    temporary name beside `last.ckpt` and renames it once it is on disk.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())


class IterationCheckpoint(EveryNIterations):
    """Writes `last.ckpt` every `every_n_iterations` and at the end of training, atomically.

    The checkpoint is written to a temporary file beside it (`.last.ckpt.tmp<pid>`), synced to disk
    and renamed over `last.ckpt` (the folder is synced too), so a run killed while saving keeps the
    previous checkpoint intact; a temporary file such a kill left behind is removed when the next
    run in this folder starts. With `keep_every` set, a copy `iter_<n>.ckpt` is also kept every that
    many iterations. Every checkpoint also records the experiment loggers' run ids (W&B), so that a
    resumed run continues the same W&B run.
    """

    TEMPORARY_PREFIX = ".last.ckpt.tmp"

    def __init__(self, dirpath: str, every_n_iterations: int, keep_every: int | None = None) -> None:
        super().__init__(every_n_iterations, "checkpoint")
        self.dirpath = Path(dirpath)
        if keep_every is not None:  # a copy is kept when a save falls on it: a multiple of the saves
            check_divisible(
                "callbacks.checkpoint.keep_every",
                keep_every,
                every_n_iterations,
                "a copy is kept at a save; callbacks.checkpoint.every_n_iterations saves",
            )
        self.keep_every = keep_every
        self.last_path = self.dirpath / "last.ckpt"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        trainer.strategy.checkpoint_io = SyncedCheckpointIO()
        if trainer.is_global_zero and self.dirpath.is_dir():
            for stale in self.dirpath.glob(f"{self.TEMPORARY_PREFIX}*"):
                log.info("removing %s, left by a run stopped while saving", stale)
                stale.unlink()

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[LOGGER_RUNS_KEY] = logger_runs(trainer.loggers)

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        iteration = pl_module.iteration
        temporary = self.dirpath / f"{self.TEMPORARY_PREFIX}{os.getpid()}"
        try:
            trainer.save_checkpoint(temporary, weights_only=False)  # every rank takes part; rank 0 writes
        except BaseException:
            if trainer.is_global_zero:
                temporary.unlink(missing_ok=True)
            raise
        if trainer.is_global_zero:
            os.replace(temporary, self.last_path)
            sync_directory(self.dirpath)
            if self.keep_every and iteration % self.keep_every == 0:
                os.link(self.last_path, self.dirpath / f"iter_{iteration:07d}.ckpt")
            log.info("iteration %d: checkpoint %s", iteration, self.last_path)


def sync_directory(path: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk, where the platform allows it."""
    if os.name == "nt":  # Windows cannot open a folder; NTFS journals renames itself
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
