"""Training progress: iterations out of trainer.max_steps, it/s, ETA and the latest D and G losses."""

import re
import sys

import pytest
from conftest import FAST, small_data

from i2i.callbacks.progress import format_duration, status
from i2i.train import train

# The tests' fast run (4 iterations of CycleGAN at 32 px) with the progress callback kept.
WITH_PROGRESS = [
    *(o for o in FAST if "progress_bar" not in o),
    *small_data("cyclegan", "shapes"),
    "model=cyclegan",
    "trainer.enable_progress_bar=true",
    "callbacks.progress_bar.every_n_iterations=2",
]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NUMBER = r"-?\d+\.\d{3}"
LINE = re.compile(rf"iteration (\d+)/4  [\d.e+]+ it/s  ETA \d+:\d\d  d={NUMBER} g={NUMBER}")


def test_without_a_terminal_a_plain_line_every_n_iterations(make_cfg, capsys):
    cfg = make_cfg(*WITH_PROGRESS, fast=False)
    train(cfg)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("iteration ")]
    assert len(lines) == 2, err
    assert [LINE.fullmatch(line).group(1) for line in lines] == ["2", "4"], lines
    assert "\x1b[" not in err and "Epoch" not in err


def test_on_a_terminal_a_live_bar_in_iterations(make_cfg, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "160")
    train(make_cfg(*WITH_PROGRESS, fast=False))
    err = ANSI.sub("", capsys.readouterr().err)
    final = [line.strip() for line in err.splitlines() if "iteration 4/4" in line]
    assert final, err
    assert "━" in final[-1]  # the bar
    assert re.search(rf"[\d.e+]+ it/s  ETA 0:00  d={NUMBER} g={NUMBER}$", final[-1]), final[-1]
    assert "Epoch" not in err


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (578, "9:38"), (3599.6, "1:00:00"), (9414, "2:36:54")]
)
def test_durations_read_as_clock_times(seconds, text):
    assert format_duration(seconds) == text


def test_status_reads_speed_eta_and_losses():
    assert status(150, 2000, 3.2, {"d": 0.5123, "g": 3.21}) == "3.2 it/s  ETA 9:38  d=0.512 g=3.210"
    assert status(0, 2000, None, {}) == ""
