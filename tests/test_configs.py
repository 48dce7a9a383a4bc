"""Every model x data x trainer x preset combination composes and builds; experiments compose."""

import itertools
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import get_class, instantiate
from PIL import Image

from i2i.train import build_model, check_data_fits_model

CONF = resources.files("i2i.conf")


def options(group: str) -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in CONF.joinpath(group).iterdir() if p.name.endswith(".yaml"))


MODELS, DATA, TRAINERS, PRESETS = options("model"), options("data"), options("trainer"), options("preset")
TRAINERS = [t for t in TRAINERS if t != "default"]


def data_overrides(data: str, root: Path) -> list[str]:
    """Overrides that make a data config buildable offline (real-data configs get a tiny folder)."""
    if not data.startswith("folder"):
        return []
    for split in ("trainA", "trainB", "testA", "testB"):
        (root / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((48, 48, 3), dtype=np.uint8)).save(root / split / "0.png")
    return [f"data.domains.root={root}", "data.image_size=32", "data.domains.load_size=40"]


@pytest.mark.parametrize(("model", "data", "trainer"), list(itertools.product(MODELS, DATA, TRAINERS)))
def test_every_model_data_trainer_combination_composes_and_builds(make_cfg, tmp_path, model, data, trainer):
    cfg = make_cfg(f"model={model}", f"data={data}", f"trainer={trainer}", *data_overrides(data, tmp_path / "d"))
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        cfg.trainer.accelerator = "cpu"  # everything else of a GPU config still builds here
    instantiate(cfg.trainer, max_steps=-1, logger=False, enable_progress_bar=False)
    datamodule = instantiate(cfg.data, _convert_="all")
    if get_class(cfg.model._target_).data_kind != datamodule.kind:
        pytest.skip(f"{model} does not train on {data}")
    check_data_fits_model(cfg, datamodule)
    built = build_model(cfg)
    datamodule.setup()
    images = datamodule.test_images("A", 1)
    assert built.translate(images, "AtoB").shape == images.shape


@pytest.mark.parametrize(("model", "preset"), list(itertools.product(MODELS, PRESETS)))
def test_every_model_builds_at_every_width_preset(make_cfg, model, preset):
    cfg = make_cfg(f"model={model}", f"preset={preset}", "data.image_size=64", fast=False)
    with torch.device("meta"):
        assert sum(p.numel() for p in build_model(cfg).parameters()) > 0


def test_the_tiny_preset_is_narrower_than_the_paper_one(make_cfg):
    counts = {}
    for preset in ("tiny", "paper"):
        with torch.device("meta"):
            counts[preset] = sum(p.numel() for p in build_model(make_cfg(f"preset={preset}")).parameters())
    assert counts["tiny"] < counts["paper"] / 8


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes_and_builds(make_cfg, experiment):
    cfg = make_cfg(f"experiment={experiment}", fast=False)
    with torch.device("meta"):
        build_model(cfg)
