"""Training progress in iterations, the unit of `trainer.max_steps`, with speed, ETA and the latest losses.

Lightning's bars count batches of the epoch, which says nothing about a run that is measured in
iterations and crosses epochs. Here one status reads
`iteration 150/2000  3.2 it/s  ETA 9:38  d=0.512 g=3.210`: iterations of the model's own counter,
the speed of this fit (a resumed run times only what it trains), the time left at that speed and the
discriminator's and generator's total losses as last logged (`train/d_loss`, `train/g_loss`, every
`trainer.log_every_n_steps`). On a terminal it is a live bar; without one (SLURM, nohup, a file)
it is one plain line every `every_n_iterations` and at the end, so a log shows where a run is.
"""

import sys
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks.progress import ProgressBar
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from i2i.errors import check_positive

LOSSES = {"d": "train/d_loss", "g": "train/g_loss"}
REFRESH_SECONDS = 0.1  # a live bar redraws at most this often: drawing costs more than a fast iteration


def format_duration(seconds: float) -> str:
    """`9:38` under an hour, `2:36:54` above."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status(iteration: int, max_iterations: int, rate: float | None, losses: dict[str, float]) -> str:
    """`3.2 it/s  ETA 9:38  d=0.512 g=3.210`, what follows the iteration count; parts not yet known
    (the speed before one iteration, losses before the first logged step) are left out."""
    parts = []
    if rate:
        parts += [f"{rate:.3g} it/s", f"ETA {format_duration(max(0, max_iterations - iteration) / rate)}"]
    if losses:
        parts.append(" ".join(f"{name}={value:.3f}" for name, value in losses.items()))
    return "  ".join(parts)


class IterationProgress(ProgressBar):
    """Progress of `trainer.max_steps` iterations: a live bar on a terminal, else a line every N iterations.

    Args:
        max_iterations: the run's length (`trainer.max_steps`).
        every_n_iterations: without a terminal, print one line every this many iterations.
        terminal: draw the live bar (true) or print lines (false); null decides by `sys.stderr.isatty()`.
    """

    def __init__(self, max_iterations: int, every_n_iterations: int, terminal: bool | None = None) -> None:
        super().__init__()
        check_positive("trainer.max_steps", max_iterations)
        check_positive("callbacks.progress_bar.every_n_iterations", every_n_iterations)
        self.max_iterations = max_iterations
        self.every_n_iterations = every_n_iterations
        self.terminal = terminal
        self._enabled = True
        self._bar: Progress | None = None
        self._task: Any = None
        self._started_at = 0.0
        self._first_iteration = 0
        self._drawn_at = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started_at, self._first_iteration = time.perf_counter(), pl_module.iteration
        if not self._enabled:
            return
        live = self.terminal if self.terminal is not None else sys.stderr.isatty()
        if live:
            console = Console(file=sys.stderr, force_terminal=True)
            self._bar = Progress(
                TextColumn("iteration {task.completed}/{task.total}"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                console=console,
                auto_refresh=False,
            )
            self._task = self._bar.add_task(
                "", total=self.max_iterations, completed=pl_module.iteration, status=""
            )
            self._bar.start()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if not self._enabled:
            return
        iteration = pl_module.iteration
        last = iteration >= self.max_iterations or trainer.should_stop
        if self._bar is not None:
            now = time.perf_counter()
            if last or now - self._drawn_at >= REFRESH_SECONDS:
                self._bar.update(self._task, completed=iteration, status=self._status(trainer, iteration))
                self._bar.refresh()
                self._drawn_at = now
        elif iteration % self.every_n_iterations == 0 or last:
            line = f"iteration {iteration}/{self.max_iterations}  {self._status(trainer, iteration)}"
            print(line.rstrip(), file=sys.stderr, flush=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, error: BaseException) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _status(self, trainer: pl.Trainer, iteration: int) -> str:
        elapsed = time.perf_counter() - self._started_at
        done = iteration - self._first_iteration
        rate = done / elapsed if done > 0 and elapsed > 0 else None
        metrics = trainer.callback_metrics
        losses = {name: float(metrics[key]) for name, key in LOSSES.items() if key in metrics}
        return status(iteration, self.max_iterations, rate, losses)
