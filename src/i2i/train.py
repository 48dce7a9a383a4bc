"""`i2i-train`: compose the config, build data, model, callbacks, loggers and trainer, and fit.

`train(cfg)` is the whole run and returns `(metrics, objects)`, so tests and sweeps call it
directly; `main` is only the Hydra wrapper around it.
"""

import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from i2i.callbacks.metrics import SyntheticMetrics
from i2i.callbacks.run import IterationCheckpoint, StopAtIteration
from i2i.cli import print_config, reporting_errors
from i2i.errors import CheckpointError, ConfigError
from i2i.loggers import build_loggers, finish, run_choices

log = logging.getLogger("i2i")


def check_data_fits_model(cfg: DictConfig, datamodule: pl.LightningDataModule) -> None:
    """Refuse a data config of another kind than the model trains on, naming both."""
    model_class = get_class(cfg.model._target_)
    if model_class.data_kind != datamodule.kind:
        choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
        raise ConfigError(
            "data",
            choices.get("data", type(datamodule).__name__),
            f"{model_class.__name__} trains on {model_class.data_kind} data, this data is {datamodule.kind}",
        )


def build_model(cfg: DictConfig) -> pl.LightningModule:
    """The model of `cfg.model` with its loss weights `cfg.loss`; plain lists and dicts throughout,
    so optimizer state (e.g. Adam's betas) stays loadable with `torch.load(weights_only=True)`."""
    build = instantiate(cfg.model, _partial_=True, _convert_="all")
    return build(loss=instantiate(cfg.loss))


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Train the configured model; returns the final metrics and the objects that produced them."""
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("ckpt_path") and not Path(cfg.ckpt_path).is_file():
        raise CheckpointError(f"ckpt_path={cfg.ckpt_path} does not exist (point it at a last.ckpt to resume)")
    datamodule = instantiate(cfg.data, _convert_="all")
    check_data_fits_model(cfg, datamodule)
    model = build_model(cfg)
    # The resolved config travels in every checkpoint (i2i-translate rebuilds the model from it)
    # and is the run config the loggers record.
    model.save_hyperparameters(OmegaConf.to_container(cfg, resolve=True))
    # The stop callback comes first, so the others see `should_stop` in the run's last batch.
    callbacks = [StopAtIteration(cfg.trainer.max_steps)]
    callbacks += [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    loggers = build_loggers(cfg)
    try:
        trainer = instantiate(cfg.trainer, max_steps=-1, max_epochs=-1, callbacks=callbacks, logger=loggers or False)
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        if trainer.is_global_zero:
            write_run_summary(cfg, model.iteration, time.perf_counter() - start)
    finally:
        finish(loggers)
    metrics = next((c.latest for c in callbacks if isinstance(c, SyntheticMetrics)), {})
    objects = {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer, "callbacks": callbacks}
    return metrics, objects


def write_run_summary(cfg: DictConfig, iterations: int, wall_seconds: float) -> None:
    """`<output_dir>/run.json`: what `i2i-compare` reads besides the metrics files (the model and
    data, iterations, wall time of this fit, the resolved config)."""
    summary = {
        **run_choices(cfg),
        "iterations": iterations,
        "wall_seconds": round(wall_seconds, 2),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "run.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


def _report(cfg: DictConfig, metrics: dict[str, float], objects: dict[str, Any]) -> None:
    output_dir = Path(cfg.paths.output_dir)
    lines = [f"run directory: {output_dir}"]
    for callback in objects["callbacks"]:
        if isinstance(callback, IterationCheckpoint):
            lines.append(f"checkpoint:    {callback.last_path}")
    if (output_dir / "samples").is_dir():
        lines.append(f"sample grids:  {output_dir / 'samples'}")
    if metrics:
        lines.append(f"metrics:       {output_dir / 'metrics.json'}")
        lines += [f"  {k} = {v:.4f}" for k, v in metrics.items()]
    log.info("\n".join(lines))


@hydra.main(version_base="1.3", config_path="pkg://i2i.conf", config_name="train")
def _main(cfg: DictConfig) -> float | None:
    with reporting_errors():
        if cfg.get("print_config"):
            print_config(cfg)
        metrics, objects = train(cfg)
        _report(cfg, metrics, objects)
        return metrics.get(cfg.get("optimized_metric")) if cfg.get("optimized_metric") else None


def main() -> None:
    """Console entry point of `i2i-train`."""
    # Lightning-internal deprecation noise that a user cannot act on
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # A generator that first updates after n_critic critic steps (LOMIT) has had its scheduler
    # stepped already; the spine's schedules are functions of the iteration, so nothing is skipped.
    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`")
    _main()


if __name__ == "__main__":
    main()
