"""The sample grids that W&B and TensorBoard store are the grid PNGs on disk, pixel for pixel.

wandb 0.31's `wandb.Image` turned the float grids the callback logged into all-black media files;
these tests read what each logger wrote back, as a user opening the dashboard would see it.
"""

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, FAST_SHAPES, compose_config, use_offline_wandb
from PIL import Image
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger, WandbLogger

from i2i.loggers import build_loggers
from i2i.train import train

GRID_ITERATIONS = (2, 4)  # FAST: 4 iterations, a grid every 2


def pixels(png: Path | bytes) -> np.ndarray:
    return np.asarray(Image.open(png if isinstance(png, Path) else io.BytesIO(png)).convert("RGB"))


def grid_on_disk(run: Path, iteration: int) -> np.ndarray:
    return pixels(run / "samples" / f"iter_{iteration:07d}.png")


def wandb_media(run: Path, expected: int) -> list[Path]:
    """The run's logged `samples` images in logging order, once `expected` are there (wandb writes
    media files from its own threads; they may trail `wandb.finish()` by a moment)."""
    deadline = time.monotonic() + 30
    while True:
        found = list(run.glob("wandb/offline-run-*/files/media/images/samples_*.png"))
        if len(found) >= expected or time.monotonic() > deadline:
            return sorted(found, key=lambda path: int(re.match(r"samples_(\d+)_", path.name).group(1)))
        time.sleep(0.2)


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory) -> Path:
    """A tiny CycleGAN run logging to W&B (offline) and TensorBoard at once."""
    run = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as env:
        use_offline_wandb(env, run)
        train(compose_config([*FAST, *FAST_SHAPES, "model=cyclegan", "logger=[wandb,tensorboard]"], run))
    return run


@pytest.mark.slow
def test_wandb_media_files_are_the_grid_pngs_and_change_across_steps(logged_run):
    media = wandb_media(logged_run, len(GRID_ITERATIONS))
    assert len(media) == len(GRID_ITERATIONS)
    logged = [pixels(path) for path in media]
    for image, iteration in zip(logged, GRID_ITERATIONS):
        assert image.max() > 0  # not the black panels of float input
        np.testing.assert_array_equal(image, grid_on_disk(logged_run, iteration))
    assert not np.array_equal(logged[0], logged[1])


@pytest.mark.slow
def test_tensorboard_images_are_the_grid_pngs(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logged_run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    logged = {event.step: pixels(event.encoded_image_string) for event in events.Images("samples")}
    assert sorted(logged) == list(GRID_ITERATIONS)
    for iteration, image in logged.items():
        assert image.max() > 0
        np.testing.assert_array_equal(image, grid_on_disk(logged_run, iteration))
    assert not np.array_equal(*logged.values())


@pytest.mark.slow
def test_the_csv_record_is_kept_beside_wandb_and_tensorboard(logged_run):
    header = (logged_run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val/content_iou_AtoB" in header


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("logger=wandb", [CSVLogger, WandbLogger]),
        ("logger=tensorboard", [CSVLogger, TensorBoardLogger]),
        ("logger=[wandb,tensorboard]", [CSVLogger, WandbLogger, TensorBoardLogger]),
    ],
)
def test_every_logger_choice_keeps_the_csv_record(choice, expected, tmp_path, monkeypatch):
    use_offline_wandb(monkeypatch, tmp_path)
    loggers = build_loggers(compose_config([choice], tmp_path))
    assert len(loggers) == len(expected)
    assert all(isinstance(logger, kind) for logger, kind in zip(loggers, expected))
    assert Path(loggers[0].log_dir) == tmp_path / "csv"  # where i2i-compare and the notebook look
