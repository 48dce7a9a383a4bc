"""Loggers (TensorBoard, W&B offline, one W&B run per sweep job), i2i-eval, i2i-compare, the notebook."""

import json
import time
from pathlib import Path

import pytest
from conftest import FAST, FAST_SHAPES, compose_config, run_cli, use_offline_wandb
from hydra.core.global_hydra import GlobalHydra

from i2i import compare as compare_cli
from i2i import evaluate as eval_cli
from i2i import train as train_cli
from i2i.compare import comparison_rows, differing_hyperparameters, load_runs, plot_curves, run_labels
from i2i.loggers import build_loggers
from i2i.train import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def wandb_offline(monkeypatch, tmp_path):
    use_offline_wandb(monkeypatch, tmp_path)


def offline_runs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("offline-run-*"))


def run_log(run: Path, expected: bytes) -> bytes:
    """The run's binary log once it holds `expected`: the wandb-core service process writes it
    asynchronously, so it may lag behind `wandb.finish()` by a moment."""
    deadline = time.monotonic() + 30
    while True:
        log = next(run.glob("run-*.wandb")).read_bytes()
        if expected in log or time.monotonic() > deadline:
            return log
        time.sleep(0.2)


def test_wandb_logger_gets_model_and_data_tags_and_no_group_outside_a_sweep(make_cfg, wandb_offline):
    _csv, logger = build_loggers(make_cfg("model=cyclegan", "logger=wandb", "tags=[baseline]"))
    assert logger._wandb_init["tags"] == ["cyclegan", "shapescolor", "baseline"]
    assert logger._wandb_init["group"] is None


@pytest.mark.slow
def test_tensorboard_gets_scalars_and_the_sample_grid(make_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(make_cfg("logger=tensorboard"))
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["samples"]
    assert "val/content_iou_AtoB" in events.Tags()["scalars"]
    assert (tmp_path / "samples" / "iter_0000004.png").is_file()  # the PNG on disk stays


@pytest.mark.slow
def test_wandb_offline_run_has_config_metrics_and_grids(make_cfg, tmp_path, wandb_offline):
    train(make_cfg("model=cyclegan", "logger=wandb"))
    (run,) = offline_runs(tmp_path / "wandb")
    log = run_log(run, b"val/content_iou_AtoB")
    assert list((run / "files" / "media" / "images").glob("samples_*.png"))
    for recorded in (b"i2i.models.cyclegan.CycleGAN", b"val/content_iou_AtoB", b"shapescolor"):
        assert recorded in log  # the resolved config, a metric and a tag


@pytest.fixture(scope="module")
def wandb_sweep(tmp_path_factory) -> Path:
    """`i2i-train -m model=cyclegan logger=wandb loss.cycle_w=5,10` (offline W&B), a few iterations."""
    sweep = tmp_path_factory.mktemp("wandb_sweep")
    with pytest.MonkeyPatch.context() as env:
        use_offline_wandb(env, sweep)
        run_cli(
            train_cli.main, env, "-m", "model=cyclegan", "logger=wandb", "loss.cycle_w=5,10",
            f"hydra.sweep.dir={sweep}", *FAST, *FAST_SHAPES,
        )  # fmt: skip
    return sweep


@pytest.mark.slow
def test_each_job_of_a_multirun_gets_its_own_wandb_run_in_one_group(wandb_sweep):
    runs = [offline_runs(wandb_sweep / str(job)) for job in (0, 1)]
    assert [len(found) for found in runs] == [1, 1]
    ids = {found[0].name.rsplit("-", 1)[-1] for found in runs}
    assert len(ids) == 2
    group = f"train/{wandb_sweep.name}".encode()
    for found, name in zip(runs, (b"loss.cycle_w=5", b"loss.cycle_w=10")):
        log = run_log(found[0], name)
        assert group in log and name in log


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    """Two tiny runs that differ in one loss weight, side by side like the jobs of a sweep."""
    sweep = tmp_path_factory.mktemp("sweep")
    for job, cycle_w in enumerate((5, 10)):
        train(
            compose_config(
                [*FAST, *FAST_SHAPES, "model=cyclegan", f"loss.cycle_w={cycle_w}"], sweep / str(job)
            )
        )
    return sweep


@pytest.mark.slow
def test_compare_writes_the_table_and_the_curves(two_runs, tmp_path, monkeypatch, capsys):
    runs = load_runs([two_runs])
    assert [run.name for run in runs] == ["0", "1"]
    rows = comparison_rows(runs)
    assert [row["loss.cycle_w"] for row in rows] == [5, 10]
    assert {
        "run",
        "model",
        "data",
        "content_iou_AtoB",
        "domain_acc_BtoA",
        "iterations",
        "wall_seconds",
    } <= set(rows[0])
    assert rows[0]["model"] == "cyclegan" and rows[0]["iterations"] == 4 and rows[0]["wall_seconds"] > 0
    monkeypatch.setattr("sys.argv", ["i2i-compare", str(two_runs), "--output", str(tmp_path / "out")])
    compare_cli.main()
    table = (tmp_path / "out" / "comparison.md").read_text()
    header = "| run | model | data | loss.cycle_w | content_iou_AtoB | content_iou_BtoA | domain_acc_AtoB | "
    assert table.splitlines()[0] == header + "domain_acc_BtoA | iterations | wall_seconds |"  # no run paths
    assert table in capsys.readouterr().out
    assert (tmp_path / "out" / "comparison.csv").read_text().count("\n") == 3
    assert (tmp_path / "out" / "comparison_curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_compare_of_a_wandb_sweep_shows_its_curves_by_swept_value_and_no_paths(wandb_sweep, tmp_path, capsys):
    compare_cli.main([str(wandb_sweep), "--output", str(tmp_path)])
    captured = capsys.readouterr()
    assert "warning" not in captured.err  # every job kept its csv record beside W&B
    table = (tmp_path / "comparison.md").read_text().splitlines()
    assert table[0].split(" | ")[:5] == ["| run", "model", "data", "loss.cycle_w", "content_iou_AtoB"]
    assert str(wandb_sweep) not in "\n".join(table) and "dir" not in table[0]
    figure = plot_curves(load_runs([wandb_sweep]))
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["cycle_w=5", "cycle_w=10"]
    assert len(figure.axes[0].lines) == 2  # both runs' content_iou_AtoB curves


def write_run(path: Path, config: dict, csv_header: str | None = None) -> Path:
    """A run directory as i2i-train leaves it: run.json, metrics.json and (given its header) the CSV."""
    path.mkdir(parents=True)
    summary = {
        "model": "cyclegan",
        "data": "shapes_color",
        "iterations": 500,
        "wall_seconds": 1,
        "config": config,
    }
    (path / "run.json").write_text(json.dumps(summary))
    (path / "metrics.json").write_text(json.dumps({"metrics": {"domain_acc_AtoB": 0.5}}))
    if csv_header is not None:
        (path / "csv").mkdir()
        (path / "csv" / "metrics.csv").write_text(csv_header + "\n")
    return path


def test_compare_says_in_one_line_why_a_run_has_no_curves(tmp_path, capsys):
    wandb = {"wandb": {"_target_": "pytorch_lightning.loggers.WandbLogger"}}
    write_run(tmp_path / "runs" / "a", {"logger": wandb, "loss": {"cycle_w": 5}})
    write_run(tmp_path / "runs" / "b", {"logger": {}, "loss": {"cycle_w": 10}})
    write_run(tmp_path / "runs" / "c", {"logger": {"csv": {}}, "loss": {"cycle_w": 20}}, "step,train/loss_G")
    compare_cli.main([str(tmp_path / "runs"), "--output", str(tmp_path / "out")])
    assert capsys.readouterr().err.splitlines() == [
        "warning: run a has no metric curves: no csv/metrics.csv, it was trained with logger=wandb and no "
        "csv logger (its curves are only in wandb)",
        "warning: run b has no metric curves: no csv/metrics.csv, it was trained with logger=[] and no csv "
        "logger (no logger recorded its curves)",
        "warning: run c has no metric curves: csv/metrics.csv has no val/* columns, no metrics callback "
        "scored it in its 500 iterations (callbacks.synthetic_metrics scores shapes_* data; "
        "callbacks=image_metrics adds KID/FID)",
    ]


def test_labels_name_the_differing_values_and_the_table_leaves_out_the_runs_own_paths(tmp_path):
    runs = []
    dated_run_dirs = ("2026-01-01_10-00-00.000001", "2026-01-02_11-00-00.000002")  # Hydra's run dir names
    for name, lr, cycle_w in zip(dated_run_dirs, (1e-4, 2e-4), (5, 10)):
        run = tmp_path / "runs" / name
        config = {
            "paths": {"output_dir": str(run)},
            "trainer": {"default_root_dir": str(run), "max_steps": 500},
            "model": {"lr": lr, "cache": str(run / "cache")},
            "loss": {"cycle_w": cycle_w},
            "data": {"root": str(tmp_path / "images")},
        }
        runs.append(write_run(run, config))
    loaded = load_runs(runs)
    assert differing_hyperparameters(loaded) == ["loss.cycle_w", "model.lr"]
    assert run_labels(loaded) == ["cycle_w=5, lr=0.0001", "cycle_w=10, lr=0.0002"]


def test_labels_spell_out_keys_that_share_a_last_part_and_fall_back_to_the_run_name(tmp_path):
    alike = [write_run(tmp_path / name, {"model": {"g": {"lr": 1}, "d": {"lr": 2}}}) for name in "ab"]
    assert run_labels(load_runs(alike)) == ["a", "b"]
    other = write_run(tmp_path / "c", {"model": {"g": {"lr": 3}, "d": {"lr": 4}}})
    assert run_labels(load_runs([*alike, other])) == [
        "model.d.lr=2, model.g.lr=1, a",
        "model.d.lr=2, model.g.lr=1, b",
        "model.d.lr=4, model.g.lr=3",
    ]


def test_compare_refuses_a_folder_without_runs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        compare_cli.main([str(tmp_path)])
    assert capsys.readouterr().err.strip().startswith(f"error: no runs in {tmp_path}")


@pytest.mark.slow
def test_compare_notebook_finds_the_curves_of_two_wandb_runs(wandb_sweep, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("I2I_COMPARE_RUNS", f"{wandb_sweep / '0'}:{wandb_sweep / '1'}")
    notebook = nbformat.read(ROOT / "notebooks" / "compare_runs.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("| loss.cycle_w |" in o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # the curves and two sample grids
    printed = "".join(
        o.text for o in outputs if o.output_type == "stream" and o.name == "stdout"
    ).splitlines()
    assert [line.split(": ")[0] for line in printed] == ["0", "1"]
    assert all("content_iou_AtoB" in line and "no metric curves" not in line for line in printed)


@pytest.mark.slow
def test_eval_writes_the_report_and_prints_a_table(two_runs, metric_weights_home, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(metric_weights_home))
    checkpoint = two_runs / "0" / "checkpoints" / "last.ckpt"
    run_cli(
        eval_cli.main, monkeypatch, f"ckpt_path={checkpoint}", "n_images=2", "device=cpu",
        "metrics.allow_unpublished_weights=true",  # the random stand-ins of metric_weights.py
    )  # fmt: skip
    report = json.loads((two_runs / "0" / "eval.json").read_text())
    assert report["iteration"] == 4 and report["model"] == "i2i.models.cyclegan.CycleGAN"
    row = next(r for r in report["scores"] if r["metric"] == "kid_AtoB")
    assert set(row) == {
        "metric",
        "value",
        "std",
        "protocol",
        "n_images",
        "extractor",
        "weights_sha256",
        "commit",
    }
    assert (
        row["n_images"] == 2
        and row["extractor"] == "inception-v3-compat"
        and len(row["weights_sha256"]) == 64
    )
    out = capsys.readouterr().out
    assert "kid_AtoB" in out and "fid_BtoA" in out
    assert load_runs([two_runs / "0"])[0].metrics["kid_AtoB"] == row["value"]  # compare reads eval.json


def test_eval_without_weights_says_which_file_to_place_where(two_runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    checkpoint = two_runs / "1" / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(eval_cli.main, monkeypatch, f"ckpt_path={checkpoint}", "device=cpu")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the FID Inception weights are not on this machine: place ")
    assert str(tmp_path / "empty" / "hub" / "checkpoints") in err and len(err.splitlines()) == 1
    GlobalHydra.instance().clear()
