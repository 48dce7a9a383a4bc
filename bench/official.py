"""`make bench-official MODEL=<model> OFFICIAL=<checkout>`: our training iteration against the official
code's, interleaved in one process so the speedup is a ratio measured under the same machine load (issue 10).

Not run in CI and nothing official is in this repository: `--official` is the path of a checkout made
elsewhere (NVlabs/MUNIT, mingyuliutw/UNIT, NVlabs/FUNIT, znxlwm/UGATIT-pytorch, or the CycleGAN files
of junyanz/pytorch-CycleGAN-and-pix2pix, taesungp/contrastive-unpaired-translation), imported from there
at run time.

Protocol (research/reference_perf.md): batch 1, fp32, this machine's threads, the official default
config and ours at the paper width (`bench/speed.py`'s `compose_case`, with `our_overrides`
giving the official configuration where our quality recipe departs from it). Ours is the Lightning
iteration, timed from one iteration's start to the next one's, so it includes our data pipeline (the
recipe's synthetic data, no workers);
the official side is its own train-loop body on fixed random inputs in [-1, 1]:
- MUNIT / UNIT: `update_learning_rate(); dis_update(x_a, x_b, config); gen_update(x_a, x_b, config)`
  with `configs/edges2shoes_folder.yaml` / `configs/unit_edges2shoes_folder.yaml`;
- FUNIT: `dis_update(co, cl, config); gen_update(co, cl, config, False)` with
  `configs/funit_animals.yaml` and random labels in [0, num_classes); its `gen_update` includes the
  generator's weight average, so ours runs its EMA callback from the first iteration too;
- U-GAT-IT: one step of `UGATIT.train()` with the args of `main.parse_args()` given only `--device cpu
  --light --img_size`; its discriminators need at least 96 px, so it runs at 128 px by default;
- CycleGAN: `set_input(data); optimize_parameters()` with the default train options.
- CUT / FastCUT: `set_input(data); optimize_parameters()` with the default train options and
  `--CUT_mode CUT` / `FastCUT`, after the `data_dependent_initialize(data)` that builds its F.
Each side runs `--warmup` untimed iterations (2), then blocks of `--block` iterations alternate
(`bench.speed.Interleave`) until each side has `--iterations` timed ones. The speedup is
official / ours, of the medians and of the minima. The parameters each side's optimizers train are
counted, so a config mismatch is visible (FUNIT's differ by design: its discriminator has one output
per training class, 12 in our synthetic recipe and 119 in funit_animals.yaml). Results:
`bench/results/official_<model>.json` and a markdown row (printed).

The official code predates current torch and PyYAML; `shim_old_apis` patches the process, not the
checkout: `.cuda()` returns self (the code calls it unconditionally, we run on CPU), the removed
`torch.utils.serialization.load_lua` is stubbed (MUNIT/UNIT import it for the Lua VGG, unused with
their `vgg_w: 0`), and `cv2` is stubbed when absent (U-GAT-IT imports it only to write image grids).
"""

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from hydra.utils import instantiate
from PIL import Image

from bench.speed import RECIPE_OVERRIDES, RESULTS, Interleave, compose_case, timing_trainer
from i2i.cli import source_commit
from i2i.train import build_model


@dataclass(frozen=True)
class Official:
    """Where a model's official code lives and the files that mark a checkout of it."""

    repo: str
    markers: tuple[str, ...]
    default_size: int = 64


OFFICIAL = {
    "munit": Official("NVlabs/MUNIT", ("trainer.py", "networks.py", "configs/edges2shoes_folder.yaml")),
    "unit": Official(
        "mingyuliutw/UNIT", ("trainer.py", "networks.py", "configs/unit_edges2shoes_folder.yaml")
    ),
    "funit": Official("NVlabs/FUNIT", ("trainer.py", "funit_model.py", "configs/funit_animals.yaml")),
    "ugatit": Official("znxlwm/UGATIT-pytorch", ("UGATIT.py", "main.py", "networks.py"), default_size=128),
    "cyclegan": Official(
        "junyanz/pytorch-CycleGAN-and-pix2pix",
        ("models/cycle_gan_model.py", "models/networks.py", "options/train_options.py"),
    ),
    **{
        model: Official(
            "taesungp/contrastive-unpaired-translation",
            ("models/cut_model.py", "models/patchnce.py", "options/train_options.py"),
        )
        for model in ("cut", "fastcut")
    },
}


def our_overrides(model: str, full: bool) -> list[str]:
    """Ours with the official configuration where the quality recipe departs from it: MUNIT without
    the style-augmented cycle (on in our recipe, off in edges2shoes_folder.yaml); U-GAT-IT light (or
    full) with discriminators of the same depth at every size (ours drop a layer per halving below
    256 px by default)."""
    if model != "ugatit":
        return list(RECIPE_OVERRIDES.get(model, ()))
    return [
        f"model.generator.light={str(not full).lower()}",
        "model.discriminator_global.reference_size=null",
        "model.discriminator_local.reference_size=null",
    ]


class NotACheckout(ValueError):
    """`--official` does not hold the expected official repository."""


def check_checkout(model: str, path: Path) -> None:
    official = OFFICIAL[model]
    missing = [marker for marker in official.markers if not (path / marker).is_file()]
    if missing:
        raise NotACheckout(
            f"--official {path} is not a checkout of {official.repo} (no {missing[0]}); clone "
            f"https://github.com/{official.repo} outside this repository and pass its path"
        )


def shim_old_apis() -> None:
    """Let the official code run on this torch, on CPU (see the module docstring)."""
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    serialization = types.ModuleType("torch.utils.serialization")
    serialization.load_lua = None
    sys.modules.setdefault("torch.utils.serialization", serialization)
    try:
        import cv2  # noqa: F401
    except ImportError:
        sys.modules["cv2"] = types.ModuleType("cv2")


@dataclass
class OfficialSide:
    """One official training iteration and the number of parameters its optimizers train."""

    iteration: Callable[[], None]
    trained_parameters: int


def trained_parameters(optimizers: list[torch.optim.Optimizer]) -> int:
    params = {
        id(p): p for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]
    }
    return sum(p.numel() for p in params.values())


def images(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A and B inputs of batch 1 in [-1, 1], the official loaders' range."""
    return tuple(torch.rand(1, 3, image_size, image_size) * 2 - 1 for _ in range(2))


def munit_or_unit(checkout: Path, image_size: int, model: str) -> OfficialSide:
    import trainer

    name = "edges2shoes_folder" if model == "munit" else "unit_edges2shoes_folder"
    # the repo's get_config calls yaml.load without a Loader, which PyYAML 6 rejects
    config = yaml.safe_load((checkout / "configs" / f"{name}.yaml").read_text())
    config["vgg_model_path"] = tempfile.mkdtemp(prefix="i2i-official-")  # as train.py sets it
    official = (trainer.MUNIT_Trainer if model == "munit" else trainer.UNIT_Trainer)(config)
    x_a, x_b = images(image_size)

    def iteration() -> None:
        official.update_learning_rate()
        official.dis_update(x_a, x_b, config)
        official.gen_update(x_a, x_b, config)

    return OfficialSide(iteration, trained_parameters([official.dis_opt, official.gen_opt]))


def funit(checkout: Path, image_size: int) -> OfficialSide:
    from trainer import Trainer
    from utils import get_config

    config = get_config(str(checkout / "configs" / "funit_animals.yaml"))
    official = Trainer(config)
    (x_content, x_class), labels = images(image_size), torch.randint(0, config["dis"]["num_classes"], (2,))
    content, style = (x_content, labels[:1]), (x_class, labels[1:])

    def iteration() -> None:
        official.dis_update(content, style, config)
        official.gen_update(content, style, config, False)

    return OfficialSide(iteration, trained_parameters([official.dis_opt, official.gen_opt]))


class RepeatBatch:
    """A loader whose iterator yields one batch forever, with the Python 2 `.next()` the U-GAT-IT
    loop calls."""

    def __init__(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.batch = batch

    def __iter__(self) -> "RepeatBatch":
        return self

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batch

    __next__ = next


def ugatit(checkout: Path, image_size: int, full: bool) -> OfficialSide:
    from main import parse_args
    from UGATIT import UGATIT

    # parse_args creates results/ and build_model reads dataset/<name>/{trainA,...} under the working
    # directory: both go to a temporary one, with one image per folder for the loaders we then replace
    workdir = Path(tempfile.mkdtemp(prefix="i2i-official-"))
    for split in ("trainA", "trainB", "testA", "testB"):
        (workdir / "dataset" / "YOUR_DATASET_NAME" / split).mkdir(parents=True)
        Image.new("RGB", (image_size, image_size)).save(
            workdir / "dataset" / "YOUR_DATASET_NAME" / split / "0.png"
        )
    argv, cwd = sys.argv, os.getcwd()
    sys.argv = ["main.py", "--device", "cpu", "--light", str(not full), "--img_size", str(image_size)]
    os.chdir(workdir)
    try:
        official = UGATIT(parse_args())
        official.build_model()
    finally:
        sys.argv = argv
        os.chdir(cwd)
    labels = torch.zeros(1, dtype=torch.long)
    x_a, x_b = images(image_size)
    official.trainA_loader, official.trainB_loader = RepeatBatch((x_a, labels)), RepeatBatch((x_b, labels))
    # One call of train() runs steps 1..iteration. Its learning-rate decay starts after half of the
    # official 1M iterations, so it is off here as in the first 500k official steps.
    official.iteration, official.decay_flag = 1, False

    return OfficialSide(official.train, trained_parameters([official.G_optim, official.D_optim]))


def cyclegan(checkout: Path, image_size: int) -> OfficialSide:
    from models.cycle_gan_model import CycleGANModel
    from options.train_options import TrainOptions

    # TrainOptions.parse (it also imports the dataset package) reduced to its defaults, on CPU
    parser = TrainOptions().initialize(argparse.ArgumentParser())
    parser = CycleGANModel.modify_commandline_options(parser, is_train=True)
    opt = parser.parse_args(["--dataroot", "unused"])
    opt.isTrain, opt.gpu_ids = True, []
    official = CycleGANModel(opt)
    x_a, x_b = images(image_size)
    data = {"A": x_a, "B": x_b, "A_paths": ["a.png"], "B_paths": ["b.png"]}

    def iteration() -> None:
        official.set_input(data)
        official.optimize_parameters()

    return OfficialSide(iteration, trained_parameters(official.optimizers))


def cut(image_size: int, mode: str) -> OfficialSide:
    from models.cut_model import CUTModel
    from options.train_options import TrainOptions

    # TrainOptions.parse reduced to its defaults, on CPU; the CUT options read --CUT_mode from sys.argv
    argv = sys.argv
    sys.argv = ["train.py", "--dataroot", "unused", "--CUT_mode", mode]
    try:
        parser = TrainOptions().initialize(argparse.ArgumentParser())
        parser = CUTModel.modify_commandline_options(parser, is_train=True)
        opt = parser.parse_args(sys.argv[1:])
    finally:
        sys.argv = argv
    opt.isTrain, opt.gpu_ids = True, []
    official = CUTModel(opt)
    x_a, x_b = images(image_size)
    data = {"A": x_a, "B": x_b, "A_paths": ["a.png"], "B_paths": ["b.png"]}
    official.data_dependent_initialize(data)

    def iteration() -> None:
        official.set_input(data)
        official.optimize_parameters()

    return OfficialSide(iteration, trained_parameters(official.optimizers))


def official_side(model: str, checkout: Path, image_size: int, full: bool) -> OfficialSide:
    """The official trainer of `model`, built from `checkout` with its default config."""
    shim_old_apis()
    sys.path.insert(0, str(checkout))
    with contextlib.redirect_stdout(io.StringIO()):
        if model in ("munit", "unit"):
            return munit_or_unit(checkout, image_size, model)
        if model == "funit":
            return funit(checkout, image_size)
        if model == "ugatit":
            return ugatit(checkout, image_size, full)
        if model in ("cut", "fastcut"):
            return cut(image_size, "CUT" if model == "cut" else "FastCUT")
        return cyclegan(checkout, image_size)


def quietly(iteration: Callable[[], None]) -> Callable[..., None]:
    """The official iteration as an `Interleave` side, its per-iteration prints discarded."""

    def side(*_: Any) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            iteration()

    return side


def checkout_commit(checkout: Path) -> str | None:
    command = ["git", "-C", str(checkout), "rev-parse", "HEAD"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def compare(
    model: str, checkout: Path, image_size: int, iterations: int, block: int, warmup: int, full: bool
) -> dict:
    """Ours through Lightning against the official iteration, interleaved in this process."""
    torch.manual_seed(0)
    official = official_side(model, checkout, image_size, full)
    side = quietly(official.iteration)
    for _ in range(warmup):
        side()
    cfg = compose_case(model, image_size, smoke=False, extra=our_overrides(model, full))
    datamodule = instantiate(cfg.data, _convert_="all")
    ours = build_model(cfg)
    interleave = Interleave(block, warmup, iterations, side, other_name="official")
    # the official FUNIT gen_update ends with the generator's weight average, from the first iteration
    averaging = [instantiate(cfg.callbacks.ema, start_iteration=0)] if model == "funit" else []
    trainer = timing_trainer(interleave, "32-true", averaging)
    trainer.fit(ours, datamodule=datamodule)
    result: dict[str, Any] = {"model": model, "image_size": image_size, "batch": 1, "precision": "fp32"}
    if model == "ugatit":
        result["variant"] = "full" if full else "light"
    result |= interleave.timing.summary()
    result["speedup_median"] = result["official_median"] / result["lightning_median"]
    result["speedup_min"] = result["official_min"] / result["lightning_min"]
    result["ours_trained_parameters"] = trained_parameters(trainer.optimizers)
    result["official_trained_parameters"] = official.trained_parameters
    result |= {"official_repo": OFFICIAL[model].repo, "official_commit": checkout_commit(checkout)}
    result |= {"commit": source_commit(), "threads": torch.get_num_threads(), "iterations": iterations}
    return result


def markdown_row(r: dict) -> str:
    name = f"{r['model']} ({r['variant']})" if "variant" in r else r["model"]
    same = "same" if r["ours_trained_parameters"] == r["official_trained_parameters"] else "DIFFER"
    cells = [
        name,
        str(r["image_size"]),
        f"{r['lightning_median']:.3f} ({r['lightning_min']:.3f})",
        f"{r['official_median']:.3f} ({r['official_min']:.3f})",
        f"{r['speedup_median']:.2f}x ({r['speedup_min']:.2f}x)",
        f"{r['ours_trained_parameters']:,} / {r['official_trained_parameters']:,} ({same})",
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| model | px | ours s/it median (min) | official s/it median (min) | speedup median (min) "
    "| trained params ours / official |\n"
    "|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(OFFICIAL))
    parser.add_argument(
        "--official", required=True, type=Path, help="path of a checkout of the official repo"
    )
    parser.add_argument("--image-size", type=int, help="default 64 (U-GAT-IT: 128)")
    parser.add_argument("--iterations", type=int, default=7, help="timed iterations per side")
    parser.add_argument("--block", type=int, default=1, help="iterations per interleaved block")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations per side")
    parser.add_argument("--full", action="store_true", help="U-GAT-IT full instead of light")
    args = parser.parse_args()
    checkout = args.official.expanduser().resolve()
    try:
        check_checkout(args.model, checkout)
    except NotACheckout as error:
        parser.error(str(error))
    size = args.image_size or OFFICIAL[args.model].default_size
    result = compare(args.model, checkout, size, args.iterations, args.block, args.warmup, args.full)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "_full" if args.full else ""
    (RESULTS / f"official_{args.model}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(HEADER)
    print(markdown_row(result))


if __name__ == "__main__":
    main()
