"""`i2i-eval`: KID/FID/LPIPS of a trained checkpoint on the test split, or FID/KID of two folders,
as a JSON report.

Two-domain models are scored per direction; few-shot, unlabeled (TUNIT) and attribute (LOMIT) data
per class, domain or attribute vector, with the mean over them (`metrics.scoring`).

    i2i-eval ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt
    i2i-eval ckpt_path=... data=folder data.domains.root=/data/horse2zebra data.image_size=256
    i2i-eval fake_dir=translated real_dir=/data/horse2zebra/testB     # translations made elsewhere
    i2i-eval ckpt_path=<run>/checkpoints/last.ckpt checkpoints=all    # every kept checkpoint: last and best

Two folders are scored with the same extractor, preprocessing (uint8 images, the extractor's
resize) and KID protocol as a checkpoint; a score from fewer images than it needs to mean much
(FID: fewer than the 2048 feature dimensions) carries a `warning` in its row and on stderr.

Each row of `eval.json` is one score with how it was obtained: metric, value, std, protocol,
n_images, extractor, weights_sha256 and the source commit (DESIGN §7, metrics/protocols.py).

`checkpoints=all` scores every checkpoint kept beside `ckpt_path` (`last.ckpt` and the `iter_<n>.ckpt`
of `callbacks.checkpoint.keep_every`), each with the same test images and random draws. The report's
`scores` are then those of the last checkpoint (the highest iteration), `checkpoints` holds every
checkpoint's, and `best` the lowest FID/KID of each direction or class over the checkpoints with its
iteration: the checkpoint is selected on the very test images it is scored on, which is how CUT, UNSB
and DCLGAN report FID, and is an optimistic number, not a held-out one; compare papers' numbers with
the protocol they used.
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
from i2i.errors import CheckpointError, ConfigError, DataError, check_choice, check_positive
from i2i.metrics.protocols import Evaluator, Score, feature_set_scores, small_sample_warning
from i2i.metrics.scoring import check_kind, score_model
from i2i.schema import EVAL_VALUES, check_config
from i2i.translate import resolve_device

log = logging.getLogger("i2i")

#: `checkpoints`: score the checkpoint `ckpt_path` names, or every checkpoint kept in its folder
CHECKPOINT_SELECTIONS = ("given", "all")
#: the scores, by name, of which the lowest over the checkpoints is reported as the best
LOWER_IS_BETTER = ("fid", "kid", "mean_kid", "mfid", "mkid")
BEST_SELECTION = (
    "lowest of {count} checkpoints, selected on the test images it is scored on (as CUT, UNSB and "
    "DCLGAN report FID): optimistic, not a held-out score"
)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score the checkpoint `cfg.ckpt_path` on its (or `cfg.data`'s) test images, or the images of
    `cfg.fake_dir` against those of `cfg.real_dir`; the report."""
    check_config(cfg, EVAL_VALUES)
    check_choice("checkpoints", cfg.checkpoints, CHECKPOINT_SELECTIONS)
    folders = (cfg.fake_dir, cfg.real_dir)
    if cfg.ckpt_path is not None and any(folders):
        raise ConfigError(
            "ckpt_path", cfg.ckpt_path, "give either ckpt_path or fake_dir and real_dir, not both"
        )
    if any(folders):
        if cfg.checkpoints != "given":
            raise ConfigError(
                "checkpoints", cfg.checkpoints, "selects checkpoints: give ckpt_path, not folders"
            )
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
    given = Path(cfg.ckpt_path)
    checkpoints = kept_checkpoints(given) if cfg.checkpoints == "all" else [given]
    evaluator, datamodule, data_config = None, None, None
    scored: dict[int, tuple[Path, str, list[Score]]] = {}  # iteration -> (checkpoint, model, scores)
    for checkpoint in checkpoints:
        model, config = load_model(checkpoint, device)
        if model.iteration in scored:  # last.ckpt written at an iteration also kept as iter_<n>.ckpt
            continue
        if datamodule is None:
            data_config = cfg.data if cfg.get("data") else config["data"]
            datamodule = instantiate(data_config, _convert_="all")
            check_kind(getattr(datamodule, "kind", None), "data")
        if datamodule.kind != model.data_kind:
            raise ConfigError(
                "data", datamodule.kind, f"{type(model).__name__} is scored on {model.data_kind} data"
            )
        if evaluator is None:
            datamodule.setup()
            evaluator = Evaluator(settings, device=device)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(cfg.seed)
            scores = score_model(evaluator, model, datamodule, cfg.n_images)
        scored[model.iteration] = (checkpoint, config["model"]["_target_"], scores)
        del model
    commit = source_commit()
    last = max(scored)
    last_path, target, last_scores = scored[last]
    report = {
        "checkpoint": str(last_path.resolve()),
        "iteration": last,
        "model": target,
        "data": OmegaConf.to_container(data_config, resolve=True)
        if isinstance(data_config, DictConfig)
        else data_config,
        "commit": commit,
        "scores": [score.record(commit=commit) for score in last_scores],
    }
    if cfg.checkpoints == "all":
        report["checkpoints"] = [
            {
                "checkpoint": str(path.resolve()),
                "iteration": iteration,
                "scores": [score.record(commit=commit) for score in scores],
            }
            for iteration, (path, _, scores) in sorted(scored.items())
        ]
        report["best"] = best_scores(scored)
    return report


def kept_checkpoints(path: Path) -> list[Path]:
    """Every checkpoint in the folder of the checkpoint `path`: the `iter_<n>.ckpt` kept by
    `callbacks.checkpoint.keep_every`, in order, then the others (`last.ckpt`)."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return sorted(path.parent.glob("*.ckpt"), key=lambda p: (not p.name.startswith("iter_"), p.name))


def best_scores(scored: dict[int, tuple[Path, str, list[Score]]]) -> list[dict[str, Any]]:
    """Per lower-is-better score (`LOWER_IS_BETTER`) of the last checkpoint: its lowest value over
    the checkpoints `scored` (iteration -> (checkpoint, model, scores)), the earliest on a tie, with
    that checkpoint's iteration and path, the last checkpoint's value, and how it was selected."""
    by_metric: dict[str, list[tuple[float, int, Path]]] = {}
    for iteration, (path, _, scores) in sorted(scored.items()):
        for score in scores:
            if score.name.removesuffix("_proxy") in LOWER_IS_BETTER:
                by_metric.setdefault(score.metric, []).append((score.value, iteration, path))
    last = max(scored)
    rows = []
    for score in scored[last][2]:
        if score.metric not in by_metric:
            continue
        value, iteration, path = min(by_metric[score.metric], key=lambda entry: (entry[0], entry[1]))
        rows.append(
            {
                "metric": score.metric,
                "value": value,
                "iteration": iteration,
                "checkpoint": str(path.resolve()),
                "last_value": score.value,
                "last_iteration": last,
                "selection": BEST_SELECTION.format(count=len(by_metric[score.metric])),
            }
        )
    return rows


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
        if "checkpoints" in report:
            title += f", the last of {len(report['checkpoints'])} checkpoints"
    table = Table(title=title)
    for column in ("metric", "value", "std", "n_images", "extractor"):
        table.add_column(column, justify="left" if column in ("metric", "extractor") else "right")
    for row in report["scores"]:
        std = "" if row["std"] is None else f"{row['std']:.4f}"
        table.add_row(row["metric"], f"{row['value']:.4f}", std, str(row["n_images"]), row["extractor"])
    Console().print(table)
    if report.get("best"):
        count = len(report["checkpoints"])
        best = Table(
            title=f"best of {count} checkpoints, selected on the test images (as CUT, UNSB, DCLGAN report)"
        )
        for column in ("metric", "best", "at iteration", "last", "at iteration "):
            best.add_column(column, justify="left" if column == "metric" else "right")
        for row in report["best"]:
            best.add_row(
                row["metric"],
                f"{row['value']:.4f}",
                str(row["iteration"]),
                f"{row['last_value']:.4f}",
                str(row["last_iteration"]),
            )
        Console().print(best)


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
