"""Exact synthetic metrics during and after training."""

import json
import logging
from pathlib import Path

import pytorch_lightning as pl

from i2i.callbacks.periodic import EveryNIterations, evaluating
from i2i.errors import check_positive

log = logging.getLogger(__name__)


class SyntheticMetrics(EveryNIterations):
    """Scores the model on the scenario's fixed test images every `every_n_iterations` and at the end.

    Uses the data's scenario (`datamodule.scenario`); with real folder data it does nothing. Values
    go to the loggers under `val/<metric>`, the final ones also to `<dirpath>/metrics.json`.
    """

    def __init__(self, dirpath: str, every_n_iterations: int, n_images: int = 64) -> None:
        super().__init__(every_n_iterations, "synthetic_metrics")
        check_positive("callbacks.synthetic_metrics.n_images", n_images)
        self.dirpath = Path(dirpath)
        self.n_images = n_images
        self.latest: dict[str, float] = {}

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        scenario = getattr(trainer.datamodule, "scenario", None)
        if scenario is None:
            return
        with evaluating(pl_module):
            self.latest = scenario.metrics(pl_module, min(self.n_images, scenario.num_test))
        for logger in trainer.loggers:
            logger.log_metrics({f"val/{k}": v for k, v in self.latest.items()}, step=pl_module.iteration)
        log.info("iteration %d: %s", pl_module.iteration, ", ".join(f"{k}={v:.3f}" for k, v in self.latest.items()))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if self.latest and trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            report = {"iteration": pl_module.iteration, "n_images": self.n_images, "metrics": self.latest}
            (self.dirpath / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
