"""Experiment loggers: building them from `cfg.logger`, logging images to whichever is active, and
closing W&B runs so each job of a sweep gets its own.

`logger=csv` (default, no extra service), `logger=tensorboard`, `logger=wandb` (set
`WANDB_MODE=offline` to log with no account; `wandb sync` uploads later), or several at once,
`logger=[wandb,tensorboard]`. The TensorBoard and W&B configs compose `csv` in their defaults, so the
run's own record `csv/metrics.csv`, which `i2i-compare` and the notebook read, is kept whichever
loggers are chosen (only `logger=[]` has none). Runs of one Hydra sweep
share a W&B group and are tagged with their model and data; the run config is the resolved Hydra
config, which Lightning logs from the model's hyperparameters (`train.py` saves it there).

A resumed run continues its loggers' records: the same W&B run (its id is stored in every
checkpoint, `logger_runs`; W&B is asked to resume it), `csv/metrics.csv` appended
(`ResumableCSVLogger`), and TensorBoard events in the same folder (the run directory is the same,
`i2i.run_directory`).
"""

import bisect
import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from torch import Tensor

log = logging.getLogger(__name__)


def run_choices(cfg: DictConfig) -> dict[str, str]:
    """The model, data and preset of a run: Hydra's group choices, or (outside Hydra, e.g. a
    composed config in a test) the class names of the model and of the data's domains."""
    choices = dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}
    model = choices.get("model") or get_class(cfg.model._target_).__name__.lower()
    domains = cfg.data.get("domains") or cfg.data
    data = choices.get("data") or get_class(domains._target_).__name__.lower()
    return {"model": model, "data": data, "preset": choices.get("preset") or cfg.get("preset") or ""}


def sweep_group(cfg: DictConfig) -> str | None:
    """`<task>/<sweep dir name>` for the jobs of a multirun (one group per sweep), else None."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return f"{cfg.task_name}/{Path(HydraConfig.get().sweep.dir).name}"


# The checkpoint key under which `logger_runs` records what a resumed run continues.
LOGGER_RUNS_KEY = "i2i_logger_runs"


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSV logger, except that a resumed run (`resumed=True`) continues its metrics.csv
    (Lightning deletes the file whenever its folder is not empty): the earlier rows are kept and
    the new ones appended. A row the resumed run logs again (same step, same columns: iterations
    logged after the checkpoint by a run that was then killed) replaces the earlier one."""

    def __init__(self, *args: Any, resumed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resumed = resumed

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            writer = _ContinuedMetricsWriter if self.resumed else ExperimentWriter
            self._experiment = writer(self.log_dir)
        return self._experiment


class _ContinuedMetricsWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing an existing metrics.csv (see `ResumableCSVLogger`)."""

    def _check_log_dir_exists(self) -> None:  # called by Lightning's __init__, which deletes the file here
        self._earlier: dict[tuple[str, frozenset[str]], int] = {}  # row key -> index in the file
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                reader = csv.DictReader(file)
                for index, row in enumerate(reader):
                    self._earlier[_row_key(row)] = index
                self.metrics_keys = list(reader.fieldnames or [])

    def save(self) -> None:
        relogged = {self._earlier.pop(key) for key in map(_row_key, self.metrics) if key in self._earlier}
        if relogged:
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                rows = [row for index, row in enumerate(csv.DictReader(file)) if index not in relogged]
            with self._fs.open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(rows)
            removed = sorted(relogged)  # the earlier rows after them move up
            self._earlier = {
                key: index - bisect.bisect(removed, index) for key, index in self._earlier.items()
            }
        super().save()


def _row_key(row: dict[str, Any]) -> tuple[str, frozenset[str]]:
    """A metrics row's step and the columns it fills (a CSV row read back has "" for the others)."""
    filled = frozenset(key for key, value in row.items() if key != "step" and value not in ("", None))
    return str(row["step"]), filled


def logger_runs(loggers: Sequence[Logger]) -> dict[str, Any]:
    """What a checkpoint records for a run resumed from it (under `LOGGER_RUNS_KEY`): the W&B run id."""
    runs = {}
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger.version:
            runs["wandb_run_id"] = logger.version
    return runs


def build_loggers(cfg: DictConfig, resumed_runs: dict[str, Any] | None = None) -> list[Logger]:
    """The loggers of `cfg.logger`; W&B ones get the sweep group, model/data tags and, in a sweep,
    the job's overrides as run name, unless the config sets them. `resumed_runs` (`logger_runs` of
    the checkpoint a run resumes from, None for a new run) continues the same W&B run, and
    `metrics.csv` (`ResumableCSVLogger`)."""
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if not node or "_target_" not in node:
            continue
        extra: dict[str, Any] = {}
        logger_class = get_class(node._target_)
        if issubclass(logger_class, ResumableCSVLogger):
            extra["resumed"] = resumed_runs is not None
        if issubclass(logger_class, WandbLogger) and resumed_runs and resumed_runs.get("wandb_run_id"):
            extra |= {"id": resumed_runs["wandb_run_id"], "resume": "allow"}
        if issubclass(logger_class, WandbLogger):
            choices = run_choices(cfg)
            if node.get("group") is None:
                extra["group"] = sweep_group(cfg)
            if node.get("tags") is None:
                extra["tags"] = [choices["model"], choices["data"], *map(str, cfg.get("tags") or [])]
            if node.get("name") is None and extra.get("group"):
                extra["name"] = HydraConfig.get().job.override_dirname or None
        loggers.append(instantiate(node, **extra))
    return loggers


def log_image(loggers: Sequence[Logger], key: str, pixels: Tensor, step: int, caption: str = "") -> None:
    """Send one image, (H, W, 3) uint8 pixels, to every logger that stores images: W&B as a media
    panel, TensorBoard as an image summary. CSV has none; the PNG on disk is the record there.
    Integers, not floats: wandb 0.31's `wandb.Image` turns a float [0, 1] tensor into zeros."""
    if pixels.dtype != torch.uint8 or pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise TypeError(f"log_image takes (H, W, 3) uint8 pixels, got {tuple(pixels.shape)} {pixels.dtype}")
    array = pixels.cpu().numpy()
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[array], step=step, caption=[caption])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, array, global_step=step, dataformats="HWC")


def finish(loggers: Sequence[Logger]) -> None:
    """Close W&B runs: without it, the next job of a multirun in this process would log into the
    same run (wandb#1314)."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish()
