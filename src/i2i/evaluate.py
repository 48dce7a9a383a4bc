"""`i2i-eval`: KID/FID/LPIPS of a trained checkpoint on the test split, or FID/KID of two folders,
as a JSON report.

Two-domain models are scored per direction; few-shot, unlabeled (TUNIT) and attribute (LOMIT) data
per class, domain or attribute vector, with the mean over them (`metrics.scoring`).

    i2i-eval ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt
    i2i-eval ckpt_path=... data=folder data.domains.root=/data/horse2zebra data.image_size=256
    i2i-eval fake_dir=translated real_dir=/data/horse2zebra/testB     # translations made elsewhere

Two folders are scored with the same extractor, preprocessing (uint8 images, the extractor's
resize) and KID protocol as a checkpoint; a score from fewer images than it needs to mean much
(FID: fewer than the 2048 feature dimensions) carries a `warning` in its row and on stderr.

Each row of `eval.json` is one score with how it was obtained: metric, value, std, protocol,
n_images, extractor, weights_sha256 and the source commit (DESIGN §7, metrics/protocols.py).
"""

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
import torch
import torchvision.transforms.functional as TF
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from i2i.checkpoints import load_model
from i2i.cli import reporting_errors, run_hydra_cli, source_commit
from i2i.data.folder import list_images, read_image
from i2i.errors import ConfigError, DataError, check_positive
from i2i.metrics.protocols import Evaluator, feature_set_scores, small_sample_warning
from i2i.metrics.scoring import check_kind, score_model
from i2i.schema import EVAL_VALUES, check_config
from i2i.translate import resolve_device

log = logging.getLogger("i2i")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score the checkpoint `cfg.ckpt_path` on its (or `cfg.data`'s) test images, or the images of
    `cfg.fake_dir` against those of `cfg.real_dir`; the report."""
    check_config(cfg, EVAL_VALUES)
    folders = (cfg.fake_dir, cfg.real_dir)
    if cfg.ckpt_path is not None and any(folders):
        raise ConfigError(
            "ckpt_path", cfg.ckpt_path, "give either ckpt_path or fake_dir and real_dir, not both"
        )
    if any(folders):
        return evaluate_folders(cfg)
    if cfg.ckpt_path is None:
        raise ConfigError(
            "ckpt_path",
            None,
            "give ckpt_path=<checkpoint>, or fake_dir=<images> real_dir=<images> (two folders)",
        )
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
        "data": OmegaConf.to_container(data_config, resolve=True)
        if isinstance(data_config, DictConfig)
        else data_config,
        "commit": commit,
        "scores": [score.record(commit=commit) for score in scores],
    }


def folder_features(evaluator: Evaluator, path: Path) -> torch.Tensor:
    """Extractor features of every image in the folder `path`, read as uint8 RGB the way a saved
    translation is; consecutive images of one size share a batch."""
    batch_size, device, extractor = evaluator.settings.batch_size, evaluator.device, evaluator.extractor
    features, batch = [], []
    for file in list_images(path):
        pixels = TF.pil_to_tensor(read_image(file))
        if batch and (len(batch) == batch_size or batch[0].shape != pixels.shape):
            features.append(extractor(torch.stack(batch).to(device)))
            batch = []
        batch.append(pixels)
    features.append(extractor(torch.stack(batch).to(device)))
    return torch.cat(features)


def evaluate_folders(cfg: DictConfig) -> dict[str, Any]:
    """FID/KID of the images in `cfg.fake_dir` against those in `cfg.real_dir`; the report."""
    folders = {}
    for key in ("fake_dir", "real_dir"):
        if cfg[key] is None:
            raise ConfigError(key, None, "fake_dir and real_dir go together: give both folders")
        folders[key] = Path(cfg[key]).expanduser().resolve()
        if not folders[key].is_dir():
            raise DataError(f"{key}={cfg[key]}: no such folder")
    settings = instantiate(cfg.metrics)
    if not {"kid", "fid"} & set(settings.names):
        raise ConfigError("metrics.names", list(settings.names), "scoring two folders needs kid or fid")
    evaluator = Evaluator(settings, device=resolve_device(cfg.device))
    fake = folder_features(evaluator, folders["fake_dir"])
    real = folder_features(evaluator, folders["real_dir"])
    where = f"folder {folders['real_dir']}"
    scores = feature_set_scores(settings, evaluator.extractor, fake, real, where)
    commit = source_commit()
    rows = []
    for score in scores:
        row = score.record(commit=commit)
        num_features, kid_size = evaluator.extractor.num_features, settings.kid_max_subset_size
        warning = small_sample_warning(score.name, len(fake), len(real), num_features, kid_size)
        if warning is not None:
            print(f"warning: {score.metric}: {warning}", file=sys.stderr)
            row["warning"] = warning
        rows.append(row)
    return {
        "fake_dir": str(folders["fake_dir"]),
        "real_dir": str(folders["real_dir"]),
        "commit": commit,
        "scores": rows,
    }


def default_output(ckpt_path: str) -> Path:
    """<run dir>/eval.json for <run dir>/checkpoints/<name>.ckpt, else beside the checkpoint."""
    path = Path(ckpt_path).resolve()
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return run_dir / "eval.json"


def default_folder_output(fake_dir: str) -> Path:
    """<fake_dir>_eval.json beside the scored folder (never inside it, where it would be an input)."""
    path = Path(fake_dir).expanduser().resolve()
    return path.with_name(f"{path.name}_eval.json")


def print_table(report: dict[str, Any]) -> None:
    """The report's scores as a table on stdout."""
    if "fake_dir" in report:
        title = f"{report['fake_dir']} against {report['real_dir']}"
    else:
        title = f"{report['model'].rsplit('.', 1)[-1]} at iteration {report['iteration']}"
    table = Table(title=title)
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
        if cfg.output:
            output = Path(cfg.output)
        else:
            output = default_output(cfg.ckpt_path) if cfg.ckpt_path else default_folder_output(cfg.fake_dir)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2) + "\n")
        print_table(report)
        log.info("wrote %s", output)


def main() -> None:
    """Console entry point of `i2i-eval`."""
    run_hydra_cli(_main)


if __name__ == "__main__":
    main()
