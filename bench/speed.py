"""`make bench [MODEL=<model>]`: training-iteration speed, memory and FLOPs of every model (issue 10).

For each model, at the `paper` width and batch 1, at a small size (64 px; U-GAT-IT light and LOMIT
128 px) and at the paper resolution:
- one training iteration through Lightning (the i2i spine) against a plain PyTorch loop doing the
  same updates on the same modules, optimizers and batch, interleaved in blocks in one process, so
  the spine overhead is a ratio measured under the same machine load (min and median reported);
- the variants fp32 NCHW, channels_last, bf16-mixed and torch.compile (the small size; compile
  for the models in COMPILED unless `--compile` names others);
- FLOPs per iteration (`torch.utils.flop_counter`), achieved GFLOP/s and the percentage of this
  machine's conv peak, measured in the same run with a fixed conv2d kernel (NCHW and channels_last);
- peak RSS (of a process per size, see `cases`) and inference inputs/s (every translation of one
  image-grid column, the model's `sample_rows` of one test input, under `torch.inference_mode`);
- the real-folder data pipeline's images/s against the model's consumption rate.
Results: `bench/results/speed_<model>.json` and a markdown table `bench/results/speed.md`
(printed). `--smoke` runs every code path at the tiny width (used by the test suite; no timing
is asserted anywhere).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from i2i.callbacks.run import StopAtIteration
from i2i.cli import source_commit
from i2i.errors import check_positive
from i2i.models.base import TranslationModule
from i2i.train import build_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: the resolution of each model's paper setting (research/results.md)
PAPER_SIZE = {
    "funit": 128,
    "funit_imaginaire": 128,
    "coco_funit": 128,
    "lomit": 128,
    "tunit": 128,
    "drit": 216,
}
#: the small setting (size, overrides) where it is not 64 px as given: U-GAT-IT's discriminators need
#: at least 96 px, so its small setting is the official reference's, light at 128 px
#: (research/reference_perf.md); LOMIT's (6 layers) need 128 px, its paper resolution
SMALL = {"ugatit": (128, ("model.generator.light=true",)), "lomit": (128, ())}
#: overrides of a quality recipe for every case: MUNIT's official configuration (the recipe adds the
#: style-augmented cycle, off in edges2shoes_folder.yaml), which the official code's time and memory
#: are measured at; TUNIT's iteration of the GAN phase (the guide, D and G), not the guide-only start;
#: DRIT's full iteration every time (two in three of its iterations update the content D alone, cheap
#: ones that would otherwise decide the median)
RECIPE_OVERRIDES = {
    "munit": ("loss.recon_x_cyc_w=0",),
    "tunit": ("model.separated=0",),
    "drit": ("model.full_update_every=1",),
}
#: the models `make bench` compiles by default (compiling takes minutes per model on the CPU, so one
#: in the full run); `--compile MODEL` or `--compile all` for others
COMPILED = ("cyclegan",)
# The size of `--smoke` cases: the smallest every model takes (MUNIT/UNIT's 3-scale discriminator
# needs 61 px, imaginaire's FUNIT discriminator 64 px).
SMOKE_SIZE = 64
# Models without a quality recipe of their own train on the scenario of their family's.
SCENARIO = {"funit_imaginaire": "shapes_fewshot"}
#: where everything is measured: the GPU when there is one, else the CPU
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
#: data workers of the Lightning side: on a GPU the synthetic images rendered in the main process
#: took most of an iteration (0.18 of 0.25 s at 256 px on an H100), so workers render them beside
#: the model; on the CPU they would take cores from the model being timed
DATA_WORKERS = min(8, len(os.sched_getaffinity(0))) if DEVICE.type == "cuda" else 0


def clock() -> float:
    """`time.perf_counter()` once the device has finished the work queued so far."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def native_bf16() -> bool:
    """Whether the device computes in bf16 natively (a CPU without bf16 instructions emulates it)."""
    if DEVICE.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def peak_memory_mib() -> dict[str, float]:
    """This process's peak RSS and, on a GPU, the peak memory allocated on it."""
    peak = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if DEVICE.type == "cuda":
        peak["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


@dataclass
class Timing:
    """Per-iteration seconds of the two sides of an interleaved comparison: Lightning and the other
    side (`other_name`: our plain loop in `make bench`, the official code in bench/official.py)."""

    other_name: str = "plain"
    lightning: list[float] = field(default_factory=list)
    other: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        out = {}
        for side, values in (("lightning", self.lightning), (self.other_name, self.other)):
            out[f"{side}_min"] = min(values)
            out[f"{side}_median"] = statistics.median(values)
        return out


def compose_case(model: str, image_size: int, smoke: bool, extra: Sequence[str] = ()) -> DictConfig:
    """The model's quality recipe (its scenario) at the paper width, batch 1, no callbacks or logger,
    then the `extra` overrides."""
    GlobalHydra.instance().clear()
    recipe = (
        [f"model={model}", f"data={SCENARIO[model]}"]
        if model in SCENARIO
        else [f"experiment=quality/{model}"]
    )
    overrides = [
        *recipe,
        "preset=tiny" if smoke else "preset=paper",
        f"data.image_size={image_size}",
        "data.batch_size=1",
        f"data.num_workers={0 if smoke else DATA_WORKERS}",
        "logger=[]",
        "callbacks=[]",
        *extra,
    ]
    with initialize_config_module(version_base="1.3", config_module="i2i.conf"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = tempfile.mkdtemp(prefix="i2i-speed-")
    return cfg


def plain_setup(model: TranslationModule) -> tuple[list[torch.optim.Optimizer], list[Any], list[str]]:
    """Optimizers and schedulers built from the model's own config, without Lightning."""
    configured = model.configure_optimizers()
    optimizers, schedulers = configured if isinstance(configured, tuple) else (configured, [])
    return optimizers, schedulers, list(model.optimizer_parameters())


def plain_iteration(
    model: TranslationModule,
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: list[Any],
    batch: dict[str, torch.Tensor],
    autocast: torch.dtype | None,
) -> None:
    """One iteration the way a hand-written PyTorch loop would do it: the passes the updates share,
    then each update freezes the other networks, computes its loss, back-propagates and steps; the
    schedulers step once."""

    def mixed_precision() -> torch.autocast:
        return torch.autocast(DEVICE.type, dtype=autocast, enabled=autocast is not None)

    carry: dict[str, torch.Tensor] = {}
    with mixed_precision():
        model.before_updates(batch, carry)
    for update in model.updates(model.iteration):
        model._train_only(update.optimizers)
        with mixed_precision():
            loss, _ = update.loss(batch, carry)
        for name in update.optimizers:
            optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        for name in update.optimizers:
            optimizers[name].step()
        if update.after_step is not None:
            update.after_step()
    model._train_only(list(optimizers))
    model.after_updates(batch, carry)
    for scheduler in schedulers:
        scheduler.step()
    model.iteration += 1


#: one iteration of the other side of an interleaved comparison, given the Lightning run's trainer,
#: module and latest batch
OtherSide = Callable[[pl.Trainer, TranslationModule, Any], None]


def plain_side(autocast: torch.dtype | None) -> OtherSide:
    """A plain iteration (`plain_iteration`) on the Lightning run's own modules, optimizers and batch."""

    def iteration(trainer: pl.Trainer, pl_module: TranslationModule, batch: Any) -> None:
        optimizers = dict(zip(pl_module._optimizer_names, trainer.optimizers))
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        plain_iteration(pl_module, optimizers, schedulers, pl_module._prepared(batch), autocast)

    return iteration


class Interleave(pl.Callback):
    """Times `iterations` Lightning iterations after `warmup` untimed ones and, after every `block`
    of the timed ones, runs `block` iterations of the other side (`other`).

    A Lightning iteration is timed from the end of the previous one to its own end, so the loop's
    work between batches (fetching the batch, the hooks) counts, the other side's blocks (run at
    the end of an iteration, after its time is taken) do not, and no extra iteration is needed to
    close the last one."""

    def __init__(
        self, block: int, warmup: int, iterations: int, other: OtherSide, other_name: str = "plain"
    ) -> None:
        check_positive("warmup", warmup)
        self.block, self.warmup, self.iterations, self.other = block, warmup, iterations, other
        self.timing = Timing(other_name)
        self._end: float | None = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: TranslationModule, batch: Any, *args: Any
    ) -> None:
        self._batch = batch

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: TranslationModule, *args: Any) -> None:
        timed = pl_module.iteration - self.warmup
        if timed > 0:
            self.timing.lightning.append(clock() - self._end)
            if timed % self.block == 0:
                iteration = pl_module.iteration
                for _ in range(self.block):
                    start = clock()
                    self.other(trainer, pl_module, self._batch)
                    self.timing.other.append(clock() - start)
                # the other side's iterations do not count towards the run length
                pl_module.iteration = iteration
        self._end = clock()


def compile_networks(model: TranslationModule) -> None:
    """torch.compile every direct child network of the model (the submodules holding parameters)."""
    for name, child in list(model.named_children()):
        if any(True for _ in child.parameters()):
            setattr(model, name, torch.compile(child))


@dataclass(frozen=True)
class Case:
    """One measurement of a model: the image size, the variant, the untimed `warmup` iterations (at
    least 1: the first, cold, is never timed), the timed `iterations` per side in blocks of `block`,
    the `overrides` of the model's config, and whether to `profile` (FLOPs and inference rate)."""

    image_size: int
    variant: str
    warmup: int
    iterations: int
    block: int
    overrides: tuple[str, ...] = ()
    profile: bool = False

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> "Case":
        return cls(**fields | {"overrides": tuple(fields["overrides"])})


def run_case(model_name: str, case: Case, smoke: bool) -> dict:
    """Everything measured for one case of a model in this process."""
    torch.manual_seed(0)
    cfg = compose_case(model_name, case.image_size, smoke, case.overrides)
    datamodule = instantiate(cfg.data, _convert_="all")
    model = build_model(cfg)
    model.channels_last = case.variant == "channels_last"
    autocast = torch.bfloat16 if case.variant == "bf16" else None
    if case.variant == "compile":
        compile_networks(model)
    interleave = Interleave(case.block, case.warmup, case.iterations, plain_side(autocast))
    trainer = timing_trainer(interleave, "bf16-mixed" if case.variant == "bf16" else "32-true")
    trainer.fit(model, datamodule=datamodule)
    result: dict[str, Any] = {"model": model_name} | asdict(case)
    result |= interleave.timing.summary()
    result["overhead_median"] = result["lightning_median"] / result["plain_median"] - 1
    result["overhead_min"] = result["lightning_min"] / result["plain_min"] - 1
    if case.profile:
        result["flops_per_iteration"] = count_flops(model, trainer, interleave._batch)
        result["gflops_per_s"] = result["flops_per_iteration"] / result["lightning_median"] / 1e9
        result["inference_inputs_per_s"] = inference_rate(
            model, datamodule.sample_inputs(1), 2 if smoke else 10
        )
    return result


def run_cases(model_name: str, cases: Sequence[Case], smoke: bool) -> Iterator[dict]:
    """The cases of one process, in order; the first one's row carries the process's peak memory
    (the later ones' would include it)."""
    for index, case in enumerate(cases):
        yield run_case(model_name, case, smoke) | (peak_memory_mib() if index == 0 else {})


def timing_trainer(
    interleave: Interleave, precision: str, callbacks: Sequence[pl.Callback] = ()
) -> pl.Trainer:
    """A Lightning trainer on DEVICE that runs the iterations `interleave` times and nothing else (no
    logger, checkpoint, progress bar or validation) but the given `callbacks`."""
    return pl.Trainer(
        accelerator=DEVICE.type,
        devices=1,
        precision=precision,
        max_steps=-1,
        max_epochs=-1,
        callbacks=[StopAtIteration(interleave.warmup + interleave.iterations), interleave, *callbacks],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )


class FlopCount(TorchDispatchMode):
    """FLOPs by `torch.utils.flop_counter`'s formulas, without `FlopCounterMode`'s module tracker,
    whose backward hooks break `torch.autograd.grad` on leaf inputs (R1 and WGAN-GP penalties)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(model: TranslationModule, trainer: pl.Trainer, batch: dict[str, torch.Tensor]) -> float:
    """FLOPs of one plain iteration (conv, conv backward and matmuls; norms and pointwise count 0)."""
    optimizers = dict(zip(model._optimizer_names, trainer.optimizers))
    counter = FlopCount()
    iteration = model.iteration
    with counter:
        plain_iteration(model, optimizers, [], model._prepared(batch), None)
    model.iteration = iteration
    return float(counter.total)


@torch.inference_mode()
def inference_rate(model: TranslationModule, inputs: dict[str, torch.Tensor], repeats: int) -> float:
    """Test inputs per second through `sample_rows` (every translation of one image-grid column)."""
    model.eval()
    inputs = model._prepared({name: value.to(model.device) for name, value in inputs.items()})
    model.sample_rows(inputs)
    start = clock()
    for _ in range(repeats):
        model.sample_rows(inputs)
    model.train()
    return repeats / (clock() - start)


def conv_peak(repeats: int) -> dict[str, float]:
    """GFLOP/s of a fixed conv2d (batch 8, 64->64 channels, 3x3, 64x64), NCHW and channels_last: the
    machine's reference peak measured in this run (research/reference_perf.md uses the same kernel)."""
    x = torch.randn(8, 64, 64, 64, device=DEVICE)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, device=DEVICE)
    flops = 2 * 8 * 64 * 64 * 64 * 64 * 9
    out = {}
    with torch.inference_mode():
        for layout, memory_format in (
            ("nchw", torch.contiguous_format),
            ("channels_last", torch.channels_last),
        ):
            xi, ci = x.contiguous(memory_format=memory_format), conv.to(memory_format=memory_format)
            ci(xi)
            times = []
            for _ in range(repeats):
                start = clock()
                ci(xi)
                times.append(clock() - start)
            out[f"conv_peak_gflops_{layout}"] = flops / statistics.median(times) / 1e9
    return out


def data_pipeline_rate(batches: int, num_workers: int) -> float:
    """Images/s of the real-folder datamodule with CycleGAN's transforms (286 -> crop 256 -> flip)
    over generated 400x300 JPEGs."""
    from i2i.data.datamodule import UnpairedDataModule
    from i2i.data.folder import UnpairedFolders

    with tempfile.TemporaryDirectory() as root:
        rng = np.random.default_rng(0)
        for split in ("trainA", "trainB", "testA", "testB"):
            (Path(root) / split).mkdir()
            for i in range(16):
                pixels = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(Path(root) / split / f"{i}.jpg", quality=90)
        data = UnpairedDataModule(
            domains=UnpairedFolders(root=root, load_size=286, crop_size=256),
            image_size=256,
            batch_size=1,
            num_workers=num_workers,
        )
        data.setup()
        loader = data.train_dataloader()
        iterator = iter(loader)
        next(iterator)
        start = time.perf_counter()
        seen = 0
        while seen < batches:
            for _batch in iterator:
                seen += 1
                if seen == batches:
                    break
            iterator = iter(loader)
        return 2 * batches / (time.perf_counter() - start)  # each batch holds an A and a B image


def model_names() -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))


def cases(model: str, smoke: bool, compiled: Sequence[str], bf16: bool) -> list[list[Case]]:
    """What `make bench` measures of a model, as the cases of each process: the small size's
    variants in one (its first, fp32, gets the peak memory), the paper resolution (where it is not
    the small size) in its own.

    The iteration counts fit the full run of every model in 30 min on the 2-core CPU: the spine
    overhead gets the most timed iterations, the variants fewer, the paper resolution one per
    side; torch.compile (minutes of compilation per model) runs for the models in `compiled`, and
    bf16 where the device computes it natively or `bf16` asks for it (on a CPU without bf16
    instructions autocast emulates it, about 10x slower than fp32)."""
    if smoke:
        return [
            [Case(SMOKE_SIZE, "fp32", 1, 2, 1, profile=True)],
            [Case(SMOKE_SIZE, "channels_last", 1, 1, 1), Case(SMOKE_SIZE, "bf16", 1, 1, 1)],
        ]
    size, small_overrides = SMALL.get(model, (64, ()))
    recipe_overrides = RECIPE_OVERRIDES.get(model, ())
    overrides = recipe_overrides + small_overrides
    small = [
        Case(size, "fp32", 2, 4, 2, overrides, profile=True),
        Case(size, "channels_last", 1, 2, 1, overrides),
    ]
    if bf16:
        small.append(Case(size, "bf16", 1, 1, 1, overrides))
    if model in compiled:
        small.append(Case(size, "compile", 1, 2, 1, overrides))
    paper = PAPER_SIZE.get(model, 256)
    if paper == size:
        return [small]
    return [small, [Case(paper, "fp32", 1, 1, 1, recipe_overrides)]]


def run_in_subprocess(model: str, cases: Sequence[Case], smoke: bool) -> list[dict]:
    """The cases in a fresh process (so the peak memory is theirs); a failure is reported, not
    raised: the process's last lines of output in the row of each case it did not finish (so the
    cases that can fail, torch.compile, come last)."""
    command = [sys.executable, "-m", "bench.speed", "--model", model]
    command += ["--cases", json.dumps([asdict(case) for case in cases])] + (["--smoke"] if smoke else [])
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    seconds = (time.perf_counter() - start) / len(cases)
    rows = [row | {"case_seconds": seconds} for row in rows]
    if len(rows) < len(cases):
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        rows += [{"model": model} | asdict(case) | {"error": " | ".join(tail)} for case in cases[len(rows) :]]
    return rows


def peak_memory_cell(row: dict) -> str:
    if "peak_rss_mib" not in row:
        return "(in the process above)"
    gpu = f" (GPU {row['peak_gpu_mib']:.0f})" if "peak_gpu_mib" in row else ""
    return f"{row['peak_rss_mib']:.0f}{gpu}"


def markdown(rows: list[dict], machine: dict[str, Any]) -> str:
    peak = machine["conv_peak_gflops_nchw"]
    lines = [
        (
            "| model | px | variant | timed its | lightning s/it median (min) | plain s/it median (min)"
            " | spine overhead | GFLOP/iter | GFLOP/s | % conv peak | peak RSS MiB | translate img/s |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        model = " ".join([r["model"], *(f"({override})" for override in r.get("overrides", ()))])
        cells = [model, str(r["image_size"]), r["variant"], str(r["iterations"])]
        if "error" in r:
            lines.append("| " + " | ".join(cells + [f"failed: {r['error']}"] + [""] * 7) + " |")
            continue
        flops = r.get("flops_per_iteration")
        cells += [
            f"{r['lightning_median']:.3f} ({r['lightning_min']:.3f})",
            f"{r['plain_median']:.3f} ({r['plain_min']:.3f})",
            f"{100 * r['overhead_median']:+.1f}%",
            f"{flops / 1e9:.1f}" if flops else "",
            f"{r['gflops_per_s']:.1f}" if flops else "",
            f"{100 * r['gflops_per_s'] / peak:.0f}%" if flops else "",
            peak_memory_cell(r),
            f"{r['inference_inputs_per_s']:.1f}" if "inference_inputs_per_s" in r else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    machine_line = ", ".join(
        f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in machine.items()
    )
    text = "\n".join(lines) + f"\n\nMachine, same run: {machine_line}\n"
    if any(r["iterations"] == 1 for r in rows):
        text += (
            "\nRows with 1 timed iteration per side (the paper resolution) are single readings, timed"
            " on the second iteration of the run: their overhead column is no measure of the spine's.\n"
        )
    if not any(r["variant"] == "bf16" for r in rows):
        text += (
            f"\nbf16-mixed not timed: {machine['device']} has no native bf16 (autocast would emulate it,"
            " about 10x slower than fp32); `make bench BF16=1` times it anyway.\n"
        )
    timed = [r for r in rows if "error" not in r]
    if "data_images_per_s" in machine and timed:
        fastest = min(timed, key=lambda r: r["lightning_min"])
        # an unpaired iteration at batch 1 reads an A and a B image
        consumed = 2 / fastest["lightning_min"]
        text += (
            f"\nData pipeline: {machine['data_images_per_s']:.1f} images/s; the fastest case here "
            f"({fastest['model']} {fastest['image_size']} px {fastest['variant']}) consumes "
            f"{consumed:.1f} images/s (x{machine['data_images_per_s'] / consumed:.0f} headroom).\n"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a model (repeatable); default: every model")
    parser.add_argument(
        "--compile",
        action="append",
        help=f"a model to torch.compile (repeatable, or `all`); default: {', '.join(COMPILED)}",
    )
    parser.add_argument("--bf16", action="store_true", help="time bf16-mixed even where it is emulated")
    parser.add_argument("--smoke", action="store_true", help="every code path at 64 px, tiny width")
    parser.add_argument("--cases", help=argparse.SUPPRESS)  # the cases of this (child) process
    args = parser.parse_args()
    if args.cases:
        for row in run_cases(args.model[0], [Case.from_dict(c) for c in json.loads(args.cases)], args.smoke):
            print(json.dumps(row), flush=True)
        return
    models = args.model or model_names()
    compiled = args.compile or COMPILED
    compiled = models if "all" in compiled else compiled
    bf16 = args.bf16 or native_bf16()
    start = time.perf_counter()
    machine: dict[str, Any] = {"device": str(DEVICE), "native_bf16": native_bf16()}
    machine |= conv_peak(3 if args.smoke else 20)
    rows = []
    for model in models:
        model_rows = [
            row
            for process in cases(model, args.smoke, compiled, bf16)
            for row in run_in_subprocess(model, process, args.smoke)
        ]
        rows += model_rows
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"speed_{model}.json").write_text(json.dumps(model_rows, indent=2) + "\n")
    machine |= {f"end_{k}": v for k, v in conv_peak(3 if args.smoke else 20).items()}
    machine["data_images_per_s"] = data_pipeline_rate(
        4 if args.smoke else 64, num_workers=0 if args.smoke else 2
    )
    machine["total_minutes"] = (time.perf_counter() - start) / 60
    table = markdown(rows, machine)
    (RESULTS / "speed.md").write_text(table)
    (RESULTS / "speed_machine.json").write_text(
        json.dumps({**machine, "commit": source_commit(), "threads": torch.get_num_threads()}, indent=2)
        + "\n"
    )
    print(table)


if __name__ == "__main__":
    main()
