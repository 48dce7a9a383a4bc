"""The config schema (i2i.schema): wrong types and misspelt keys refused while composing, naming the key;
the spine defaults written once; every loss group typed by its model's LossWeights; old U-GAT-IT
checkpoints (loss.adv_w) still load."""

import dataclasses
from importlib import resources

import pytest
import torch
from conftest import compose_config, run_cli
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from i2i.checkpoints import load_model
from i2i.errors import ConfigError
from i2i.losses.weights import LossWeights
from i2i.models.tunit import TUNITLoss
from i2i.models.ugatit import UGATITLoss
from i2i.schema import TRAIN_VALUES, ModelSpine, check_config, loss_weight_classes
from i2i.train import build_model
from i2i.train import main as train_main

CONF = resources.files("i2i.conf")
LOSSES = sorted(p.name[: -len(".yaml")] for p in CONF.joinpath("loss").iterdir() if p.name.endswith(".yaml"))
MODELS = sorted(p.name[: -len(".yaml")] for p in CONF.joinpath("model").iterdir() if p.name.endswith(".yaml"))
SPINE_KEYS = [f.name for f in dataclasses.fields(ModelSpine) if f.name != "_target_"]
FAST_CYCLEGAN = ["model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4"]


@pytest.mark.parametrize(
    "override",
    [
        "trainer.max_steps=abc",
        "trainer.log_every_n_steps=1.5",
        "loss.cycle_w=abc",
        "loss.gan_w=true",
        "seed=abc",
        "print_config=abc",
        "auto_resume=abc",
        "data.batch_size=1.5",
        "data.seed=abc",
        "model.channels_last=abc",
        "model.max_loss=abc",
    ],
)
def test_a_value_of_the_wrong_type_is_refused_while_composing_naming_the_key(override):
    with pytest.raises(ConfigCompositionException) as refused:
        compose_config(["model=cyclegan", override])
    assert isinstance(refused.value.__cause__, ValidationError)
    assert refused.value.__cause__.full_key == override.split("=")[0]


MISSPELT = ["loss.cycle_ww=5", "trainer.max_step=5", "data.batch_sise=2", "model.max_los=1"]


@pytest.mark.parametrize("override", MISSPELT)
def test_a_misspelt_key_is_refused_while_composing(override):
    with pytest.raises(ConfigCompositionException) as refused:
        compose_config(["model=cyclegan", override])
    assert isinstance(refused.value.__cause__, (ConfigKeyError, ConfigAttributeError))
    assert override.split("=")[0] in str(refused.value)


@pytest.mark.parametrize(
    ("override", "nearest"),
    [("loss.cycle_ww=5", "cycle_w"), ("trainer.max_step=5", "max_steps"), ("model.max_los=1", "max_loss")],
)
def test_i2i_train_names_the_nearest_key_of_a_misspelt_one(override, nearest, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exited:
        run_cli(train_main, monkeypatch, "model=cyclegan", override)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and len(lines) == 1
    key = override.split("=")[0]
    # Hydra's own message would suggest appending the key with `+`, which no code would read
    assert lines[0].startswith(f"error: {key}: no such key") and f"did you mean {nearest}?" in lines[0]
    assert "+" not in lines[0]


@pytest.mark.parametrize("override", ["+loss.cycle_ww=5", "+data.batch_sise=2"])
def test_a_key_added_to_a_closed_group_is_refused_before_anything_is_built(override):
    cfg = compose_config(["model=cyclegan", override])  # Hydra lets `+key=...` through typed nodes
    key = override[1:].split("=")[0]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as refused:
        check_config(cfg, TRAIN_VALUES)
    assert refused.value.key == key


@pytest.mark.parametrize(
    "override", ["trainer.max_steps=0", "data.num_workers=-1", "model.max_parameter_norm=-1", "seed=-1"]
)
def test_the_schema_fields_carry_their_ranges(override):
    cfg = compose_config(["model=cyclegan", override])
    with pytest.raises(ConfigError) as refused:
        check_config(cfg, TRAIN_VALUES)
    assert refused.value.key == override.split("=")[0]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_takes_the_spine_defaults_from_the_schema_or_its_own_spine_file(model):
    """A model YAML restates no spine default; a model that needs another value says so, with its
    measured reason, in conf/spine/<model>.yaml, and that value reaches the composed model."""
    assert not set(SPINE_KEYS) & set(OmegaConf.load(CONF.joinpath("model", f"{model}.yaml")))
    own_file = CONF.joinpath("spine", f"{model}.yaml")
    own = OmegaConf.to_container(OmegaConf.load(own_file)) if own_file.is_file() else {}
    defaults = ModelSpine()
    assert set(own) <= set(SPINE_KEYS)
    assert all(value != getattr(defaults, key) for key, value in own.items())
    cfg = compose_config([f"model={model}"])
    expected = {key: getattr(defaults, key) for key in SPINE_KEYS} | own
    assert {key: cfg.model[key] for key in SPINE_KEYS} == expected


def test_funit_runs_without_a_loss_bound_and_a_command_line_bound_still_applies():
    assert compose_config(["model=funit"]).model.max_loss is None
    assert compose_config(["model=funit", "model.max_loss=1e9"]).model.max_loss == 1e9


def test_a_spine_key_is_overridden_from_the_command_line_and_reaches_the_model():
    spine = ["model.gradient_clip_val=0.5", "model.max_loss=null"]
    cfg = compose_config(["model=cyclegan", *spine, *FAST_CYCLEGAN])
    model = build_model(cfg)
    assert (model.gradient_clip_val, model.max_loss) == (0.5, None)


def test_every_loss_class_derives_from_loss_weights_and_has_a_typed_group():
    for weights in loss_weight_classes():
        assert issubclass(weights, LossWeights)
    for loss in LOSSES:
        cfg = compose_config([f"loss={loss}"])
        weights = get_class(cfg.loss._target_)
        assert weights in loss_weight_classes()
        schema = OmegaConf.get_type(cfg.loss)
        assert [f.name for f in dataclasses.fields(schema)] == ["_target_"] + [
            f.name for f in dataclasses.fields(weights)
        ]


@pytest.mark.parametrize(
    ("weights", "key"),
    [
        (dict(gan_mode="lsgan", gan_w=1, cycle_w=10, identity_w=10, cam_w=-1), "loss.cam_w"),
        (dict(gan_mode="wgan-gp", gan_w=1, cycle_w=10, identity_w=10, cam_w=1000), "loss.gan_mode"),
    ],
)
def test_loss_weights_validate_every_weight_and_the_gan_mode(weights, key):
    with pytest.raises(ConfigError) as refused:
        UGATITLoss(**weights)
    assert refused.value.key == key


def test_loss_weights_check_the_fields_a_model_declares_besides_its_weights():
    valid = dict(temperature=0.07, moco_w=1, iic_w=5, guide_gan_phase_scale=0.1, gan_mode="hinge", gan_w=1,
                 r1_w=10, recon_w=0.1, style_w=0.01)  # fmt: skip
    TUNITLoss(**valid)
    for key, value in (("temperature", 0.0), ("guide_gan_phase_scale", -1.0)):
        with pytest.raises(ConfigError) as refused:
            TUNITLoss(**{**valid, key: value})
        assert refused.value.key == f"loss.{key}"


def test_a_ugatit_checkpoint_with_the_old_adv_w_key_loads_as_gan_w(tmp_path):
    """Checkpoints written before the rename store `loss.adv_w` in their run config."""
    tiny = ["model.generator.ngf=4", "model.discriminator_global.ndf=4", "model.discriminator_local.ndf=4"]
    data = ["data=shapes_geometry", "data.image_size=32"]
    cfg = compose_config(["model=ugatit", *data, "loss.gan_w=0.5", *tiny])
    model = build_model(cfg)
    config = OmegaConf.to_container(cfg, resolve=True)
    config["loss"]["adv_w"] = config["loss"].pop("gan_w")
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": config}, tmp_path / "old.ckpt")
    loaded, loaded_config = load_model(tmp_path / "old.ckpt")
    assert loaded.weights.gan_w == 0.5
    assert "adv_w" not in loaded_config["loss"]
