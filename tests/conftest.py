"""Shared fixtures: the real composed config, shrunk to run in seconds on a CPU."""

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torchvision.models.vgg import cfgs as vgg_cfgs
from torchvision.models.vgg import make_layers

# A run of a few iterations at 32 px on a handful of synthetic images, every callback firing.
FAST = [
    "trainer.max_steps=4",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "data.image_size=32",
    "callbacks.checkpoint.every_n_iterations=2",
    "callbacks.image_grid.every_n_iterations=2",
    "callbacks.image_grid.n_images=2",
    "callbacks.synthetic_metrics.every_n_iterations=2",
    "callbacks.synthetic_metrics.n_images=4",
    "~callbacks.progress_bar",
    "print_config=false",
]
# ... and, for the synthetic scenarios, a handful of images (per class for shapes_fewshot, so K <= 4;
# 64 px there, the smallest size imaginaire's 6-stage FUNIT discriminator takes).
FAST_SHAPES = ["data.domains.num_train=8", "data.domains.num_test=4"]
# Models that cannot run at 32 px: the official 3-scale discriminator of MUNIT/UNIT/DRIT needs 64 px.
FAST_IMAGE_SIZE = {"munit": 64, "unit": 64, "drit": 64}
# Scenarios that need more: shapes_fewshot at K <= 4 shots per class (FAST_SHAPES keeps 4 test images
# of each), at 64 px for imaginaire's 6-stage FUNIT discriminator.
FAST_DATA = {"shapes_fewshot": ["data.test_shots=2", "data.image_size=64", "data.batch_size=2"]}
DEFAULT_MODEL = "munit"  # conf/train.yaml


def small_data(model: str, data: str) -> list[str]:
    """Overrides for the smallest data `model` trains on with data config `data`."""
    overrides = [f"data.image_size={FAST_IMAGE_SIZE.get(model, 32)}"]
    overrides += FAST_SHAPES if data.startswith("shapes") else []
    return overrides + FAST_DATA.get(data, [])


def compose_config(overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """The `train` config as `i2i-train <overrides>` composes it, writing into `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="i2i.conf"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir or "unused")
    return cfg


def run_cli(main: Callable[[], object], monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    """Run a console entry point (`i2i.train.main`, ...) in this process with the command line `args`."""
    monkeypatch.setattr(sys, "argv", ["i2i", *args])
    GlobalHydra.instance().clear()
    try:
        main()
    finally:
        GlobalHydra.instance().clear()


def use_offline_wandb(env: pytest.MonkeyPatch, directory: Path) -> None:
    """Make W&B log offline into `directory` (it never contacts its servers) and print nothing."""
    env.setenv("WANDB_MODE", "offline")
    env.setenv("WANDB_DIR", str(directory))
    env.setenv("WANDB_SILENT", "true")


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """`make_cfg("model=cyclegan", ...)`: a fast config writing into this test's tmp_path."""

    def make(*overrides: str, fast: bool = True, output_dir: Path | None = None) -> DictConfig:
        data = next((o.split("=", 1)[1] for o in overrides if o.startswith("data=")), "shapes")
        model = next((o.split("=", 1)[1] for o in overrides if o.startswith("model=")), DEFAULT_MODEL)
        speedups = [*FAST, *small_data(model, data)] if fast else []
        return compose_config([*speedups, *overrides], output_dir or tmp_path)

    return make


@pytest.fixture(scope="session")
def metric_weights_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TORCH_HOME whose hub cache holds random-weight Inception and AlexNet files (once per session)."""
    from metric_weights import write_metric_weights

    return write_metric_weights(tmp_path_factory.mktemp("torch_home"))


@pytest.fixture
def vgg_file(tmp_path: Path) -> tuple[Path, torch.nn.Sequential]:
    """A torchvision-format VGG16 state dict with random weights, as torchvision's file lays it out."""
    torch.manual_seed(0)
    features = make_layers(vgg_cfgs["D"])
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # the real file has the classifier too
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(state, path)
    return path, features


@functools.cache
def _paper_model_config(model: str) -> DictConfig:
    return compose_config([f"model={model}", "preset=paper"]).model


def network_factory(model: str, network: str) -> Callable[..., torch.nn.Module]:
    """The factory of network `model.<network>` of `conf/model/<model>.yaml` at the official widths,
    as the model receives it: tests build networks from the one source of their hyperparameters."""
    return instantiate(OmegaConf.to_container(_paper_model_config(model)[network], resolve=True))


def configured_network(model: str, network: str, **arguments: object) -> torch.nn.Module:
    """Network `model.<network>` at the official widths of `conf/model/<model>.yaml`, `arguments`
    replacing or adding to the configured ones (e.g. a smaller `dim`, the widths a model wires in)."""
    return network_factory(model, network)(**arguments)
