"""`i2i-convert`: import an official MUNIT or UNIT generator checkpoint as an i2i checkpoint.

    i2i-convert munit gen_01000000.pt munit_edges2shoes.ckpt --image-size 256
    i2i-translate ckpt_path=munit_edges2shoes.ckpt input_dir=edges output_dir=out n_styles=5

The official trainers (`NVlabs/MUNIT`, `mingyuliutw/UNIT`: `trainer.py save`) write the two
generators as `{'a': gen_a.state_dict(), 'b': gen_b.state_dict()}` (`AdaINGen` for MUNIT, `VAEGen`
for UNIT); the file is read with `weights_only=True`. The architecture (width, depths, style and
MLP sizes) is read off the tensor shapes, the i2i model is composed from conf/ at the paper preset
with those values, and each official layer is matched with the i2i layer at the same place in the
forward pass, its shapes checked. The norms' running statistics in the file (dummy buffers of the
official AdaIN, and those PyTorch 0.3 kept for instance norm) carry no weights and are dropped.
The discriminators are not in the file: the converted checkpoint keeps them at their
initialisation, so it serves translation, not the continuation of training.
"""

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import OmegaConf, open_dict
from torch import Tensor, nn

from i2i.checkpoints import read_checkpoint
from i2i.cli import ArgumentParser, reporting_errors
from i2i.errors import CheckpointError, ConfigError
from i2i.schema import TRAIN_VALUES, check_config
from i2i.train import build_model

# Official sub-network prefix -> the i2i generator's submodule, per model.
COMPONENTS = {
    "munit": {"enc_style": "style_encoder", "enc_content": "content_encoder", "dec": "decoder", "mlp": "mlp"},
    "unit": {"enc": "encoder", "dec": "decoder"},
}
STATISTICS = ("running_mean", "running_var", "num_batches_tracked")
# Within an official Conv2dBlock/LinearBlock the norm is registered before the conv, but runs after.
RUN_ORDER = {"conv": 0, "fc": 0, "norm": 1}


def load_official(path: Path) -> dict[str, dict[str, Tensor]]:
    """The two generator state dicts of an official `gen_*.pt`, without the norms' statistics."""
    checkpoint = read_checkpoint(path)
    if not isinstance(checkpoint, dict) or set(checkpoint) != {"a", "b"}:
        raise CheckpointError(
            f"{path} is not an official generator checkpoint (gen_*.pt: a dict with keys 'a', 'b')"
        )
    return {
        domain: {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in STATISTICS}
        for domain, state in checkpoint.items()
    }


def _numbers(pattern: str, keys: Iterable[str]) -> list[int]:
    return sorted({int(m[1]) for key in keys if (m := re.fullmatch(pattern, key))})


def architecture(model: str, state: dict[str, Tensor]) -> list[str]:
    """Config overrides that give the i2i generator the official generator's widths and depths."""
    encoder = "enc_content" if model == "munit" else "enc"
    first = state.get(f"{encoder}.model.0.conv.weight")
    if first is None:
        raise CheckpointError(f"not an official {model.upper()} generator: no {encoder}.model.0.conv.weight")
    if first.shape[1] != 3:
        raise CheckpointError(
            f"the generator takes {first.shape[1]}-channel images; i2i translates RGB images"
        )
    downsampling = _numbers(rf"{encoder}\.model\.(\d+)\.conv\.weight", state)
    res_blocks = _numbers(rf"{encoder}\.model\.\d+\.model\.(\d+)\.model\.0\.conv\.weight", state)
    overrides = [
        f"model.generator.dim={first.shape[0]}",
        f"model.generator.n_downsample={len(downsampling) - 1}",
        f"model.generator.n_res={len(res_blocks)}",
    ]
    if model == "munit":
        style_convs = _numbers(r"enc_style\.model\.(\d+)\.conv\.weight", state)
        style_out = max(_numbers(r"enc_style\.model\.(\d+)\.weight", state))
        mlp = _numbers(r"mlp\.model\.(\d+)\.fc\.weight", state)
        overrides += [
            f"model.generator.style_dim={state[f'enc_style.model.{style_out}.weight'].shape[0]}",
            f"model.generator.style_downsample={len(style_convs) - 1}",
            f"model.generator.mlp_dim={state['mlp.model.0.fc.weight'].shape[0]}",
            f"model.generator.mlp_blocks={len(mlp)}",
        ]
    return overrides


def _run_order(layer: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key of an official layer path: numbered children in order, a conv before its norm."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, RUN_ORDER.get(part, 2), part) for part in layer.split(".")
    )


def convert_generator(model: str, state: dict[str, Tensor], generator: nn.Module) -> dict[str, Tensor]:
    """The official generator `state` as a state dict of the i2i `generator`, matched layer by layer."""
    converted, used = {}, set()
    for official, ours in COMPONENTS[model].items():
        layers = sorted({k.rsplit(".", 1)[0] for k in state if k.startswith(official + ".")}, key=_run_order)
        network = getattr(generator, ours)
        targets = [
            n for n, m in network.named_modules() if next(m.parameters(recurse=False), None) is not None
        ]
        if len(layers) != len(targets):
            counts = f"{len(layers)} layers in the official generator, {len(targets)} in i2i's"
            raise CheckpointError(f"{official}: {counts}")
        for layer, target in zip(layers, targets):
            for name, param in network.get_submodule(target).named_parameters(recurse=False):
                source = state.get(f"{layer}.{name}")
                if source is None or source.shape != param.shape:
                    found = None if source is None else tuple(source.shape)
                    raise CheckpointError(
                        f"{layer}.{name}: expected shape {tuple(param.shape)}, found {found}"
                    )
                converted[f"{ours}.{target}.{name}"] = source
                used.add(f"{layer}.{name}")
    if set(state) - used:
        raise CheckpointError(
            f"keys of no i2i layer in the official generator: {sorted(set(state) - used)[:3]}"
        )
    return converted


def convert(model: str, source: Path, output: Path, image_size: int, overrides: list[str]) -> Path:
    """Write the i2i checkpoint of an official generator file; returns its path."""
    states = load_official(source)
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="i2i.conf"):
        shape = [
            f"model={model}",
            "preset=paper",
            f"data.image_size={image_size}",
            *architecture(model, states["a"]),
        ]
        try:
            cfg = compose("train", overrides=[*shape, *overrides])
        except HydraException as error:  # an override that names no key or does not parse
            raise ConfigError("overrides", " ".join(overrides), str(error).splitlines()[0]) from error
    with open_dict(cfg):
        cfg.paths.output_dir = str(output.parent)
    check_config(cfg, TRAIN_VALUES)
    translator = build_model(cfg)
    for domain, generator in (("a", translator.G_a), ("b", translator.G_b)):
        generator.load_state_dict(convert_generator(model, states[domain], generator))
    checkpoint: dict[str, Any] = {
        "state_dict": translator.state_dict(),
        "hyper_parameters": OmegaConf.to_container(cfg, resolve=True),
        "i2i": {"iteration": 0, "converted_from": str(source)},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, output)
    return output


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `i2i-convert`."""
    parser = ArgumentParser(prog="i2i-convert", description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", choices=sorted(COMPONENTS), help="the official code base the file comes from"
    )
    parser.add_argument("source", type=Path, help="the official generator checkpoint, gen_<iterations>.pt")
    parser.add_argument(
        "output", type=Path, help="the i2i checkpoint to write (for i2i-translate ckpt_path=)"
    )
    parser.add_argument(
        "--image-size", type=int, default=256, help="the size the model was trained at (default 256)"
    )
    parser.add_argument("overrides", nargs="*", help="further config overrides, e.g. data.image_size=512")
    args = parser.parse_intermixed_args(argv)
    with reporting_errors():
        written = convert(args.model, args.source, args.output, args.image_size, args.overrides)
        print(f"wrote {written}")


if __name__ == "__main__":
    main()
