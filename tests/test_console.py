"""What `i2i-train` prints: a short header instead of the config, no Lightning tips, a sweep's summary
table, and no empty multirun folder after a refused sweep."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

I2I_TRAIN = Path(sys.executable).parent / "i2i-train"
# four iterations of CycleGAN at 32 px on a handful of synthetic images
SMALL = [
    "model=cyclegan",
    "trainer.max_steps=4",
    "data.image_size=32",
    "data.domains.num_train=4",
    "data.domains.num_test=4",
    "callbacks.synthetic_metrics.n_images=4",
    "callbacks.image_grid.n_images=2",
]
HEADER = ("model:", "data:", "preset:", "devices:", "run dir:")


def i2i_train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "I2I_LOG_DIR": str(tmp_path / "logs"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(I2I_TRAIN), *overrides], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_a_run_prints_a_short_header_and_keeps_the_config_in_its_directory(tmp_path):
    result = i2i_train(tmp_path, *SMALL)
    assert result.returncode == 0, result.stderr
    console = (result.stdout + result.stderr).splitlines()
    assert len(console) <= 25, "\n".join(console)
    header = [line for line in console if line.startswith(HEADER)]
    assert header[:4] == ["model:   cyclegan", "data:    shapes_color", "preset:  tiny", "devices: cpu x 1"]
    assert not any("Tip" in line or "litlogger" in line or "litmodels" in line for line in console)
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    config = run_dir / ".hydra" / "config.yaml"
    assert len(header) == 5 and header[4] == f"run dir: {run_dir} (config: {config})"
    assert "cycle_w: 10.0" in config.read_text()  # the full config is there


@pytest.mark.slow
def test_a_sweep_ends_with_a_table_of_its_jobs(tmp_path):
    result = i2i_train(tmp_path, "-m", *SMALL, "trainer.max_steps=2", "loss.cycle_w=5,10")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("sweep ") and line.endswith(": 2 jobs"))
    header, first, second = (line.split() for line in lines[start + 1 : start + 4])
    assert header[:2] == ["job", "loss.cycle_w"] and header[-2:] == ["iterations", "wall_s"]
    assert "domain_acc_AtoB" in header
    assert first[:2] == ["0", "5"] and second[:2] == ["1", "10"]
    column = header.index("domain_acc_AtoB")
    (sweep_dir,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    for row, job in ((first, "0"), (second, "1")):
        written = json.loads((sweep_dir / job / "metrics.json").read_text())["metrics"]["domain_acc_AtoB"]
        assert float(row[column]) == pytest.approx(written, abs=5e-5)
        assert row[header.index("iterations")] == "2"


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ["loss.cycle_w=5,10"],  # the README's old sweep: MUNIT has no cycle weight, no job's config composes
        ["model=funit", "data=shapes_color", "seed=0,1"],  # the first job's start is refused
    ],
)
def test_a_refused_sweep_leaves_no_multirun_folder(tmp_path, overrides):
    result = i2i_train(tmp_path, "-m", *overrides)
    assert result.returncode != 0
    multiruns = tmp_path / "logs" / "train" / "multiruns"
    assert not multiruns.is_dir() or not any(multiruns.iterdir()), list(multiruns.rglob("*"))
