"""How a sweep (`i2i-train -m`) ends: one table of its jobs, and no empty folder when it is refused.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml). When the sweep has run, it prints one
table: a row per job with the overrides that differ between the jobs (all of them for a single
job), the final metrics of `<job>/metrics.json`, and iterations and wall time from `<job>/run.json`;
a job without them shows `-`. It also notes the sweep directory it saw created, so that a sweep
stopped before any job trained (a job's config does not compose, or its start is refused) does not
leave that directory behind: `sweep_removed_if_refused`, around `i2i-train`'s Hydra entry point,
removes the jobs' directories that hold nothing but Hydra's record of their start, then the sweep
directory if no job is left in it. A directory that existed before the sweep is never removed.
"""

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from i2i.run_directory import holds_training_output

# Sweep directories this process created (the basic launcher runs every job in this process).
_created_sweeps: set[Path] = set()
MISSING = "-"


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a sweep (those with Hydra's record of their overrides), in job order."""
    found = [path.parent.parent for path in sweep_dir.glob("*/.hydra/overrides.yaml")]
    return sorted(found, key=lambda path: (len(path.name), path.name))  # 2 before 10


def _overrides(job_dir: Path) -> dict[str, str]:
    lines = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    return dict(line.lstrip("+~").split("=", 1) if "=" in line else (line.lstrip("+~"), "") for line in lines)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def summary_table(sweep_dir: Path) -> str:
    """The sweep's jobs as an aligned text table: job, the overrides that vary, final metrics,
    iterations and wall seconds."""
    jobs = job_dirs(sweep_dir)
    overrides = [_overrides(job) for job in jobs]
    keys = list(dict.fromkeys(key for job in overrides for key in job))
    varying = [key for key in keys if len({job.get(key) for job in overrides}) > 1] or keys
    metrics = [_read_json(job / "metrics.json").get("metrics", {}) for job in jobs]
    runs = [_read_json(job / "run.json") for job in jobs]
    metric_names = list(dict.fromkeys(name for job in metrics for name in job))
    header = ["job", *varying, *metric_names, "iterations", "wall_s"]
    rows = [header]
    for job, job_overrides, job_metrics, run in zip(jobs, overrides, metrics, runs, strict=True):
        row = [job.name, *(job_overrides.get(key, MISSING) for key in varying)]
        row += [f"{job_metrics[name]:.4f}" if name in job_metrics else MISSING for name in metric_names]
        row += [str(run.get("iterations", MISSING)), str(run.get("wall_seconds", MISSING))]
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


class SweepSummary(Callback):
    """Hydra callback: prints the summary table when a sweep ends (see the module docstring)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(OmegaConf.select(config, "hydra.sweep.dir"))  # resolved once: `now` is pinned
        if not sweep_dir.exists():
            _created_sweeps.add(sweep_dir.resolve())

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(OmegaConf.select(config, "hydra.sweep.dir"))
        _created_sweeps.discard(sweep_dir.resolve())
        jobs = job_dirs(sweep_dir)
        if jobs:
            print(f"sweep {sweep_dir}: {len(jobs)} jobs", summary_table(sweep_dir), sep="\n", flush=True)


@contextmanager
def sweep_removed_if_refused() -> Iterator[None]:
    """Around a Hydra entry point: when a sweep this process created stops with an error, remove its
    jobs' directories that hold no training output, then the sweep directory if no job is left."""
    try:
        yield
    except BaseException:
        for sweep_dir in sorted(_created_sweeps):
            for job in job_dirs(sweep_dir):
                if not holds_training_output(job):
                    shutil.rmtree(job, ignore_errors=True)
            if sweep_dir.is_dir() and not any(path.is_dir() for path in sweep_dir.iterdir()):
                shutil.rmtree(sweep_dir, ignore_errors=True)
        _created_sweeps.clear()
        raise
