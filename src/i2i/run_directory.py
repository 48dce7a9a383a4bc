"""Which run directory `i2i-train` writes into, and what is left of it when a start is refused.

- A resumed run continues its own run directory: `i2i-train ckpt_path=<run>/checkpoints/last.ckpt`
  writes into `<run>` (checkpoints, `csv/metrics.csv` appended, samples, metrics, TensorBoard, the
  same W&B run), not into a new timestamped directory, unless the command line chooses the
  directory itself (`hydra.run.dir=...` or `paths.output_dir=...`).
- A new run (no `ckpt_path`, no `auto_resume`) is refused where a checkpoint already exists, so
  an earlier run's `last.ckpt` is never replaced.
- A start refused before training (a bad config value, a data/model mismatch) leaves no run
  directory behind; a directory that existed before the start is never removed.

Hydra creates the run directory and writes `.hydra/` and `train.log` before `i2i-train`'s code
runs, so the first two decisions are taken in a Hydra callback (`RunDirectory.on_run_start`,
registered in conf/train.yaml), before Hydra writes anything.
"""

import copy
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from i2i.cli import reporting_errors
from i2i.errors import CheckpointError

log = logging.getLogger("i2i")

# What Hydra writes into a run directory before i2i-train's code runs (the job log is <task>.log).
HYDRA_RECORDS = (".hydra",)
# Run directories the current start created; `removed_if_refused` takes its own out of the set.
_created_by_this_start: set[Path] = set()


def checkpoint_dir(cfg: DictConfig, run_dir: Path) -> Path | None:
    """The folder the config's checkpoints go to for a run in `run_dir` (None without checkpoints)."""
    probe = copy.deepcopy(cfg)  # `paths.output_dir` is Hydra's, not known before Hydra runs the job
    with read_write(probe), open_dict(probe):
        probe.paths.output_dir = str(run_dir)
    dirpath = OmegaConf.select(probe, "callbacks.checkpoint.dirpath")
    return Path(dirpath) if dirpath else None


def refuse_replacing_checkpoints(cfg: DictConfig, run_dir: Path, resuming: bool) -> None:
    """A new run may not start in `run_dir` where an earlier run's checkpoints are: it would
    replace them. A run that Lightning resumes itself (from its SLURM requeue checkpoint
    `hpc_ckpt_*.ckpt` in `trainer.default_root_dir`, the run directory) counts as resumed."""
    checkpoints = checkpoint_dir(cfg, run_dir)
    found = list(checkpoints.glob("*.ckpt")) if checkpoints is not None and checkpoints.is_dir() else []
    if found and not resuming and not any(run_dir.glob("hpc_ckpt_*.ckpt")):
        latest = max(found, key=lambda path: (path.name == "last.ckpt", path.stat().st_mtime))
        raise CheckpointError(
            f"{checkpoints} already holds {latest.name} of an earlier run; resume it with "
            f"ckpt_path={latest} (or auto_resume=true), or choose another run directory"
        )


def continued_run_dir(cfg: DictConfig, ckpt_path: Path) -> Path | None:
    """The run directory a checkpoint belongs to (`<run>/checkpoints/last.ckpt` -> `<run>`), when it
    is an i2i run directory (Hydra's `.hydra` record in it)."""
    ckpt_path = ckpt_path.resolve()
    for run_dir in ckpt_path.parents:
        own_checkpoints = checkpoint_dir(cfg, run_dir)
        if own_checkpoints is not None and own_checkpoints.resolve() == ckpt_path.parent:
            return run_dir if (run_dir / ".hydra").is_dir() else None
    return None


def _chosen_on_command_line(cfg: DictConfig) -> bool:
    """Whether the command line sets the run directory itself (then it is used as given)."""
    overrides = [*cfg.hydra.overrides.hydra, *cfg.hydra.overrides.task]
    return any(o.split("=", 1)[0].lstrip("+~") in ("hydra.run.dir", "paths.output_dir") for o in overrides)


class RunDirectory(Callback):
    """Hydra callback of `i2i-train` (a single run; the jobs of a sweep get new directories): fixes
    the run directory before Hydra creates it, continuing a resumed run's own directory, and refuses
    a new run where checkpoints exist, before anything is written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with reporting_errors():
            run_dir = Path(OmegaConf.select(config, "hydra.run.dir"))  # resolved once: `now` is pinned
            ckpt_path = OmegaConf.select(config, "ckpt_path")
            if ckpt_path and Path(ckpt_path).is_file() and not _chosen_on_command_line(config):
                continued = continued_run_dir(config, Path(ckpt_path))
                if continued is not None and continued.resolve() != run_dir.resolve():
                    log.info("resuming run %s", continued)
                    run_dir = continued
            checkpoints = checkpoint_dir(config, run_dir)
            auto_resumes = bool(config.get("auto_resume")) and checkpoints is not None
            auto_resumes = auto_resumes and (checkpoints / "last.ckpt").is_file()
            refuse_replacing_checkpoints(config, run_dir, resuming=bool(ckpt_path) or auto_resumes)
            if not run_dir.exists():
                _created_by_this_start.add(run_dir.resolve())
            with read_write(config.hydra.run):
                config.hydra.run.dir = str(run_dir)


@contextmanager
def removed_if_refused(run_dir: Path) -> Iterator[None]:
    """Remove `run_dir` when the start fails before training wrote anything into it, if this start
    created it (a directory that existed before is left as it is)."""
    created = run_dir.resolve() in _created_by_this_start
    _created_by_this_start.discard(run_dir.resolve())
    try:
        yield
    except BaseException:
        if created and not holds_training_output(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def holds_training_output(run_dir: Path) -> bool:
    """Whether `run_dir` holds any file but Hydra's record of the start (`.hydra/`, the job log)."""
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.relative_to(run_dir).parts[0] in HYDRA_RECORDS:
            continue
        if path.parent == run_dir and path.suffix == ".log":
            continue
        return True
    return False
