"""Reading an i2i checkpoint safely, shared by the entry points that read one (resume, translate, eval,
convert): weights only, its run config checked against the allowlist before it is built, and
weights that do not fit the model refused in one line."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from i2i.errors import CheckpointError
from i2i.models.base import TranslationModule
from i2i.trusted import check_buildable, current_targets

# Config keys renamed since checkpoints were first written, per loss class: a stored run config with
# the old key is read with the new one (U-GAT-IT's adversarial weight took every model's name, gan_w).
RENAMED_LOSS_KEYS = {"i2i.models.ugatit.UGATITLoss": {"adv_w": "gan_w"}}


def load_weights(model: nn.Module, state_dict: Any, path: str | Path, model_name: str) -> None:
    """Load `state_dict` into `model`, refusing in one line weights that do not fit it (`model_name`
    names the model in the message): the counts of missing, unexpected and differently shaped
    tensors, with the first of each, where `load_state_dict` would raise a message of hundreds of
    lines. Loading goes through the modules' own hooks (e.g. an image pool of any fill)."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(
            f"{path} is not an i2i checkpoint (its state_dict is a {type(state_dict).__name__})"
        )
    try:
        loaded = model.load_state_dict(state_dict, strict=False)
        problems = {"missing": loaded.missing_keys, "unexpected": loaded.unexpected_keys}
    except RuntimeError as error:  # tensors of another shape, or not tensors at all
        problems = {"unloadable": [line.strip() for line in str(error).splitlines()[1:] if line.strip()]}
    found = [f"{len(keys)} {kind} (first: {keys[0]})" for kind, keys in problems.items() if keys]
    if found:
        raise CheckpointError(
            f"{path} holds weights of another model than {model_name}: {'; '.join(found)} "
            "(use the config the checkpoint was trained with)"
        )


def read_checkpoint(path: str | Path) -> Any:
    """The contents of a PyTorch file, loaded on the CPU with `weights_only=True`; clear errors for a
    missing file and a file that is not a PyTorch checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(error).__name__})"
        ) from error


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(checkpoint, the run config inside it); clear errors as `read_checkpoint`, for a checkpoint
    not written by i2i, and for a run config that names anything i2i does not build from a file
    (`i2i.trusted.check_buildable`), so the config is safe to instantiate; classes that have moved
    since the checkpoint was written are named as they are now (`i2i.trusted.current_targets`)."""
    checkpoint = read_checkpoint(path)
    config = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(config, dict) or "model" not in config or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path} is not an i2i checkpoint (no i2i run config in it); train one with i2i-train"
        )
    check_buildable(config, path)
    _rename_old_keys(config)
    return checkpoint, current_targets(config)


# How checkpoints written before issue 25 §2 (up to bbf4374) name a model's initialisation, now
# `model.init` (`i2i.nets.init.WeightInit`): (generator kind, discriminator kind, gain) keys.
FORMER_INIT_KEYS = (
    ("init_kind", "init_kind", "init_gain"),  # CycleGAN, U-GAT-IT, FUNIT, COCO-FUNIT
    ("init_generator", "init_discriminator", "init_gain"),  # UNIT, MUNIT
    ("generator_init", "discriminator_init", "init_gain"),  # LOMIT
)
# ... TUNIT's, fixed in its code then.
FORMER_FIXED_INIT = {
    "i2i.models.tunit.TUNIT": {"generator": "kaiming", "discriminator": "kaiming", "gain": 0.02},
}
# ... and the network arguments that were Python defaults then (no config wrote them), with those values.
FORMER_NETWORK_DEFAULTS = {
    "i2i.nets.autoencoder.ContentEncoder": {"res_final_activation": "none", "res_scale": 1.0},
    "i2i.nets.autoencoder.Decoder": {"res_scale": 1.0},
    # before CUT's anti-aliased down/up-sampling (stop 24) every ResNet generator and PatchGAN strided
    "i2i.nets.resnet.ResnetGenerator": {"antialias": False},
    "i2i.nets.discriminators.PatchDiscriminator": {"antialias": False},
}


def with_current_network_keys(model: Any) -> Any:
    """The model config of a checkpoint in today's keys: a config written before `model.init` and
    the required network arguments gets them, as `FORMER_INIT_KEYS`, `FORMER_FIXED_INIT` and
    `FORMER_NETWORK_DEFAULTS` map them, so the same networks are built; a current config is
    returned as it is."""

    def fill_defaults(node: Any) -> Any:
        if isinstance(node, dict):
            filled = {key: fill_defaults(value) for key, value in node.items()}
            return {**FORMER_NETWORK_DEFAULTS.get(node.get("_target_"), {}), **filled}
        return [fill_defaults(item) for item in node] if isinstance(node, list) else node

    if not isinstance(model, dict):
        return model
    filled = fill_defaults(model)
    if "init" in model:
        return model if filled == model else filled
    model = filled
    former = next((keys for keys in FORMER_INIT_KEYS if keys[0] in model), None)
    if former is not None:
        init = dict(zip(("generator", "discriminator", "gain"), (model[key] for key in former)))
        model = {key: value for key, value in model.items() if key not in former}
    elif model.get("_target_") in FORMER_FIXED_INIT:
        init = FORMER_FIXED_INIT[model["_target_"]]
    else:
        return model
    return {**model, "init": {"_target_": "i2i.nets.init.WeightInit", **init}}


def _rename_old_keys(config: dict[str, Any]) -> None:
    """Rename, in place, the loss keys of RENAMED_LOSS_KEYS in a stored run config."""
    loss = config.get("loss")
    if isinstance(loss, dict):
        for old, new in RENAMED_LOSS_KEYS.get(loss.get("_target_"), {}).items():
            if old in loss:
                loss[new] = loss.pop(old)


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[TranslationModule, dict[str, Any]]:
    """The trained model of an i2i checkpoint, in eval mode on `device`, and its run config (a
    checkpoint of an earlier i2i read in today's keys: `with_current_network_keys`)."""
    checkpoint, config = load_checkpoint(path)
    config = {**config, "model": with_current_network_keys(config["model"])}
    build = instantiate(config["model"], _partial_=True, _convert_="all")
    model = build(loss=instantiate(config["loss"]))
    load_weights(model, checkpoint["state_dict"], path, "the model in its config")
    model.iteration = checkpoint.get("i2i", {}).get("iteration", 0)
    return model.to(device).eval(), config
