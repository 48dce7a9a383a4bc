"""Bad inputs to every command-line tool: each is refused with exit status 2 and exactly one `error:`
line on stderr naming the key or file, never a traceback, and no file that existed before changes.

One table of cases across the six CLIs. Each case runs in its own folder holding a copy of one tiny
trained run (shared by the session), a folder of input images, a CycleGAN-layout data folder and
whatever bad files the case writes; every file in it is hashed before and after. The CLIs run
in-process (the Hydra ones through their console `main` with `sys.argv` set, the argparse ones with
their argument list); `test_console_scripts_report_like_the_in_process_runs` checks that the real
console scripts print the same.
"""

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST, FAST_SHAPES
from hydra.core.global_hydra import GlobalHydra
from PIL import Image
from test_data import png_claiming

from i2i import compare, convert, evaluate, train, translate
from i2i.data import download

# The shared run: CycleGAN, two iterations on 32 px shapes, narrow enough that a copy per case is cheap.
TINY_RUN = [
    "model=cyclegan",
    "model.pool_size=0",
    "model.generator.ngf=4",
    "model.generator.n_blocks=1",
    "model.discriminator.ndf=4",
    *FAST,
    "trainer.max_steps=2",
    "data.image_size=32",
    "~callbacks.image_grid",
    "~callbacks.synthetic_metrics",
    "hydra.run.dir={tmp}/new_run",
]
TINY_CYCLEGAN = [*TINY_RUN[:-1], *FAST_SHAPES]
TRAIN = [*TINY_RUN, *FAST_SHAPES]
FOLDER = [*TINY_RUN, "data=folder", "data.domains.load_size=32", "data.num_workers=0"]
FOLDER_DATA = [*FOLDER, "data.domains.root={data}"]
BOXES = [*FOLDER_DATA, "data.domains.boxes=true"]
INSTANCES = ["data=shapes_instances"]
TRANSLATE = ["ckpt_path={ckpt}", "input_dir={images}", "output_dir={tmp}/translated"]
EVAL = ["ckpt_path={ckpt}", "output={tmp}/eval.json", "n_images=2", "metrics.extractor=proxy"]
MARKER = "pwned.txt"  # what a hostile file tries to write; it must never appear
BOMB = png_claiming(30000, 30000)


def write_png(path: Path, size: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(len(path.name)).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def coco(annotations: list[dict]) -> bytes:
    """A COCO-style file listing the data folder's 0.png and 1.png (40 px) with `annotations`."""
    images = [{"id": i, "file_name": f"{i}.png", "width": 40, "height": 40} for i in range(2)]
    return json.dumps({"images": images, "annotations": annotations}).encode()


def truncated(tmp: Path, name: str) -> None:
    data = (tmp / "run/checkpoints/last.ckpt").read_bytes()
    (tmp / name).write_bytes(data[: len(data) // 2])


class Payload:
    """Unpickling this writes the marker: what a pickled (not weights-only) checkpoint can do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def pickled(tmp: Path, name: str) -> None:
    (tmp / name).write_bytes(pickle.dumps({"state_dict": Payload(tmp / MARKER)}))


def hostile_checkpoint(tmp: Path, name: str) -> None:
    """The trained checkpoint with a run config whose model target writes the marker when built."""
    checkpoint = torch.load(tmp / "run/checkpoints/last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["model"]["generator"] = {
        "_target_": "pathlib.Path.write_text",
        "self": str(tmp / MARKER),
        "data": "pwned",
    }
    torch.save(checkpoint, tmp / name)


def write_file(relative: str, content: bytes) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp / relative).write_bytes(content)

    return write


def run_with(relative: str, content: bytes) -> Callable[[Path], None]:
    """A run folder holding the shared run's files, with `relative` replaced by `content`."""

    def write(tmp: Path) -> None:
        shutil.copytree(tmp / "run", tmp / "bad_run")
        write_file(f"bad_run/{relative}", content)(tmp)

    return write


@dataclass(frozen=True)
class Case:
    """One bad input: `cli`'s arguments ({tmp}, {ckpt}, {images}, {data} filled in per case), the text
    the error line must contain, and what to write into the case's folder first."""

    id: str
    cli: str
    args: list[str]
    names: str
    setup: Callable[[Path], None] | None = None


CASES = [
    # i2i-train: wrong types and ranges, named by the key typed, before anything is built
    Case("train-seed-abc", "train", [*TRAIN, "seed=abc"], "seed='abc'"),
    Case("train-seed-float", "train", [*TRAIN, "seed=1.5"], "seed=1.5"),
    Case("train-seed-negative", "train", [*TRAIN, "seed=-5"], "seed=-5"),
    Case("train-max-steps-abc", "train", [*TRAIN, "trainer.max_steps=abc"], "trainer.max_steps='abc'"),
    Case("train-max-steps-zero", "train", [*TRAIN, "trainer.max_steps=0"], "trainer.max_steps=0"),
    Case("train-max-steps-fraction", "train", [*TRAIN, "trainer.max_steps=1.5"], "trainer.max_steps=1.5"),
    Case("train-max-steps-negative", "train", [*TRAIN, "trainer.max_steps=-3"], "trainer.max_steps=-3"),
    Case("train-loss-weight-abc", "train", [*TRAIN, "loss.cycle_w=abc"], "loss.cycle_w='abc'"),
    Case("train-loss-weight-negative", "train", [*TRAIN, "loss.identity_w=-1"], "loss.identity_w=-1"),
    Case(
        "train-lr-negative",
        "train",
        [*TRAIN, "model.optimizers.generator.lr=-1"],
        "model.optimizers.generator.lr=-1",
    ),
    Case(
        "train-lr-abc",
        "train",
        [*TRAIN, "model.optimizers.discriminator.lr=abc"],
        "model.optimizers.discriminator.lr",
    ),
    Case("train-num-workers-negative", "train", [*TRAIN, "data.num_workers=-1"], "data.num_workers=-1"),
    Case("train-batch-size-zero", "train", [*TRAIN, "data.batch_size=0"], "data.batch_size=0"),
    Case("train-batch-size-abc", "train", [*TRAIN, "data.batch_size=abc"], "data.batch_size='abc'"),
    Case("train-image-size-not-multiple", "train", [*TRAIN, "data.image_size=40"], "data.image_size=40"),
    Case("train-num-train-zero", "train", [*TRAIN, "data.domains.num_train=0"], "data.domains.num_train=0"),
    Case("train-no-blocks", "train", [*TRAIN, "model.generator.n_blocks=-1"], "model.generator.n_blocks=-1"),
    Case("train-width-zero", "train", [*TRAIN, "model.generator.ngf=0"], "model.generator.ngf=0"),
    Case("train-pool-negative", "train", [*TRAIN, "model.pool_size=-3"], "model.pool_size=-3"),
    Case(
        "train-keep-every-zero",
        "train",
        [*TRAIN, "callbacks.checkpoint.keep_every=0"],
        "callbacks.checkpoint.keep_every=0",
    ),
    Case(
        "train-keep-every-between-saves",
        "train",
        [*TRAIN, "callbacks.checkpoint.every_n_iterations=4", "callbacks.checkpoint.keep_every=6"],
        "callbacks.checkpoint.keep_every=6",
    ),
    Case(
        "train-cadence-zero",
        "train",
        [*TRAIN, "callbacks.checkpoint.every_n_iterations=0"],
        "callbacks.checkpoint.every_n_iterations=0",
    ),
    Case(
        "train-cadence-fraction",
        "train",
        [*TRAIN, "callbacks.checkpoint.every_n_iterations=1.5"],
        "every_n_iterations=1.5",
    ),
    Case(
        "train-decay-from-abc",
        "train",
        [*TRAIN, "model.scheduler.lr_lambda.decay_from=abc"],
        "decay_from='abc'",
    ),
    Case(
        "train-decay-from-out-of-range",
        "train",
        [*TRAIN, "model.scheduler.lr_lambda.decay_from=2"],
        "decay_from=2",
    ),
    Case(
        "train-gradient-clip-negative",
        "train",
        [*TRAIN, "model.gradient_clip_val=-1"],
        "model.gradient_clip_val=-1",
    ),
    Case("train-nonfinite-policy", "train", [*TRAIN, "model.nonfinite=abc"], "model.nonfinite='abc'"),
    Case("train-precision", "train", [*TRAIN, "trainer.precision=abc"], "trainer"),
    Case("train-devices", "train", [*TRAIN, "trainer.devices=abc"], "trainer"),
    # i2i-train: refused by the config schema while composing (i2i.schema), naming the key typed
    Case("train-batch-size-fraction", "train", [*TRAIN, "data.batch_size=1.5"], "data.batch_size=1.5"),
    Case("train-data-seed-abc", "train", [*TRAIN, "data.seed=abc"], "data.seed='abc'"),
    Case("train-loss-weight-bool", "train", [*TRAIN, "loss.gan_w=true"], "loss.gan_w=True"),
    Case("train-channels-last-abc", "train", [*TRAIN, "model.channels_last=abc"], "channels_last='abc'"),
    Case("train-max-loss-abc", "train", [*TRAIN, "model.max_loss=abc"], "model.max_loss='abc'"),
    Case("train-print-config-abc", "train", [*TRAIN, "print_config=abc"], "print_config='abc'"),
    Case("train-auto-resume-abc", "train", [*TRAIN, "auto_resume=abc"], "auto_resume='abc'"),
    Case("train-misspelt-loss-key", "train", [*TRAIN, "loss.cycle_ww=5"], "loss.cycle_ww"),
    Case("train-misspelt-trainer-key", "train", [*TRAIN, "trainer.max_step=5"], "trainer.max_step"),
    Case("train-misspelt-spine-key", "train", [*TRAIN, "model.max_los=5"], "model.max_los"),
    Case("train-added-loss-key", "train", [*TRAIN, "+loss.cycle_ww=5"], "loss.cycle_ww"),
    Case("train-added-data-key", "train", [*TRAIN, "+data.batch_sise=2"], "data.batch_sise"),
    # i2i-train: overrides Hydra refuses while composing (reported by Hydra in several lines, exit 1)
    Case("train-unknown-key", "train", [*TRAIN, "trainer.max_stepz=5"], "trainer.max_stepz"),
    Case("train-unknown-option", "train", [*TRAIN, "logger=abc"], "logger/abc"),
    Case("train-unparsable-override", "train", [*TRAIN, "seed==1"], "seed==1"),
    Case(
        "train-run-dir-in-a-file",
        "train",
        [*TRAIN, "hydra.run.dir={tmp}/a_file/run"],
        "a_file",
        write_file("a_file", b"mine"),
    ),  # fmt: skip
    # i2i-train: resume from a file that is no checkpoint of this model
    Case("resume-missing", "train", [*TRAIN, "ckpt_path={tmp}/none.ckpt"], "none.ckpt"),
    Case(
        "resume-truncated",
        "train",
        [*TRAIN, "ckpt_path={tmp}/cut.ckpt"],
        "cut.ckpt",
        lambda t: truncated(t, "cut.ckpt"),
    ),
    Case(
        "resume-random-bytes",
        "train",
        [*TRAIN, "ckpt_path={tmp}/noise.ckpt"],
        "noise.ckpt",
        write_file("noise.ckpt", np.random.default_rng(0).bytes(4096)),
    ),  # fmt: skip
    Case(
        "resume-pickled-object",
        "train",
        [*TRAIN, "ckpt_path={tmp}/obj.ckpt"],
        "obj.ckpt",
        lambda t: pickled(t, "obj.ckpt"),
    ),
    Case(
        "resume-not-i2i",
        "train",
        [*TRAIN, "ckpt_path={tmp}/dict.ckpt"],
        "dict.ckpt",
        lambda t: torch.save({"weights": torch.zeros(2)}, t / "dict.ckpt"),
    ),  # fmt: skip
    Case("resume-other-widths", "train", [*TRAIN, "ckpt_path={ckpt}", "model.generator.ngf=8"], "last.ckpt"),
    Case(
        "resume-other-depth", "train", [*TRAIN, "ckpt_path={ckpt}", "model.generator.n_blocks=2"], "last.ckpt"
    ),
    Case(
        "resume-hostile-config",
        "train",
        [*TRAIN, "ckpt_path={tmp}/evil.ckpt"],
        "evil.ckpt",
        lambda t: hostile_checkpoint(t, "evil.ckpt"),
    ),  # fmt: skip
    Case("train-fresh-over-a-run", "train", [*TINY_CYCLEGAN, "hydra.run.dir={tmp}/run"], "last.ckpt"),
    # i2i-train on image folders
    Case("data-root-missing", "train", [*FOLDER, "data.domains.root={tmp}/nowhere"], "data.domains.root"),
    Case("data-bomb-image", "train", FOLDER_DATA, "bomb.png", write_file("data/trainA/bomb.png", BOMB)),
    Case("data-not-an-image", "train", FOLDER_DATA, "fake.png", write_file("data/trainB/fake.png", b"text")),
    Case(
        "data-load-below-crop",
        "train",
        [*FOLDER_DATA, "data.domains.load_size=16"],
        "data.domains.load_size=16",
    ),
    # ... with object boxes (data.domains.boxes=true: <root>/<split><domain>.json, COCO-style)
    Case("boxes-json-missing", "train", BOXES, "trainA.json"),
    Case("boxes-json-malformed", "train", BOXES, "trainA.json", write_file("data/trainA.json", b"{")),
    Case(
        "boxes-unknown-image",
        "train",
        BOXES,
        "trainA.json: annotations[0] names image_id 9",
        write_file("data/trainA.json", coco([{"image_id": 9, "bbox": [1, 1, 4, 4]}])),
    ),
    Case(
        "boxes-bbox-outside",
        "train",
        BOXES,
        "trainA.json: annotations[0] (image 0.png): bbox [30, 30, 20, 20]",
        write_file("data/trainA.json", coco([{"image_id": 0, "bbox": [30, 30, 20, 20]}])),
    ),
    Case(
        "boxes-max-instances-below-objects",
        "train",
        [*TRAIN, *INSTANCES, "data.max_instances=3"],
        "data.max_instances=3",
    ),
    # i2i-translate
    Case("translate-size-negative", "translate", [*TRANSLATE, "image_size=-5"], "image_size=-5"),
    Case("translate-size-abc", "translate", [*TRANSLATE, "image_size=abc"], "image_size='abc'"),
    Case("translate-batch-zero", "translate", [*TRANSLATE, "batch_size=0"], "batch_size=0"),
    Case("translate-k-abc", "translate", [*TRANSLATE, "k=abc"], "k='abc'"),
    Case("translate-style-seed-negative", "translate", [*TRANSLATE, "style_seed=-1"], "style_seed=-1"),
    Case("translate-styles-unimodal", "translate", [*TRANSLATE, "n_styles=2"], "n_styles"),
    Case("translate-direction", "translate", [*TRANSLATE, "direction=XtoY"], "direction='XtoY'"),
    Case("translate-device-unknown", "translate", [*TRANSLATE, "device=abacus"], "device='abacus'"),
    Case("translate-device-absent", "translate", [*TRANSLATE, "device=cuda:99"], "device='cuda:99'"),
    Case(
        "translate-bomb-input",
        "translate",
        [*TRANSLATE, "input_dir={tmp}/bombs"],
        "bomb.png",
        write_file("bombs/bomb.png", BOMB),
    ),  # fmt: skip
    Case("translate-input-missing", "translate", [*TRANSLATE, "input_dir={tmp}/nowhere"], "nowhere"),
    Case("translate-ckpt-unset", "translate", TRANSLATE[1:], "ckpt_path"),
    Case("translate-unknown-key", "translate", [*TRANSLATE, "n_style=2"], "n_style"),
    Case("translate-overwrite-abc", "translate", [*TRANSLATE, "overwrite=abc"], "overwrite='abc'"),
    Case(
        "translate-ckpt-random",
        "translate",
        [*TRANSLATE, "ckpt_path={tmp}/noise.ckpt"],
        "noise.ckpt",
        write_file("noise.ckpt", np.random.default_rng(1).bytes(4096)),
    ),  # fmt: skip
    Case(
        "translate-ckpt-truncated",
        "translate",
        [*TRANSLATE, "ckpt_path={tmp}/cut.ckpt"],
        "cut.ckpt",
        lambda t: truncated(t, "cut.ckpt"),
    ),  # fmt: skip
    Case(
        "translate-ckpt-hostile",
        "translate",
        [*TRANSLATE, "ckpt_path={tmp}/evil.ckpt"],
        "evil.ckpt",
        lambda t: hostile_checkpoint(t, "evil.ckpt"),
    ),  # fmt: skip
    Case("translate-output-is-input", "translate", [*TRANSLATE, "output_dir={images}"], "output_dir"),
    Case(
        "translate-output-is-a-file",
        "translate",
        [*TRANSLATE, "output_dir={tmp}/a_file"],
        "output_dir",
        write_file("a_file", b"mine"),
    ),  # fmt: skip
    # i2i-eval
    Case(
        "eval-weights-garbage",
        "eval",
        [*EVAL[:-1], "metrics.inception_weights={tmp}/junk.pth"],
        "junk.pth",
        write_file("junk.pth", b"not weights"),
    ),  # fmt: skip
    Case("eval-n-images-abc", "eval", [*EVAL, "n_images=abc"], "n_images='abc'"),
    Case("eval-n-images-zero", "eval", [*EVAL, "n_images=0"], "n_images=0"),
    Case("eval-seed-abc", "eval", [*EVAL, "seed=abc"], "seed='abc'"),
    Case("eval-n-images-fraction", "eval", [*EVAL, "n_images=2.5"], "n_images=2.5"),
    Case("eval-misspelt-key", "eval", [*EVAL, "n_image=3"], "n_image"),
    Case("eval-unknown-data", "eval", [*EVAL, "data=imagenet"], "data/imagenet"),
    Case("eval-device-absent", "eval", [*EVAL, "device=cuda:99"], "device='cuda:99'"),
    Case("eval-batch-zero", "eval", [*EVAL, "metrics.batch_size=0"], "metrics.batch_size=0"),
    Case(
        "eval-ckpt-random",
        "eval",
        [*EVAL, "ckpt_path={tmp}/noise.ckpt"],
        "noise.ckpt",
        write_file("noise.ckpt", np.random.default_rng(2).bytes(4096)),
    ),  # fmt: skip
    # i2i-compare
    Case("compare-missing", "compare", ["{tmp}/nowhere"], "nowhere"),
    Case("compare-no-runs", "compare", [], "runs"),
    Case(
        "compare-run-json-cut", "compare", ["{tmp}/bad_run"], "run.json", run_with("run.json", b'{"config": ')
    ),
    Case("compare-run-json-list", "compare", ["{tmp}/bad_run"], "run.json", run_with("run.json", b"[1, 2]")),
    Case(
        "compare-run-json-binary",
        "compare",
        ["{tmp}/bad_run"],
        "run.json",
        run_with("run.json", b"\xff\xfe\x00"),
    ),
    Case(
        "compare-run-json-hostile",
        "compare",
        ["{tmp}/bad_run"],
        "pathlib.Path.write_text",
        run_with("run.json", b'{"config": {"model": {"_target_": "pathlib.Path.write_text"}}}'),
    ),  # fmt: skip
    Case(
        "compare-metrics-json",
        "compare",
        ["{tmp}/bad_run"],
        "metrics.json",
        run_with("metrics.json", b'{"metrics": 5}'),
    ),
    Case(
        "compare-eval-json",
        "compare",
        ["{tmp}/bad_run"],
        "eval.json",
        run_with("eval.json", b'{"scores": [{}]}'),
    ),
    Case(
        "compare-metrics-csv",
        "compare",
        ["{tmp}/bad_run"],
        "metrics.csv",
        run_with("csv/metrics.csv", b"step,val/x\nabc,1\n"),
    ),  # fmt: skip
    Case(
        "compare-output-is-a-file",
        "compare",
        ["{tmp}/run", "--output", "{tmp}/a_file"],
        "a_file",
        write_file("a_file", b"mine"),
    ),  # fmt: skip
    # i2i-convert
    Case("convert-model", "convert", ["pix2pix", "{ckpt}", "{tmp}/out.ckpt"], "pix2pix"),
    Case(
        "convert-size-abc",
        "convert",
        ["munit", "{ckpt}", "{tmp}/out.ckpt", "--image-size", "abc"],
        "--image-size",
    ),
    Case("convert-missing", "convert", ["munit", "{tmp}/gen.pt", "{tmp}/out.ckpt"], "gen.pt"),
    Case(
        "convert-random",
        "convert",
        ["unit", "{tmp}/noise.pt", "{tmp}/out.ckpt"],
        "noise.pt",
        write_file("noise.pt", np.random.default_rng(3).bytes(4096)),
    ),  # fmt: skip
    Case(
        "convert-pickled",
        "convert",
        ["munit", "{tmp}/obj.pt", "{tmp}/out.ckpt"],
        "obj.pt",
        lambda t: pickled(t, "obj.pt"),
    ),
    Case("convert-not-official", "convert", ["munit", "{ckpt}", "{tmp}/out.ckpt"], "last.ckpt"),
    Case(
        "convert-output-exists",
        "convert",
        ["munit", "{ckpt}", "{tmp}/mine.ckpt"],
        "mine.ckpt",
        write_file("mine.ckpt", b"an earlier checkpoint"),
    ),  # fmt: skip
    # i2i-data
    Case("data-no-command", "data", [], "command"),
    Case("data-unknown-set", "data", ["download", "horse2zebrra"], "horse2zebrra"),
    Case(
        "data-root-is-a-file",
        "data",
        ["download", "horse2zebra", "--root", "{tmp}/a_file"],
        "a_file",
        write_file("a_file", b"mine"),
    ),  # fmt: skip
    Case(
        "data-export-unknown-scenario", "data", ["export", "shapes_colour", "{tmp}/exported"], "shapes_colour"
    ),
]
MAINS = {
    "train": train.main,
    "translate": translate.main,
    "eval": evaluate.main,
    "compare": compare.main,
    "convert": convert.main,
    "data": download.main,
}
HYDRA_CLIS = ("train", "translate", "eval")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory of two CycleGAN iterations, trained once through `i2i-train` itself."""
    run_dir = tmp_path_factory.mktemp("shared") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert run_in_process("train", [*TINY_CYCLEGAN, f"hydra.run.dir={run_dir}"], monkeypatch) == 0
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    return run_dir


def run_in_process(cli: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the console entry point of `cli` with `args` in this process; its exit status."""
    GlobalHydra.instance().clear()
    try:
        if cli in HYDRA_CLIS:
            monkeypatch.setattr(sys, "argv", [f"i2i-{cli}", *args])
            MAINS[cli]()
        else:
            MAINS[cli](args)
    except SystemExit as exit_info:
        return exit_info.code if isinstance(exit_info.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
    return 0


def case_folder(tmp_path: Path, trained_run: Path, case: Case) -> list[str]:
    """Fill the case's folder (the run, images, a data folder, the case's own files); its arguments."""
    shutil.copytree(trained_run, tmp_path / "run", ignore=shutil.ignore_patterns(".hydra", "*.log"))
    for name in ("a.png", "b.png"):
        write_png(tmp_path / "images" / name)
    for split in ("trainA", "trainB", "testA", "testB"):
        for index in range(2):
            write_png(tmp_path / "data" / split / f"{index}.png")
    if case.setup:
        case.setup(tmp_path)
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    places = {"tmp": tmp_path, "ckpt": ckpt, "images": tmp_path / "images", "data": tmp_path / "data"}
    return [arg.format(**places) for arg in case.args]


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def check_refusal(case: Case, status: int, out: str, err: str, folder: Path, before: dict[str, str]) -> str:
    """Assert the case was refused as every bad input must be; its error line."""
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert status == 2, f"exit status {status}; stderr: {err[-2000:]}"
    assert len(errors) == 1, err
    assert case.names in errors[0]
    after = file_digests(folder)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert not changed, f"files changed or lost: {changed}"
    assert not (folder / MARKER).exists()
    return errors[0]


def refused_in_process(case: Case, folder: Path, trained_run: Path, monkeypatch, capsys) -> str:
    """Run the case in-process in `folder` and check its refusal; its error line."""
    args = case_folder(folder, trained_run, case)
    before = file_digests(folder)
    capsys.readouterr()
    status = run_in_process(case.cli, args, monkeypatch)
    captured = capsys.readouterr()
    return check_refusal(case, status, captured.out, captured.err, folder, before)


def test_the_table_has_at_least_50_distinct_bad_inputs_across_all_six_clis():
    assert len({case.id for case in CASES}) == len(CASES) >= 50
    assert {case.cli for case in CASES} == set(MAINS)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_naming_it(case, tmp_path, trained_run, monkeypatch, capsys):
    refused_in_process(case, tmp_path, trained_run, monkeypatch, capsys)


PARITY_CASES = ["train-max-steps-fraction", "translate-bomb-input", "compare-run-json-cut"]


@pytest.mark.slow
def test_console_scripts_report_like_the_in_process_runs(tmp_path, trained_run, monkeypatch, capsys):
    """The real console scripts, run in parallel, print the error line the in-process runs print."""
    scripts = Path(sys.executable).parent
    runs = []
    for case in (c for c in CASES if c.id in PARITY_CASES):
        folder = tmp_path / case.id / "script"
        args = case_folder(folder, trained_run, case)
        before = file_digests(folder)
        process = subprocess.Popen(
            [str(scripts / f"i2i-{case.cli}"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            cwd=folder,
        )
        runs.append((case, folder, before, process))
    for case, folder, before, process in runs:
        out, err = process.communicate(timeout=300)
        from_script = check_refusal(case, process.returncode, out, err, folder, before)
        other_folder = folder.with_name("in_process")
        in_process = refused_in_process(case, other_folder, trained_run, monkeypatch, capsys)
        assert from_script.replace(str(folder), "<case>") == in_process.replace(str(other_folder), "<case>")
