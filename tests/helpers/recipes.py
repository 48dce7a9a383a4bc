"""The Hydra group choices of a composed `train` config (which model, data and preset a recipe picks)."""

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict


def compose_with_choices(overrides: list[str]) -> tuple[DictConfig, dict[str, str]]:
    """The `train` config of `overrides` (as `compose_config` makes it, without Hydra's own keys) and
    the option chosen in each config group (`{"model": "munit", "preset": "tiny", ...}`)."""
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="i2i.conf"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices
