"""Experiment loggers: building them from `cfg.logger`, logging images to whichever is active, and
closing W&B runs so each job of a sweep gets its own.

`logger=csv` (default, no extra service), `logger=tensorboard`, `logger=wandb` (set
`WANDB_MODE=offline` to log with no account; `wandb sync` uploads later). Runs of one Hydra sweep
share a W&B group and are tagged with their model and data; the run config is the resolved Hydra
config, which Lightning logs from the model's hyperparameters (`train.py` saves it there).
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, TensorBoardLogger, WandbLogger
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


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """The loggers of `cfg.logger`; W&B ones get the sweep group, model/data tags and, in a sweep,
    the job's overrides as run name, unless the config sets them."""
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if not node or "_target_" not in node:
            continue
        extra: dict[str, Any] = {}
        if issubclass(get_class(node._target_), WandbLogger):
            choices = run_choices(cfg)
            if node.get("group") is None:
                extra["group"] = sweep_group(cfg)
            if node.get("tags") is None:
                extra["tags"] = [choices["model"], choices["data"], *map(str, cfg.get("tags") or [])]
            if node.get("name") is None and extra.get("group"):
                extra["name"] = HydraConfig.get().job.override_dirname or None
        loggers.append(instantiate(node, **extra))
    return loggers


def log_image(loggers: Sequence[Logger], key: str, image: Tensor, step: int, caption: str = "") -> None:
    """Send one image (3, H, W) in [0, 1] to every logger that stores images: W&B as a media
    panel, TensorBoard as an image summary. CSV has none; the PNG on disk is the record there."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[image], step=step, caption=[caption])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, global_step=step)


def finish(loggers: Sequence[Logger]) -> None:
    """Close W&B runs: without it, the next job of a multirun in this process would log into the
    same run (wandb#1314)."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish()
