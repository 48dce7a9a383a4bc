"""`i2i-convert`: import official pretrained generators (MUNIT, UNIT, CycleGAN, CUT) as an i2i checkpoint.

    i2i-convert munit gen_01000000.pt munit_edges2shoes.ckpt --image-size 256
    i2i-convert cyclegan latest_net_G_A.pth latest_net_G_B.pth horse2zebra.ckpt
    i2i-convert cut latest_net_G.pth cut_horse2zebra.ckpt               # or model=fastcut's: the same G
    i2i-translate ckpt_path=munit_edges2shoes.ckpt input_dir=edges output_dir=out n_styles=5

The official trainers (`NVlabs/MUNIT`, `mingyuliutw/UNIT`: `trainer.py save`) write the two
generators as `{'a': gen_a.state_dict(), 'b': gen_b.state_dict()}` (`AdaINGen` for MUNIT, `VAEGen`
for UNIT); the CycleGAN code (`junyanz/pytorch-CycleGAN-and-pix2pix`: `save_networks`) writes each
generator's state dict to its own file, `latest_net_G_A.pth` (A to B) and `latest_net_G_B.pth`
(B to A), `ResnetGenerator` as `model.<index in its nn.Sequential>.*`; CUT's code (`taesungp/
contrastive-unpaired-translation`, the same `save_networks`) writes its one generator, A to B, to
`latest_net_G.pth` (CUT and FastCUT alike), the same `ResnetGenerator` with anti-aliased down- and
up-sampling, whose fixed blur kernels (`filt` buffers) are in the file: their presence chooses
`model.generator.antialias`, and they are dropped (i2i builds the same kernels). Every file is read with
`weights_only=True`. The architecture (widths, depths, style and MLP sizes) is read off the tensor
shapes, the i2i model is composed from conf/ at the paper preset with those values, and each
official layer is matched with the i2i layer at the same place in the forward pass, its shapes
checked: a file of another architecture is refused in one line naming its first key that does not
fit. The norms' running statistics in the file (dummy buffers of the official AdaIN, and those
PyTorch 0.3 kept for instance norm) carry no weights and are dropped, as the CycleGAN code drops
them when it loads such a file. The discriminators are not in the files: the converted checkpoint
keeps them at their initialisation, so it serves translation and evaluation, not the continuation
of training. Each code base is one entry of `FORMATS`.
"""

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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

STATISTICS = ("running_mean", "running_var", "num_batches_tracked")
# Within an official Conv2dBlock/LinearBlock the norm is registered before the conv, but runs after.
RUN_ORDER = {"conv": 0, "fc": 0, "norm": 1}


#: buffers of official layers fixed by the architecture, not trained: the blur kernels of CUT's
#: anti-aliased down- and up-sampling (i2i's are built the same and not saved)
FIXED_BUFFERS = ("filt",)


def without_statistics(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """`state` without the norms' running statistics."""
    return {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in STATISTICS}


def load_official(path: Path) -> dict[str, dict[str, Tensor]]:
    """The two generator state dicts of an official `gen_*.pt`, without the norms' statistics."""
    checkpoint = read_checkpoint(path)
    if not isinstance(checkpoint, dict) or set(checkpoint) != {"a", "b"}:
        raise CheckpointError(
            f"{path} is not an official generator checkpoint (gen_*.pt: a dict with keys 'a', 'b')"
        )
    return {domain: without_statistics(state) for domain, state in checkpoint.items()}


def read_generator_pair(paths: Sequence[Path]) -> list[dict[str, Tensor]]:
    """The generators of domain a and b in one official MUNIT/UNIT `gen_*.pt`."""
    states = load_official(paths[0])
    return [states["a"], states["b"]]


def read_state_dicts(paths: Sequence[Path]) -> list[dict[str, Tensor]]:
    """One generator state dict per file (the CycleGAN code's `latest_net_G_*.pth`), without the
    norms' statistics."""
    states = []
    for path in paths:
        state = read_checkpoint(path)
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise CheckpointError(
                f"{path} is not a generator state dict (a dict of tensors, as latest_net_G_A.pth)"
            )
        states.append(without_statistics(state))
    return states


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


def resnet_architecture(state: dict[str, Tensor]) -> list[str]:
    """Config overrides that give i2i's ResnetGenerator the official one's width (ngf), number of
    residual blocks and of down-/up-samplings: the stem conv is `model.1`, each residual block has
    a `conv_block`, and the convs between stem and output are the down- and the up-sampling ones."""
    first = state.get("model.1.weight")
    if first is None or first.dim() != 4:
        raise CheckpointError("not an official ResnetGenerator: no 4-d model.1.weight (its first conv)")
    if first.shape[1] != 3:
        raise CheckpointError(
            f"the generator takes {first.shape[1]}-channel images; i2i translates RGB images"
        )
    blocks = _numbers(r"model\.(\d+)\.conv_block\.\d+\.weight", state)
    convs = _numbers(r"model\.(\d+)\.weight", state)
    return [
        f"model.generator.ngf={first.shape[0]}",
        f"model.generator.n_blocks={len(blocks)}",
        f"model.generator.n_downsampling={max(0, (len(convs) - 2) // 2)}",
    ]


def cut_architecture(state: dict[str, Tensor]) -> list[str]:
    """`resnet_architecture`, and anti-aliasing on when the file holds the blur kernels (the official
    default; `--no_antialias` files have strided convs of the same shapes instead)."""
    antialias = any(key.rsplit(".", 1)[-1] in FIXED_BUFFERS for key in state)
    return [*resnet_architecture(state), f"model.generator.antialias={str(antialias).lower()}"]


def _run_order(layer: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key of an official layer path: numbered children in order, a conv before its norm."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, RUN_ORDER.get(part, 2), part) for part in layer.split(".")
    )


def convert_generator(
    components: dict[str, str], state: dict[str, Tensor], generator: nn.Module
) -> dict[str, Tensor]:
    """The official generator `state` as a state dict of the i2i `generator`, matched layer by layer
    within each of the `components` (official sub-network prefix -> the i2i generator's submodule).
    Layers are compared in order, so a file of another architecture is refused at its first layer
    whose tensors do not fit; with every compared layer fitting, a difference in the number of
    layers is refused after."""
    state = {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in FIXED_BUFFERS}
    converted, used = {}, set()
    for official, ours in components.items():
        layers = sorted({k.rsplit(".", 1)[0] for k in state if k.startswith(official + ".")}, key=_run_order)
        network = getattr(generator, ours)
        targets = [
            n for n, m in network.named_modules() if next(m.parameters(recurse=False), None) is not None
        ]
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
        if len(layers) != len(targets):
            counts = f"{len(layers)} layers in the official generator, {len(targets)} in i2i's"
            raise CheckpointError(f"{official}: {counts}")
    if set(state) - used:
        raise CheckpointError(
            f"keys of no i2i layer in the official generator: {sorted(set(state) - used)[:3]}"
        )
    return converted


def in_file(path: Path, function: Callable[..., Any], *arguments: Any) -> Any:
    """`function(*arguments)`, a CheckpointError it raises prefixed with the file it is about."""
    try:
        return function(*arguments)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from error


@dataclass(frozen=True)
class OfficialFormat:
    """How one official code base saves its generators and where they go in the i2i model."""

    files: tuple[str, ...]  # the official files the command takes, in order (names for the help)
    generators: tuple[str, ...]  # the i2i model's generator attributes, in the order `read` returns them
    read: Callable[[Sequence[Path]], list[dict[str, Tensor]]]  # the files -> a state dict per generator
    architecture: Callable[[dict[str, Tensor]], list[str]]  # a state dict -> config overrides
    components: dict[str, str]  # official sub-network prefix -> the i2i generator's submodule


FORMATS = {
    "munit": OfficialFormat(
        files=("gen_<iterations>.pt",),
        generators=("G_a", "G_b"),
        read=read_generator_pair,
        architecture=functools.partial(architecture, "munit"),
        components={
            "enc_style": "style_encoder",
            "enc_content": "content_encoder",
            "dec": "decoder",
            "mlp": "mlp",
        },
    ),
    "unit": OfficialFormat(
        files=("gen_<iterations>.pt",),
        generators=("G_a", "G_b"),
        read=read_generator_pair,
        architecture=functools.partial(architecture, "unit"),
        components={"enc": "encoder", "dec": "decoder"},
    ),
    "cyclegan": OfficialFormat(
        files=("latest_net_G_A.pth", "latest_net_G_B.pth"),
        generators=("G_ab", "G_ba"),
        read=read_state_dicts,
        architecture=resnet_architecture,
        components={"model": "model"},
    ),
    "cut": OfficialFormat(
        files=("latest_net_G.pth",),
        generators=("G",),
        read=read_state_dicts,
        architecture=cut_architecture,
        components={"model": "model"},
    ),
}


def convert(
    model: str, source: Path | Sequence[Path], output: Path, image_size: int, overrides: list[str]
) -> Path:
    """Write the i2i checkpoint of the official generator file(s) `source` (one path, or one per
    file of `FORMATS[model].files`, in that order) to the new file `output`; returns its path."""
    if output.exists():
        raise ConfigError("output", output, "exists; i2i-convert writes a new file: choose another path")
    official = FORMATS[model]
    sources = [source] if isinstance(source, Path) else list(source)
    if len(sources) != len(official.files):
        raise ConfigError("source", " ".join(map(str, sources)), f"{model} takes {' '.join(official.files)}")
    states = official.read(sources)
    GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="i2i.conf"):
        shape = [
            f"model={model}",
            "preset=paper",
            f"data.image_size={image_size}",
            *in_file(sources[0], official.architecture, states[0]),
        ]
        try:
            cfg = compose("train", overrides=[*shape, *overrides])
        except HydraException as error:  # an override that names no key or does not parse
            raise ConfigError("overrides", " ".join(overrides), str(error).splitlines()[0]) from error
    with open_dict(cfg):
        cfg.paths.output_dir = str(output.parent)
    check_config(cfg, TRAIN_VALUES)
    translator = build_model(cfg)
    # one file per generator (CycleGAN's), or one file holding them all (MUNIT's, UNIT's)
    files = sources if len(sources) == len(states) else sources * len(states)
    for name, state, file in zip(official.generators, states, files):
        generator = getattr(translator, name)
        generator.load_state_dict(in_file(file, convert_generator, official.components, state, generator))
    converted_from = str(sources[0]) if len(sources) == 1 else [str(path) for path in sources]
    checkpoint: dict[str, Any] = {
        "state_dict": translator.state_dict(),
        "hyper_parameters": OmegaConf.to_container(cfg, resolve=True),
        "i2i": {"iteration": 0, "converted_from": converted_from},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, output)
    return output


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `i2i-convert`."""
    parser = ArgumentParser(prog="i2i-convert", description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(FORMATS), help="the official code base the files come from")
    files = "; ".join(f"{name}: {' '.join(f.files)}" for name, f in FORMATS.items())
    parser.add_argument(
        "paths",
        nargs="+",
        help=f"the official generator file(s) ({files}), then the i2i checkpoint to write (for "
        "i2i-translate ckpt_path=), then any further config overrides, e.g. data.image_size=512",
    )
    parser.add_argument(
        "--image-size", type=int, default=256, help="the size the model was trained at (default 256)"
    )
    args = parser.parse_intermixed_args(argv)
    count = len(FORMATS[args.model].files)
    if len(args.paths) < count + 1:
        parser.error(f"{args.model} takes {' '.join(FORMATS[args.model].files)} and the checkpoint to write")
    sources, output, overrides = args.paths[:count], args.paths[count], args.paths[count + 1 :]
    with reporting_errors():
        written = convert(args.model, [Path(p) for p in sources], Path(output), args.image_size, overrides)
        print(f"wrote {written}")


if __name__ == "__main__":
    main()
