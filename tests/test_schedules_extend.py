"""Extending a finished run: its learning-rate schedule is re-planned for the new horizon, or refused."""

import csv
from pathlib import Path

import pytest

from i2i.errors import CheckpointError, ConfigError
from i2i.models.schedules import ConstantThenLinearDecay
from i2i.train import train

BASE_LR = 2.0e-4  # conf/model/cyclegan.yaml
# CycleGAN: constant for the first half of trainer.max_steps, then linear to 0 at trainer.max_steps.
CYCLEGAN = ["model=cyclegan", "data.domains.num_train=4", "model.pool_size=2"]


def logged_learning_rates(root: Path) -> dict[int, float]:
    """Iteration (1-based) -> the generator's learning rate, from every metrics.csv under `root`."""
    rates = {}
    for path in sorted(root.rglob("metrics.csv")):
        with path.open() as file:
            for row in csv.DictReader(file):
                if row.get("train/lr_generator"):
                    rates[int(row["step"]) + 1] = float(row["train/lr_generator"])
    return rates


def first_run(make_cfg, tmp_path: Path) -> Path:
    train(make_cfg(*CYCLEGAN, "trainer.max_steps=6", output_dir=tmp_path / "first"))
    return tmp_path / "first" / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_extending_a_finished_run_replans_its_learning_rate(make_cfg, tmp_path):
    checkpoint = first_run(make_cfg, tmp_path)
    assert logged_learning_rates(tmp_path / "first")[6] == pytest.approx(BASE_LR * (1 - 2 / 3))
    extend = ["trainer.max_steps=10", f"ckpt_path={checkpoint}"]
    _, resumed = train(make_cfg(*CYCLEGAN, *extend, output_dir=tmp_path / "resumed"))
    assert resumed["model"].iteration == 10
    rates = logged_learning_rates(tmp_path / "resumed")
    # as planned for 10 iterations from the start: constant to iteration 5, then 0.8, 0.6, 0.4, 0.2
    planned = ConstantThenLinearDecay(total=10, decay_from=0.5)
    for iteration in range(7, 11):
        assert rates[iteration] == pytest.approx(BASE_LR * planned(iteration - 1)), iteration
        assert rates[iteration] > 0
    assert [round(rates[i] / BASE_LR, 6) for i in range(7, 11)] == [0.8, 0.6, 0.4, 0.2]


@pytest.mark.slow
def test_extending_is_refused_in_one_line_when_asked(make_cfg, tmp_path):
    checkpoint = first_run(make_cfg, tmp_path)
    refuse = ["trainer.max_steps=10", f"ckpt_path={checkpoint}", "extend_schedule=refuse"]
    cfg = make_cfg(*CYCLEGAN, *refuse, output_dir=tmp_path / "refused")
    with pytest.raises(CheckpointError) as refused:
        train(cfg)
    message = str(refused.value)
    assert "total=6" in message and "total=10" in message and "extend_schedule=replan" in message
    assert "\n" not in message


def test_extend_schedule_must_be_replan_or_refuse(make_cfg):
    with pytest.raises(ConfigError, match="extend_schedule"):
        train(make_cfg("extend_schedule=stretch"))
