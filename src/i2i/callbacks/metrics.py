"""Metrics during and after training: the exact synthetic ones and KID/FID/LPIPS.

This is where a scenario (`data/`) meets its scorer (`metrics/`): the two packages import nothing
of each other, `SCENARIO_SCORERS` pairs them.
"""

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from i2i.callbacks.periodic import EveryNIterations, evaluating
from i2i.data.synthetic.base import SyntheticScenario
from i2i.data.synthetic.color import ShapesColor
from i2i.data.synthetic.fewshot import ShapesFewShot
from i2i.data.synthetic.geometry import ShapesGeometry
from i2i.data.synthetic.instances import ShapesInstances
from i2i.data.synthetic.local import ShapesLocal
from i2i.data.synthetic.unlabeled import ShapesUnlabeled
from i2i.errors import check_positive
from i2i.metrics.protocols import Evaluator, MetricSettings, Score
from i2i.metrics.scoring import check_kind, score_model
from i2i.metrics.synthetic import (
    score_color,
    score_fewshot,
    score_geometry,
    score_instances,
    score_local,
    score_unlabeled,
)

log = logging.getLogger(__name__)

Scorer = Callable[[Any, Any, int], dict[str, float]]  # (model, scenario, n_images): each its abilities
SCENARIO_SCORERS: dict[type[SyntheticScenario], Scorer] = {
    ShapesColor: score_color,
    ShapesGeometry: score_geometry,
    ShapesInstances: score_instances,
    ShapesLocal: score_local,
    ShapesUnlabeled: score_unlabeled,
    ShapesFewShot: score_fewshot,
}


def score_scenario(scenario: SyntheticScenario, model: Any, n_images: int) -> dict[str, float]:
    """The exact metrics of `model` on the first `n_images` test images of `scenario` (per source
    domain, or per training class for shapes_fewshot), by the scorer of its class or nearest base
    class in `SCENARIO_SCORERS`. Call it with the model in eval mode (`callbacks.periodic.evaluating`)."""
    scorer = next((SCENARIO_SCORERS[c] for c in type(scenario).__mro__ if c in SCENARIO_SCORERS), None)
    if scorer is None:
        raise TypeError(f"no scorer for the scenario {type(scenario).__name__}: add one to SCENARIO_SCORERS")
    return scorer(model, scenario, n_images)


class SyntheticMetrics(EveryNIterations):
    """Scores the model on the scenario's fixed test images every `every_n_iterations` and at the end.

    Uses the data's scenario (`datamodule.scenario`, scored by `score_scenario`); with real folder
    data it does nothing. Values go to the loggers under `val/<metric>`, the final ones also to
    `<dirpath>/metrics.json`.
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
            self.latest = score_scenario(scenario, pl_module, min(self.n_images, scenario.num_test))
        for logger in trainer.loggers:
            logger.log_metrics({f"val/{k}": v for k, v in self.latest.items()}, step=pl_module.iteration)
        log.info(
            "iteration %d: %s", pl_module.iteration, ", ".join(f"{k}={v:.3f}" for k, v in self.latest.items())
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if self.latest and trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            report = {"iteration": pl_module.iteration, "n_images": self.n_images, "metrics": self.latest}
            (self.dirpath / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")


class ImageMetrics(EveryNIterations):
    """KID/FID per direction, and LPIPS diversity for multimodal models, on the first `n_images`
    test images of each domain every `every_n_iterations` and at the end (DESIGN §7). Few-shot,
    unlabeled and attribute data are scored per class, domain or attribute vector, and their mean,
    on at most `n_images` of each (`metrics.scoring`).

    The networks and metric states live here, never on the model, so checkpoints stay free of the
    Inception weights; the real images' features are extracted once per run. Under DDP each rank
    scores its share and the states are gathered, so every rank gets the numbers of the whole
    subset. Values go to the loggers as `val/<metric>_<direction>` (`_proxy` names with the proxy
    extractor); rank 0 writes the final scores, with their protocols, and the history to
    `<dirpath>/image_metrics.json`.
    """

    def __init__(self, dirpath: str, every_n_iterations: int, n_images: int, metrics: MetricSettings) -> None:
        super().__init__(every_n_iterations, "image_metrics")
        check_positive("callbacks.image_metrics.n_images", n_images)
        self.dirpath = Path(dirpath)
        self.n_images = n_images
        self.settings = metrics
        self.evaluator: Evaluator | None = None
        self.latest: list[Score] = []
        self.history: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        check_kind(getattr(trainer.datamodule, "kind", None), "data")
        if self.evaluator is None:
            self.evaluator = Evaluator(self.settings, device=pl_module.device)

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        with evaluating(pl_module):
            self.latest = score_model(
                self.evaluator,
                pl_module,
                trainer.datamodule,
                self.n_images,
                trainer.global_rank,
                trainer.world_size,
            )
        values = {k: v for score in self.latest for k, v in score.logs().items()}
        self.history.append({"iteration": pl_module.iteration, "metrics": values})
        for logger in trainer.loggers:
            logger.log_metrics({f"val/{k}": v for k, v in values.items()}, step=pl_module.iteration)
        log.info(
            "iteration %d: %s", pl_module.iteration, ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if self.latest and trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            report = {
                "iteration": pl_module.iteration,
                "scores": [score.record() for score in self.latest],
                "history": self.history,
            }
            (self.dirpath / "image_metrics.json").write_text(json.dumps(report, indent=2) + "\n")
