"""The run directory's lifecycle: a resumed run continues its own directory (checkpoints, metrics.csv,
samples, TensorBoard, the same W&B run), a new run never replaces an earlier run's checkpoint, a
refused start leaves nothing behind, and checkpoint writes leave no temporary files anywhere."""

import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import FAST, FAST_SHAPES, run_cli

from i2i import train as train_cli
from i2i.errors import CheckpointError
from i2i.train import train

CYCLEGAN = ["model=cyclegan", "model.pool_size=0"]
# On the command line, what `make_cfg` adds: 32 px, 8 images, checkpoints, samples and metrics
# every 2 iterations.
RUN = [*FAST, *FAST_SHAPES, "data.image_size=32", *CYCLEGAN]


def metric_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def trained_iterations(run_dir: Path) -> list[int]:
    """The iterations of the training-loss rows of metrics.csv (a row's step is its iteration - 1)."""
    return [int(row["step"]) + 1 for row in metric_rows(run_dir) if row["train/g_loss"]]


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.slow
def test_a_resumed_run_continues_its_run_directory_and_its_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("I2I_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    loggers = "logger=[wandb,tensorboard]"  # each composes the CSV record as well
    run_cli(train_cli.main, monkeypatch, *RUN, loggers, "trainer.max_steps=4")
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    run_cli(
        train_cli.main,
        monkeypatch,
        *RUN,
        loggers,
        "trainer.max_steps=8",
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
    )

    assert list((tmp_path / "logs" / "train" / "runs").iterdir()) == [run_dir]  # no second run directory
    assert trained_iterations(run_dir) == list(range(1, 9))  # appended, not replaced
    validated = [int(row["step"]) for row in metric_rows(run_dir) if row["val/content_iou_AtoB"]]
    assert validated == [2, 4, 6, 8]
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == [
        f"iter_000000{i}.png" for i in (2, 4, 6, 8)
    ]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["i2i"]["iteration"] == 8
    # the same W&B run, continued: one offline run folder per start, both with the run's id
    wandb_runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 2 and len({path.name.rsplit("-", 1)[1] for path in wandb_runs}) == 1
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one log dir


@pytest.mark.slow
def test_rows_logged_after_the_checkpoint_are_not_repeated_on_resume(make_cfg, tmp_path):
    """A run stopped after its checkpoint at iteration 2 had logged iterations 3 and 4 (as a killed
    run has); resumed from that checkpoint, metrics.csv holds every iteration once."""
    train(make_cfg(*CYCLEGAN, "trainer.max_steps=4", "callbacks.checkpoint.keep_every=2"))
    assert trained_iterations(tmp_path) == [1, 2, 3, 4]
    resume_from = tmp_path / "checkpoints" / "iter_0000002.ckpt"
    train(make_cfg(*CYCLEGAN, "trainer.max_steps=4", f"ckpt_path={resume_from}"))
    assert trained_iterations(tmp_path) == [1, 2, 3, 4]
    assert [row["step"] for row in metric_rows(tmp_path) if row["val/content_iou_AtoB"]] == ["2", "4"]


@pytest.mark.slow
def test_a_new_run_where_a_checkpoint_exists_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "fixed"
    run_cli(train_cli.main, monkeypatch, *RUN, "trainer.max_steps=2", f"hydra.run.dir={run_dir}")
    before = snapshot(run_dir)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_cli.main, monkeypatch, *RUN, "trainer.max_steps=4", f"hydra.run.dir={run_dir}")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "last.ckpt" in err and "ckpt_path=" in err and "auto_resume=true" in err
    assert snapshot(run_dir) == before  # the checkpoint, the metrics, even Hydra's .hydra record

    # what the message offers works, and continues the run's record
    run_cli(
        train_cli.main,
        monkeypatch,
        *RUN,
        "trainer.max_steps=4",
        f"hydra.run.dir={run_dir}",
        "auto_resume=true",
    )
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["i2i"]["iteration"] == 4
    assert trained_iterations(run_dir) == [1, 2, 3, 4]


def test_train_refuses_to_replace_a_checkpoint_too(make_cfg, tmp_path):
    """`train(cfg)` (sweeps, scripts) refuses as the command line does."""
    train(make_cfg(*CYCLEGAN, "trainer.max_steps=2"))
    before = snapshot(tmp_path)
    with pytest.raises(
        CheckpointError, match="already holds last.ckpt of an earlier run; resume it with ckpt_path="
    ):
        train(make_cfg(*CYCLEGAN, "trainer.max_steps=2"))
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_a_refused_start_leaves_no_run_directory_and_keeps_one_that_existed(tmp_path):
    script = Path(sys.executable).parent / "i2i-train"
    environment = {**os.environ, "I2I_LOG_DIR": str(tmp_path / "logs"), "OMP_NUM_THREADS": "1"}
    refused = [str(script), "model=funit", "data=shapes_color", "print_config=false"]  # a data/model mismatch
    result = subprocess.run(
        refused, cwd=tmp_path, env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2 and "FUNIT trains on fewshot data" in result.stderr, result.stderr
    runs = tmp_path / "logs" / "train" / "runs"
    assert not runs.exists() or not any(runs.iterdir())

    mine = tmp_path / "mine"  # a directory the user made is never removed
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's notes")
    result = subprocess.run(
        [*refused, f"hydra.run.dir={mine}"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "FUNIT trains on fewshot data" in result.stderr, result.stderr
    assert (mine / "notes.txt").read_text() == "the user's notes"


@pytest.mark.slow
def test_checkpoints_leave_no_temporary_files_and_resume_removes_stale_ones(make_cfg, tmp_path, monkeypatch):
    """Lightning staged every checkpoint in the system temp dir (fsspec), where a kill mid-write left
    a full-size file; with the temp dir pointing nowhere, saving must still work. A temporary file
    beside last.ckpt left by a kill is removed when the run resumes; other files stay."""
    system_temp = tmp_path / "system-temp-not-there"
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    run_dir = tmp_path / "run"
    train(make_cfg(*CYCLEGAN, "trainer.max_steps=2", output_dir=run_dir))
    checkpoints = run_dir / "checkpoints"
    (checkpoints / ".last.ckpt.tmp4242").write_bytes(b"half a checkpoint")
    (checkpoints / "notes.txt").write_text("kept")
    train(
        make_cfg(
            *CYCLEGAN, "trainer.max_steps=4", f"ckpt_path={checkpoints / 'last.ckpt'}", output_dir=run_dir
        )
    )
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt", "notes.txt"]
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["i2i"]["iteration"] == 4
    assert not system_temp.exists()
