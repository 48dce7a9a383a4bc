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
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from i2i.callbacks.metrics import SyntheticMetrics
from i2i.callbacks.run import IterationCheckpoint, StopAtIteration
from i2i.callbacks.schedule import ScheduleHorizon
from i2i.checkpoints import load_checkpoint, load_weights
from i2i.cli import (
    print_config,
    reporting_errors,
    run_hydra_cli,
    silence_lightning_advertising,
)
from i2i.errors import CheckpointError, ConfigError, I2IError
from i2i.loggers import LOGGER_RUNS_KEY, build_loggers, finish, run_choices
from i2i.run_directory import refuse_replacing_checkpoints, removed_if_refused
from i2i.schema import TRAIN_VALUES, check_config
from i2i.sweep import sweep_removed_if_refused

log = logging.getLogger("i2i")


def check_data_fits_model(cfg: DictConfig, datamodule: pl.LightningDataModule) -> None:
    """Refuse a data config of another kind than the model trains on, naming both, and a swapped
    `data.direction` for a model that learns both directions."""
    model_class = get_class(cfg.model._target_)
    if model_class.data_kind != datamodule.kind:
        choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
        raise ConfigError(
            "data",
            choices.get("data", type(datamodule).__name__),
            f"{model_class.__name__} trains on {model_class.data_kind} data, this data is {datamodule.kind}",
        )
    direction = getattr(datamodule, "direction", "AtoB")
    one_way = callable(getattr(model_class, "trained_direction", None))  # the OneWayTranslator ability
    if direction != "AtoB" and not one_way:
        raise ConfigError(
            "data.direction",
            direction,
            f"{model_class.__name__} learns both directions; keep AtoB (BtoA is for one-sided cut, fastcut)",
        )


def check_strategy(trainer: pl.Trainer) -> None:
    """Refuse the distributed set-ups that would fail late or train the wrong thing.

    - A multirun (-m) with a DDP strategy that re-runs the command line for its extra processes
      (start_method popen): each child would run the whole sweep again, so ranks train different
      configs of the sweep (ecosystem research §5). Spawned workers or one process per rank started
      from outside (torchrun, SLURM) are fine.
    - Lightning's plain DDP wrapper without unused-parameter detection: every GAN update freezes
      some networks, which that wrapper reports as an error at the first backward pass.
    """
    strategy = trainer.strategy
    if not isinstance(strategy, DDPStrategy):
        return
    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    relaunches = isinstance(strategy.launcher, _SubprocessScriptLauncher) and strategy.num_processes > 1
    if in_sweep and relaunches and not strategy.cluster_environment.creates_processes_externally:
        raise ConfigError(
            "trainer.strategy.start_method",
            "popen",
            f"a multirun (-m) cannot start {strategy.num_processes} DDP processes by re-running the command "
            "line (each would run the whole sweep, training different configs on different ranks); use "
            "trainer=ddp trainer.strategy.start_method=spawn, or one process per rank "
            "(hydra/launcher=slurm, torchrun)",
        )
    if type(strategy) is DDPStrategy and not strategy._ddp_kwargs.get("find_unused_parameters"):
        raise ConfigError(
            "trainer.strategy",
            "ddp",
            "GAN updates leave networks unused, which plain DDP rejects; "
            "use trainer=ddp (i2i's GANDDPStrategy)",
        )


def build_trainer(cfg: DictConfig, **settings: Any) -> pl.Trainer:
    """Lightning's Trainer of `cfg.trainer` with `settings`; what Lightning refuses (an accelerator
    this machine lacks, an unknown precision or device count) is reported in one line."""
    try:
        return instantiate(cfg.trainer, **settings)
    except InstantiationException as error:
        if isinstance(error.__cause__, (MisconfigurationException, ValueError, TypeError)):
            raise I2IError(f"trainer.*: Lightning refuses these settings: {error.__cause__}") from error
        raise


def resume_path(cfg: DictConfig) -> str | None:
    """The checkpoint to resume from: `ckpt_path`, or with `auto_resume` the run directory's own
    last.ckpt when it exists (a requeued SLURM job then continues where it stopped)."""
    if cfg.get("ckpt_path"):
        if not Path(cfg.ckpt_path).is_file():
            raise CheckpointError(
                f"ckpt_path={cfg.ckpt_path} does not exist (point it at a last.ckpt to resume)"
            )
        return cfg.ckpt_path
    checkpoint = OmegaConf.select(cfg, "callbacks.checkpoint.dirpath")
    if cfg.get("auto_resume") and checkpoint and (Path(checkpoint) / "last.ckpt").is_file():
        log.info("auto_resume: continuing from %s", Path(checkpoint) / "last.ckpt")
        return str(Path(checkpoint) / "last.ckpt")
    return None


def final_metrics(callbacks: list[pl.Callback]) -> dict[str, float]:
    """The last synthetic metrics; read back from metrics.json when training ran in spawned workers
    (start_method=spawn), whose callbacks are copies this process never sees."""
    for callback in callbacks:
        if isinstance(callback, SyntheticMetrics):
            if not callback.latest and (callback.dirpath / "metrics.json").is_file():
                return json.loads((callback.dirpath / "metrics.json").read_text())["metrics"]
            return callback.latest
    return {}


def build_model(cfg: DictConfig) -> pl.LightningModule:
    """The model of `cfg.model` with its loss weights `cfg.loss`; plain lists and dicts throughout,
    so optimizer state (e.g. Adam's betas) stays loadable with `torch.load(weights_only=True)`."""
    build = instantiate(cfg.model, _partial_=True, _convert_="all")
    return build(loss=instantiate(cfg.loss))


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Train the configured model; returns the final metrics and the objects that produced them."""
    check_config(cfg, TRAIN_VALUES)
    pl.seed_everything(cfg.seed, workers=True)
    ckpt_path = resume_path(cfg)
    refuse_replacing_checkpoints(cfg, Path(cfg.paths.output_dir), resuming=ckpt_path is not None)
    datamodule = instantiate(cfg.data, _convert_="all")
    check_data_fits_model(cfg, datamodule)
    model = build_model(cfg)
    resumed_runs = None  # what the loggers continue (the W&B run, metrics.csv); None: a new run
    if ckpt_path:
        # Refused here, in one line, before Lightning reads it: a file that is not a readable i2i
        # checkpoint, whose stored run config names anything i2i does not build from a file, or
        # whose weights do not fit the model configured now.
        resumed = load_checkpoint(ckpt_path)[0]
        load_weights(model, resumed["state_dict"], ckpt_path, f"the configured {type(model).__name__}")
        resumed_runs = resumed.get(LOGGER_RUNS_KEY, {})
        del resumed  # Lightning loads the file again; do not hold a second copy through training
    # The resolved config travels in every checkpoint (i2i-translate rebuilds the model from it)
    # and is the run config the loggers record.
    model.save_hyperparameters(OmegaConf.to_container(cfg, resolve=True))
    # The stop callback comes first, so the others see `should_stop` in the run's last batch.
    callbacks = [StopAtIteration(cfg.trainer.max_steps), ScheduleHorizon(cfg.extend_schedule)]
    callbacks += [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    loggers = build_loggers(cfg, resumed_runs)
    try:
        trainer = build_trainer(
            cfg, max_steps=-1, max_epochs=-1, callbacks=callbacks, logger=loggers or False
        )
        check_strategy(trainer)
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        if trainer.is_global_zero:
            write_run_summary(cfg, model.iteration, time.perf_counter() - start)
    finally:
        finish(loggers)
    metrics = final_metrics(callbacks)
    objects = {
        "cfg": cfg,
        "datamodule": datamodule,
        "model": model,
        "trainer": trainer,
        "callbacks": callbacks,
    }
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
    with reporting_errors(), removed_if_refused(Path(cfg.paths.output_dir)):
        if cfg.get("print_config"):
            print_config(cfg)
        metrics, objects = train(cfg)
        _report(cfg, metrics, objects)
        if not cfg.get("optimized_metric"):
            return None
        if cfg.optimized_metric not in metrics:
            known = ", ".join(metrics) or "none: this data has no metrics"
            raise ConfigError(
                "optimized_metric", cfg.optimized_metric, f"choose one of the final metrics ({known})"
            )
        return metrics[cfg.optimized_metric]


def main() -> None:
    """Console entry point of `i2i-train`."""
    # Lightning-internal deprecation noise that a user cannot act on
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # A generator that first updates after n_critic critic steps (LOMIT) has had its scheduler
    # stepped already; the spine's schedules are functions of the iteration, so nothing is skipped.
    warnings.filterwarnings(
        "ignore", message=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"
    )
    silence_lightning_advertising()
    with sweep_removed_if_refused():
        run_hydra_cli(_main)


if __name__ == "__main__":
    main()
