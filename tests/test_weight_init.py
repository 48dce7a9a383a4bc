"""One initialisation vocabulary (`model.init`, `i2i.nets.init.WeightInit`) for every model, and
checkpoints written before it (issue 25 §2) loading as the same model."""

import inspect
from pathlib import Path
from typing import Any

import i2i.conf
import pytest
import torch
from conftest import FAST, compose_config, run_cli, small_data
from hydra.utils import get_class
from omegaconf import OmegaConf
from torch import nn

from i2i import train as train_cli
from i2i.checkpoints import load_model, with_current_network_keys
from i2i.errors import ConfigError
from i2i.nets.init import WeightInit
from i2i.train import build_model

MODELS = sorted(path.stem for path in (Path(i2i.conf.__file__).parent / "model").glob("*.yaml"))
DATA = {"funit": "shapes_fewshot", "funit_imaginaire": "shapes_fewshot", "coco_funit": "shapes_fewshot"}
DATA |= {"lomit": "shapes_local", "tunit": "shapes_unlabeled", "ugatit": "shapes_geometry"}
# What conf/model/*.yaml said up to bbf4374, before `model.init` (later models, CUT, never had
# another form); TUNIT fixed its init in code.
FORMER_INIT = {
    "cyclegan": {"init_kind": "normal", "init_gain": 0.02},
    "unit": {"init_generator": "kaiming", "init_discriminator": "gaussian", "init_gain": 0.02},
    "munit": {"init_generator": "kaiming", "init_discriminator": "gaussian", "init_gain": 0.02},
    "ugatit": {"init_kind": "default", "init_gain": 0.02},
    "funit": {"init_kind": "kaiming", "init_gain": 0.02},
    "funit_imaginaire": {"init_kind": "default", "init_gain": 1.0},
    "coco_funit": {"init_kind": "default", "init_gain": 1.0},
    "lomit": {"generator_init": "kaiming", "discriminator_init": "gaussian", "init_gain": 0.02},
    "tunit": {},
}
# ... and the network arguments no config wrote then (Python defaults), by model.
FORMER_UNWRITTEN = {
    "cyclegan": {"generator": ("antialias",), "discriminator": ("antialias",)},
    "funit": {"content_encoder": ("res_scale",), "decoder": ("res_scale",)},
    "funit_imaginaire": {"content_encoder": ("res_scale",)},
    "coco_funit": {"content_encoder": ("res_scale",)},
    "lomit": {"content_encoder": ("res_final_activation", "res_scale"), "decoder": ("res_scale",)},
}


def fast_config(model: str, output_dir: Path) -> Any:
    data = DATA.get(model, "shapes_color")
    return compose_config([f"model={model}", f"data={data}", *FAST, *small_data(model, data)], output_dir)


def as_written_before(model: str, config: dict[str, Any]) -> dict[str, Any]:
    """The resolved run config `config` as i2i wrote it into checkpoints before `model.init`."""
    former = {key: value for key, value in config["model"].items() if key != "init"} | FORMER_INIT[model]
    for network, arguments in FORMER_UNWRITTEN.get(model, {}).items():
        former[network] = {key: value for key, value in former[network].items() if key not in arguments}
    return {**config, "model": former}


@pytest.mark.parametrize("model", MODELS)
def test_every_model_names_its_initialisation_alike(model):
    cfg = compose_config([f"model={model}"])
    assert get_class(cfg.model.init._target_) is WeightInit
    assert set(cfg.model.init) == {"_target_", "generator", "discriminator", "gain"}
    assert not set(cfg.model) & {key for keys in FORMER_INIT.values() for key in keys}
    classes = get_class(cfg.model._target_).__mro__
    signatures = [inspect.signature(vars(cls)["__init__"]) for cls in classes if "__init__" in vars(cls)]
    parameter = next(found.parameters["init"] for found in signatures if "init" in found.parameters)
    assert parameter.annotation is WeightInit and parameter.default is inspect.Parameter.empty


def test_weight_init_gives_generators_and_discriminators_their_own_kind():
    torch.manual_seed(0)
    generator, discriminator = nn.Conv2d(64, 64, 3), nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64))
    WeightInit(generator="kaiming", discriminator="normal", gain=0.5).apply(
        generators=(generator,), discriminators=(discriminator,)
    )
    assert generator.weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)
    assert discriminator[0].weight.std().item() == pytest.approx(0.5, rel=0.05)
    assert discriminator[1].weight.mean().item() == pytest.approx(1.0, abs=0.2)  # BatchNorm: N(1, gain)
    assert not generator.bias.any() and not discriminator[0].bias.any()


def test_default_keeps_pytorch_s_own_initialisation():
    torch.manual_seed(0)
    layer = nn.Conv2d(4, 4, 3)
    before = layer.weight.clone()
    init = WeightInit(generator="default", discriminator="default", gain=0.02)
    init.apply(generators=(layer,), discriminators=())
    assert torch.equal(layer.weight, before)


def test_an_unknown_kind_or_a_negative_gain_names_its_key():
    with pytest.raises(ConfigError, match="model.init.generator='uniform' .* choose one of normal, gaussian"):
        WeightInit(generator="uniform", discriminator="normal", gain=0.02)
    with pytest.raises(ConfigError, match="model.init.gain=-1"):
        WeightInit(generator="normal", discriminator="normal", gain=-1)


def test_i2i_train_refuses_an_unknown_kind_in_one_line(monkeypatch, capsys, tmp_path):
    arguments = ["model=cyclegan", "model.init.discriminator=kaimin", f"hydra.run.dir={tmp_path}"]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_cli.main, monkeypatch, *arguments, "print_config=false")
    assert exit_info.value.code == 2
    kinds = "normal, gaussian, xavier, kaiming, orthogonal, default, conv_normal"
    message = f"error: model.init.discriminator='kaimin' is not allowed: choose one of {kinds}"
    assert capsys.readouterr().err.strip() == message


@pytest.mark.parametrize("model", sorted(FORMER_INIT))  # the models older than `model.init`
def test_a_checkpoint_with_the_former_init_keys_loads_as_the_same_model(model, tmp_path):
    cfg = fast_config(model, tmp_path)
    config = OmegaConf.to_container(cfg, resolve=True)
    former = as_written_before(model, config)
    assert with_current_network_keys(former["model"]) == config["model"]
    torch.manual_seed(0)
    state = build_model(cfg).state_dict()
    path = tmp_path / "former.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": former, "i2i": {"iteration": 3}}, path)
    loaded, _ = load_model(path)
    assert type(loaded).__name__ == get_class(cfg.model._target_).__name__ and loaded.iteration == 3
    assert all(torch.equal(value, state[key]) for key, value in loaded.state_dict().items())


def test_a_current_model_config_is_read_as_it_is(tmp_path):
    model = OmegaConf.to_container(fast_config("munit", tmp_path).model, resolve=True)
    assert with_current_network_keys(model) is model


def test_a_cyclegan_checkpoint_from_before_the_antialias_option_loads_strided(tmp_path):
    """Checkpoints written with `model.init` but before `antialias` became a network argument."""
    cfg = fast_config("cyclegan", tmp_path)
    config = OmegaConf.to_container(cfg, resolve=True)
    for network in ("generator", "discriminator"):
        del config["model"][network]["antialias"]
    torch.manual_seed(0)
    state = build_model(cfg).state_dict()
    torch.save(
        {"state_dict": state, "hyper_parameters": config, "i2i": {"iteration": 2}}, tmp_path / "c.ckpt"
    )
    loaded, stored = load_model(tmp_path / "c.ckpt")
    assert stored["model"]["generator"]["antialias"] is False
    assert all(torch.equal(value, state[key]) for key, value in loaded.state_dict().items())
