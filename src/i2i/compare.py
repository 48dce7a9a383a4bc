"""`i2i-compare`: the side-by-side table of runs, and their metric curves.

    i2i-compare logs/train/multiruns/<sweep>            # every job of a sweep
    i2i-compare logs/train/runs/<run 1> logs/train/runs/<run 2> --output paper/

Reads what a run leaves in its directory, with no logger service: `run.json` (model, data,
iterations, wall time, the resolved config; written by i2i-train), `metrics.json` (synthetic
metrics), `image_metrics.json` (KID/FID/LPIPS of callbacks=image_metrics), `eval.json` (i2i-eval,
which wins over the callback's values of the same name: it scores the whole test split) and
`csv/metrics.csv` (curves). An eval.json of `i2i-eval checkpoints=all` adds, beside each FID/KID
column of the last checkpoint (`fid_AtoB`), the best over the run's kept checkpoints (`fid_AtoB_best`,
selected on the test set, as CUT, UNSB and DCLGAN report) and its iteration (`fid_AtoB_best_iteration`).
Writes `comparison.md`, `comparison.csv` (one row per run: model, data,
the hyper-parameters that differ between the runs, final metrics, iterations, wall time) and
`comparison_curves.png` (a line per run, labelled by those hyper-parameters, e.g. `cycle_w=5`); a run
without curves gets one line on stderr saying why. The notebook notebooks/compare_runs.ipynb uses
the same functions.
"""

import csv
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from i2i.cli import ArgumentParser, reporting_errors
from i2i.errors import DataError, I2IError
from i2i.schema import flatten
from i2i.trusted import check_targets

RUN_FILES = ("run.json", "metrics.json", "image_metrics.json", "eval.json", "csv/metrics.csv")
# Config keys that never describe the experiment (locations, logging, cadences). Any other key whose
# value is a path inside the run's own directory is left out too (`is_location`).
IGNORED = re.compile(
    r"^(paths|hydra|logger|callbacks|ckpt_path|auto_resume|extend_schedule|print_config|task_name|tags"
    r"|metrics)(\.|$)"
    r"|^trainer\.(default_root_dir|enable_|log_every|num_sanity|limit_val|deterministic)|^data\.num_workers$"
    r"|_target_$|_partial_$"
)
MAX_HYPERPARAMETERS = 10


@dataclass
class Run:
    """One training run as found on disk."""

    path: Path
    name: str
    model: str
    data: str
    config: dict[str, Any]
    iterations: int | None
    wall_seconds: float | None
    metrics: dict[str, float]
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    @property
    def grids(self) -> list[Path]:
        """The sample grids of the run, oldest first."""
        return sorted((self.path / "samples").glob("iter_*.png"))


def is_run(path: Path) -> bool:
    return any((path / name).is_file() for name in RUN_FILES)


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories among `paths`: each path is a run, or holds runs below it (a multirun dir,
    `logs/train/runs`), in natural order (job 2 before job 10)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise I2IError(f"{path} is not a directory (give run directories or a multirun directory)")
        if is_run(path):
            found.append(path)
            continue
        below = [p for p in path.rglob("*") if p.is_dir() and is_run(p) and not is_run(p.parent)]
        if not below:
            raise I2IError(f"no runs in {path} (a run directory holds one of {', '.join(RUN_FILES)})")
        found += sorted(
            below, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))]
        )
    return found


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Report a run file that is not laid out as i2i writes it (cut short, edited by hand) in one
    line naming it, instead of the parser's or a lookup's traceback."""
    try:
        yield
    except (ValueError, TypeError, KeyError, AttributeError, csv.Error, yaml.YAMLError) as error:
        detail = (str(error).splitlines() or [""])[0]  # UnicodeDecodeError, JSONDecodeError are ValueErrors
        what = f"{type(error).__name__}: {detail}"
        raise DataError(f"cannot read {path} ({what}); repair or remove the file") from error


def _read_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, {} where there is no file."""
    if not path.is_file():
        return {}
    with _reading(path):
        content = json.loads(path.read_text())
        if not isinstance(content, dict):
            raise TypeError(f"a JSON {type(content).__name__}, not an object")
    return content


def _config(path: Path, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The run's config as plain data (never resolved or instantiated), its targets checked like
    every config read from a file (`i2i.trusted.check_targets`)."""
    if "config" in summary:
        check_targets(summary["config"], path / "run.json")
        return summary["config"]
    for candidate in (path / "csv" / "hparams.yaml", path / ".hydra" / "config.yaml"):
        if candidate.is_file():
            config = yaml.safe_load(candidate.read_text()) or {}
            check_targets(config, candidate)
            return config
    return {}


def read_curves(path: Path) -> dict[str, list[tuple[int, float]]]:
    """The `val/*` series of a run's csv/metrics.csv, by metric name, as (iteration, value)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    csv_path = path / "csv" / "metrics.csv"
    if not csv_path.is_file():
        return curves
    with csv_path.open(newline="") as file, _reading(csv_path):
        for row in csv.DictReader(file):
            for key, value in row.items():
                if key.startswith("val/") and value not in ("", None):
                    curves.setdefault(key[len("val/") :], []).append((int(row["step"]), float(value)))
    return curves


def load_run(path: str | Path, name: str | None = None) -> Run:
    """Everything `i2i-compare` shows about the run in `path`."""
    path = Path(path)
    summary = _read_json(path / "run.json")
    with _reading(path / "run.json"):
        config = _config(path, summary)
        model = summary.get("model") or _class_name(config.get("model", {}))
        domains = config.get("data", {}).get("domains") or config.get("data", {})
    with _reading(path / "metrics.json"):
        metrics: dict[str, float] = dict(_read_json(path / "metrics.json").get("metrics", {}))
    reports = {file: _read_json(path / file) for file in ("image_metrics.json", "eval.json")}
    for file, report in reports.items():
        with _reading(path / file):
            for row in report.get("scores", []):
                metrics[row["metric"]] = row["value"]
    with _reading(path / "eval.json"):
        for row in reports["eval.json"].get("best", []):
            metrics[f"{row['metric']}_best"] = row["value"]
            metrics[f"{row['metric']}_best_iteration"] = row["iteration"]
    curves: dict[str, list[tuple[int, float]]] = {}
    with _reading(path / "image_metrics.json"):  # its history is there with any logger, also without CSV
        for entry in reports["image_metrics.json"].get("history", []):
            for key, value in entry["metrics"].items():
                curves.setdefault(key, []).append((entry["iteration"], value))
    curves |= read_curves(path)
    return Run(
        path=path,
        name=name or path.name,
        model=model,
        data=summary.get("data") or _class_name(domains),
        config=config,
        iterations=summary.get("iterations"),
        wall_seconds=summary.get("wall_seconds"),
        metrics=metrics,
        curves=curves,
    )


def _class_name(node: Mapping[str, Any]) -> str:
    target = node.get("_target_", "") if isinstance(node, Mapping) else ""
    return target.rsplit(".", 1)[-1].lower() or "?"


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """The runs in `paths` (see `find_runs`), named by their path below their common folder."""
    found = [p.resolve() for p in find_runs(paths)]
    if len(found) == 1:
        return [load_run(found[0])]
    parent = Path(os.path.commonpath(found))
    return [load_run(p, str(p.relative_to(parent))) for p in found]


def _own_directories(run: Run) -> list[Path]:
    """Where the run lives now and where it was written (`paths.output_dir`; they differ once the
    run has been moved)."""
    written = (run.config.get("paths") or {}).get("output_dir")
    return [Path(os.path.normpath(d)) for d in (run.path, written) if isinstance(d, (str, Path))]


def is_location(value: Any, run: Run) -> bool:
    """Whether `value` is a path inside the run's own directory (its checkpoints, samples, logger
    files): such values differ between any two runs (dated run directories) and describe none."""
    if not isinstance(value, str) or not value:
        return False
    path = Path(os.path.normpath(value))
    return any(path == own or own in path.parents for own in _own_directories(run))


def differing_hyperparameters(runs: Sequence[Run]) -> list[str]:
    """Config keys whose values differ between the runs (locations, logging and cadences left out).
    Runs of different models differ in every architecture key, so then only optimizer rates,
    run length, data and seed are compared."""
    flat = [flatten(run.config) for run in runs]
    keys = sorted({k for f in flat for k in f if not IGNORED.search(k)})
    keys = [k for k in keys if not all(is_location(f.get(k), run) for f, run in zip(flat, runs))]
    differing = [
        k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat}) > 1
    ]
    if len({run.model for run in runs}) > 1:
        differing = [k for k in differing if not k.startswith(("model.", "loss.")) or k.endswith(".lr")]
    return differing[:MAX_HYPERPARAMETERS]


def comparison_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per run: run, model, data, differing hyper-parameters, final metrics (std columns
    left out: they are in the runs' JSON reports), iterations, wall time."""
    hyperparameters = differing_hyperparameters(runs)
    metric_names = sorted({k for run in runs for k in run.metrics if "_std" not in k})
    rows = []
    for run in runs:
        flat = flatten(run.config)
        row: dict[str, Any] = {"run": run.name, "model": run.model, "data": run.data}
        row |= {key: flat.get(key) for key in hyperparameters}
        row |= {name: run.metrics.get(name) for name in metric_names}
        row |= {"iterations": run.iterations, "wall_seconds": run.wall_seconds}
        rows.append(row)
    return rows


def run_labels(runs: Sequence[Run]) -> list[str]:
    """A legend label per run: the values of the hyper-parameters that differ between the runs
    (`cycle_w=5`; a key by its last part unless two differing keys share it), led by the model when
    the models differ. A run with nothing to tell it apart is labelled (also) by its name."""
    keys = differing_hyperparameters(runs)
    last_parts = [key.rsplit(".", 1)[-1] for key in keys]
    shown = [part if last_parts.count(part) == 1 else key for key, part in zip(keys, last_parts)]
    several_models = len({run.model for run in runs}) > 1
    labels = []
    for run in runs:
        flat = flatten(run.config)
        parts = [run.model] if several_models else []
        parts += [f"{name}={_cell(flat.get(key)) or 'unset'}" for name, key in zip(shown, keys)]
        labels.append(", ".join(parts))
    return [
        label if label and labels.count(label) == 1 else ", ".join(filter(None, (label, run.name)))
        for label, run in zip(labels, runs)
    ]


def missing_curves(run: Run) -> str | None:
    """Why the run has no metric curves, in one line; None when it has some."""
    if run.curves:
        return None
    if not (run.path / "csv" / "metrics.csv").is_file():
        if "logger" not in run.config:
            return "no csv/metrics.csv, which the csv logger writes, and no recorded config to say why"
        loggers = list(run.config["logger"] or {})
        choice = loggers[0] if len(loggers) == 1 else f"[{','.join(loggers)}]"
        where = f"its curves are only in {', '.join(loggers)}" if loggers else "no logger recorded its curves"
        return f"no csv/metrics.csv, it was trained with logger={choice} and no csv logger ({where})"
    return (
        f"csv/metrics.csv has no val/* columns, no metrics callback scored it in its {run.iterations} "
        "iterations (callbacks.synthetic_metrics scores shapes_* data; callbacks=image_metrics adds KID/FID)"
    )


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_curves(runs: Sequence[Run], path: Path | None = None):
    """One panel per metric (std series left out), one line per run, labelled by `run_labels`;
    saved to `path` if given."""
    import matplotlib.pyplot as plt

    names = sorted({k for run in runs for k in run.curves if "_std" not in k})
    columns = min(3, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = run_labels(runs)
    lines = {}
    for ax, name in zip(axes.flat, names):
        for index, (run, label) in enumerate(zip(runs, labels)):
            if name in run.curves:
                steps, values = zip(*sorted(run.curves[name]))
                color = colors[index % len(colors)]
                (lines[label],) = ax.plot(steps, values, marker="o", markersize=3, color=color, label=label)
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if not names:
        axes.flat[0].text(0.5, 0.5, "no metric curves in these runs", ha="center")
    figure.tight_layout(rect=(0, 0.06 + 0.02 * len(lines), 1, 1))
    figure.legend(lines.values(), lines.keys(), loc="lower center", fontsize="small")
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


def compare(paths: Iterable[str | Path], output: str | Path) -> dict[str, Path]:
    """Write the table (markdown and CSV) and the curves of the runs in `paths` into `output`; a
    run without curves gets one line on stderr saying why."""
    runs = load_runs(paths)
    for run in runs:
        if reason := missing_curves(run):
            print(f"warning: run {run.name} has no metric curves: {reason}", file=sys.stderr)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rows = comparison_rows(runs)
    written = {
        "markdown": output / "comparison.md",
        "csv": output / "comparison.csv",
        "curves": output / "comparison_curves.png",
    }
    written["markdown"].write_text(markdown_table(rows))
    write_csv(rows, written["csv"])
    import matplotlib.pyplot as plt

    plt.close(plot_curves(runs, written["curves"]))
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of `i2i-compare`."""
    parser = ArgumentParser(prog="i2i-compare", description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs", nargs="+", help="run directories, or directories holding runs (a multirun dir)"
    )
    parser.add_argument("--output", help="where to write the table and figure (default: the one directory "
                        "given if it is not itself a run, else the current directory)")  # fmt: skip
    args = parser.parse_args(argv)
    with reporting_errors():
        single = Path(args.runs[0])
        default = single if len(args.runs) == 1 and single.is_dir() and not is_run(single) else Path()
        written = compare(args.runs, args.output or default)
        print(written["markdown"].read_text(), end="")
        print(f"\nwrote {written['markdown']}, {written['csv']}, {written['curves']}")


if __name__ == "__main__":
    main()
