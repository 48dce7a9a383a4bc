"""Loggers (TensorBoard, W&B offline, one W&B run per sweep job), i2i-eval, i2i-compare, the notebook."""

import json
import time
from pathlib import Path

import pytest
from conftest import FAST, FAST_SHAPES, compose_config
from hydra.core.global_hydra import GlobalHydra
from test_train import run_cli

from i2i import compare as compare_cli
from i2i import evaluate as eval_cli
from i2i import train as train_cli
from i2i.compare import comparison_rows, load_runs
from i2i.loggers import build_loggers
from i2i.train import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def wandb_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")  # never contact the W&B servers
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")


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
    (logger,) = build_loggers(make_cfg("model=cyclegan", "logger=wandb", "tags=[baseline]"))
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


@pytest.mark.slow
def test_each_job_of_a_multirun_gets_its_own_wandb_run_in_one_group(tmp_path, monkeypatch, wandb_offline):
    sweep = tmp_path / "sweep"
    overrides = [o for o in [*FAST, *FAST_SHAPES] if o != "trainer.max_steps=4"]
    run_cli(
        train_cli.main, monkeypatch, "-m", "model=cyclegan", "logger=wandb", "trainer.max_steps=2", "loss.cycle_w=5,10",
        f"hydra.sweep.dir={sweep}", *overrides,
    )  # fmt: skip
    runs = [offline_runs(sweep / str(job)) for job in (0, 1)]
    assert [len(found) for found in runs] == [1, 1]
    ids = {found[0].name.rsplit("-", 1)[-1] for found in runs}
    assert len(ids) == 2
    group = f"train/{sweep.name}".encode()
    for found, name in zip(runs, (b"loss.cycle_w=5", b"loss.cycle_w=10")):
        log = run_log(found[0], name)
        assert group in log and name in log


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    """Two tiny runs that differ in one loss weight, side by side like the jobs of a sweep."""
    sweep = tmp_path_factory.mktemp("sweep")
    for job, cycle_w in enumerate((5, 10)):
        train(compose_config([*FAST, *FAST_SHAPES, "model=cyclegan", f"loss.cycle_w={cycle_w}"], sweep / str(job)))
    return sweep


@pytest.mark.slow
def test_compare_writes_the_table_and_the_curves(two_runs, tmp_path, monkeypatch, capsys):
    runs = load_runs([two_runs])
    assert [run.name for run in runs] == ["0", "1"]
    rows = comparison_rows(runs)
    assert [row["loss.cycle_w"] for row in rows] == [5, 10]
    assert {"run", "model", "data", "content_iou_AtoB", "domain_acc_BtoA", "iterations", "wall_seconds"} <= set(rows[0])
    assert rows[0]["model"] == "cyclegan" and rows[0]["iterations"] == 4 and rows[0]["wall_seconds"] > 0
    monkeypatch.setattr("sys.argv", ["i2i-compare", str(two_runs), "--output", str(tmp_path / "out")])
    compare_cli.main()
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert table.splitlines()[0].startswith("| run | model | data | loss.cycle_w |")
    assert table in capsys.readouterr().out
    assert (tmp_path / "out" / "comparison.csv").read_text().count("\n") == 3
    assert (tmp_path / "out" / "comparison_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_refuses_a_folder_without_runs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        compare_cli.main([str(tmp_path)])
    assert capsys.readouterr().err.strip().startswith(f"error: no runs in {tmp_path}")


@pytest.mark.slow
def test_compare_notebook_runs_on_two_runs(two_runs, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("I2I_COMPARE_RUNS", f"{two_runs / '0'}:{two_runs / '1'}")
    notebook = nbformat.read(ROOT / "notebooks" / "compare_runs.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("| loss.cycle_w |" in o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # the curves and two sample grids


@pytest.mark.slow
def test_eval_writes_the_report_and_prints_a_table(two_runs, metric_weights_home, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(metric_weights_home))
    checkpoint = two_runs / "0" / "checkpoints" / "last.ckpt"
    run_cli(eval_cli.main, monkeypatch, f"ckpt_path={checkpoint}", "n_images=2", "device=cpu")
    report = json.loads((two_runs / "0" / "eval.json").read_text())
    assert report["iteration"] == 4 and report["model"] == "i2i.models.cyclegan.CycleGAN"
    row = next(r for r in report["scores"] if r["metric"] == "kid_AtoB")
    assert set(row) == {"metric", "value", "std", "protocol", "n_images", "extractor", "weights_sha256", "commit"}
    assert row["n_images"] == 2 and row["extractor"] == "inception-v3-compat" and len(row["weights_sha256"]) == 64
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
