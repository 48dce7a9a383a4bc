"""`i2i-eval`: KID/FID/LPIPS of a trained checkpoint on the test split, as a JSON report.

Two-domain models are scored per direction; few-shot, unlabeled (TUNIT) and attribute (LOMIT) data
per class, domain or attribute vector, with the mean over them (`metrics.scoring`).

    i2i-eval ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt
    i2i-eval ckpt_path=... data=folder data.domains.root=/data/horse2zebra data.image_size=256

Each row of `eval.json` is one score with how it was obtained: metric, value, std, protocol,
n_images, extractor, weights_sha256 and the source commit (DESIGN §7, metrics/protocols.py).
"""

import json
import logging
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from i2i.cli import reporting_errors, source_commit
from i2i.errors import ConfigError, check_positive
from i2i.metrics.protocols import Evaluator
from i2i.metrics.scoring import check_kind, score_model
from i2i.translate import load_model, resolve_device

log = logging.getLogger("i2i")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score the checkpoint `cfg.ckpt_path` on its (or `cfg.data`'s) test images; the report."""
    if cfg.n_images is not None:
        check_positive("n_images", cfg.n_images)
    settings = instantiate(cfg.metrics)
    device = resolve_device(cfg.device)
    model, config = load_model(cfg.ckpt_path, device)
    data_config = cfg.data if cfg.get("data") else config["data"]
    datamodule = instantiate(data_config, _convert_="all")
    kind = getattr(datamodule, "kind", None)
    check_kind(kind, "data")
    if kind != model.data_kind:
        raise ConfigError("data", kind, f"{type(model).__name__} is scored on {model.data_kind} data")
    datamodule.setup()
    evaluator = Evaluator(settings, device=device)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(cfg.seed)
        scores = score_model(evaluator, model, datamodule, cfg.n_images)
    commit = source_commit()
    return {
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "iteration": model.iteration,
        "model": config["model"]["_target_"],
        "data": OmegaConf.to_container(data_config, resolve=True) if isinstance(data_config, DictConfig) else data_config,
        "commit": commit,
        "scores": [score.record(commit=commit) for score in scores],
    }


def default_output(ckpt_path: str) -> Path:
    """<run dir>/eval.json for <run dir>/checkpoints/<name>.ckpt, else beside the checkpoint."""
    path = Path(ckpt_path).resolve()
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return run_dir / "eval.json"


def print_table(report: dict[str, Any]) -> None:
    table = Table(title=f"{report['model'].rsplit('.', 1)[-1]} at iteration {report['iteration']}")
    for column in ("metric", "value", "std", "n_images", "extractor"):
        table.add_column(column, justify="left" if column in ("metric", "extractor") else "right")
    for row in report["scores"]:
        std = "" if row["std"] is None else f"{row['std']:.4f}"
        table.add_row(row["metric"], f"{row['value']:.4f}", std, str(row["n_images"]), row["extractor"])
    Console().print(table)


@hydra.main(version_base="1.3", config_path="pkg://i2i.conf", config_name="eval")
def _main(cfg: DictConfig) -> None:
    with reporting_errors():
        report = evaluate(cfg)
        output = Path(cfg.output) if cfg.output else default_output(cfg.ckpt_path)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2) + "\n")
        print_table(report)
        log.info("wrote %s", output)


def main() -> None:
    """Console entry point of `i2i-eval`."""
    _main()


if __name__ == "__main__":
    main()
