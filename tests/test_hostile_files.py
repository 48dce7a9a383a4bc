"""Files from elsewhere cannot make i2i run code (issue 23 §1).

Hostile checkpoints (a stored run config naming `pathlib.Path.write_text`, `torch.load` of a side
pickle, `exec`, `os.system`, `subprocess.run`, a target nested deep in a list, a name reaching
through an i2i module), a hostile `run.json`, and weights files that are pickles whose unpickling
writes a marker are given to the real command-line tools, each in its own process (and every
hostile config to `load_model` in this one). Every one must be refused in one `error:` line (exit 2,
no traceback) naming the key or the file, and the marker must never appear. Hydra's own blocklist
stops `exec`, `os.system` and `subprocess` (with a traceback), not `Path.write_text` or `torch.load`.
`TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1` (which turns every `torch.load` that does not say
`weights_only` into a full unpickling) shows which loads rely on torch's default. The allowlist
itself: every shipped config passes it, anything else is refused naming the key path.
"""

import inspect
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import FAST, compose_config, small_data
from hydra.utils import get_class
from omegaconf import OmegaConf
from PIL import Image

from i2i.checkpoints import load_model
from i2i.metrics import extractors
from i2i.metrics.extractors import LPIPS_BACKBONE_FILES
from i2i.train import build_model
from i2i.trusted import EXTERNAL_TARGETS, UntrustedConfigError, check_buildable, check_targets
from i2i.weights import INCEPTION_FILE, PUBLISHED_SHA256, WeightsError

BIN = Path(sys.executable).parent
FORCE_UNPICKLING = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
CONFIGS = Path(__file__).resolve().parents[1] / "conf"


class WritesMarker:
    """Unpickling this object runs code that writes `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def write_pickle_bomb(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"state_dict": WritesMarker(marker)}))
    return path


def hostile_nodes(marker: Path, side_pickle: Path) -> dict[str, dict[str, Any]]:
    """Config nodes that write `marker` when Hydra instantiates them."""
    touch = ["touch", str(marker)]
    return {
        "write_text": {
            "_target_": "pathlib.Path.write_text",
            "self": {"_target_": "pathlib.Path", "_args_": [str(marker)]},
            "data": "pwned",
        },
        "torch_load": {"_target_": "torch.load", "f": str(side_pickle), "weights_only": False},
        "exec": {"_target_": "builtins.exec", "_args_": [f"open({str(marker)!r}, 'w').write('pwned')"]},
        "os_system": {"_target_": "os.system", "_args_": [f"touch {marker}"]},
        "subprocess": {"_target_": "subprocess.run", "_args_": [touch]},
        "through_i2i": {"_target_": "i2i.cli.subprocess.run", "_args_": [touch]},
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> dict[str, Any]:
    """A real i2i checkpoint's contents (CycleGAN at the fast test size, untrained)."""
    overrides = ["model=cyclegan", *FAST, *small_data("cyclegan", "shapes")]
    cfg = compose_config(overrides, tmp_path_factory.mktemp("run"))
    return {
        "state_dict": build_model(cfg).state_dict(),
        "hyper_parameters": OmegaConf.to_container(cfg, resolve=True),
        "i2i": {"iteration": 0},
    }


def with_node(checkpoint: dict[str, Any], node: dict[str, Any], deep: bool) -> dict[str, Any]:
    """`checkpoint` with `node` as its generator config, or (deep) nested in a list inside it."""
    config = json.loads(json.dumps(checkpoint["hyper_parameters"]))
    if deep:
        config["model"]["generator"]["extra"] = [0, {"deeper": [node]}]
    else:
        config["model"]["generator"] = node
    return {**checkpoint, "hyper_parameters": config}


def run(tool: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    command = [str(BIN / tool), *args]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)


def assert_refused(result: subprocess.CompletedProcess, marker: Path, *named: str) -> None:
    """Exit 2, exactly one `error:` line naming each of `named`, no traceback, no marker."""
    assert not marker.exists()
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert result.returncode == 2
    for name in named:
        assert name in errors[0]


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(folder / "a.png")
    return folder


CASES = [(name, False) for name in hostile_nodes(Path(), Path())] + [
    ("write_text", True),
    ("through_i2i", True),
]
CASE_IDS = [f"{name}{'-deep' if deep else ''}" for name, deep in CASES]
# Each command-line run costs a process start (seconds); these cover the one-line report, the
# in-process test below every case.
CLI_CASES = [("write_text", False), ("torch_load", False), ("through_i2i", True)]


@pytest.mark.parametrize("name,deep", CASES, ids=CASE_IDS)
def test_load_model_refuses_a_checkpoint_whose_config_would_run_code(tmp_path, checkpoint, name, deep):
    marker = tmp_path / "marker"
    node = hostile_nodes(marker, write_pickle_bomb(tmp_path / "side.pkl", marker))[name]
    path = tmp_path / "hostile.ckpt"
    torch.save(with_node(checkpoint, node, deep), path)
    key = "model.generator.extra[1].deeper[0]._target_" if deep else "model.generator._target_"
    with pytest.raises(
        UntrustedConfigError, match=re.escape(f"{path}: {key}={node['_target_']!r} is refused")
    ):
        load_model(path)
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name,deep", CLI_CASES, ids=[f"{n}{'-deep' if d else ''}" for n, d in CLI_CASES])
def test_translate_refuses_a_checkpoint_whose_config_would_run_code(tmp_path, checkpoint, inputs, name, deep):
    marker = tmp_path / "marker"
    side_pickle = write_pickle_bomb(tmp_path / "side.pkl", marker)
    path = tmp_path / "hostile.ckpt"
    torch.save(with_node(checkpoint, hostile_nodes(marker, side_pickle)[name], deep), path)
    assert torch.load(path, weights_only=True)  # a file that passes the weights-only check
    result = run(
        "i2i-translate", f"ckpt_path={path}", f"input_dir={inputs}", f"output_dir={tmp_path / 'out'}",
        "device=cpu", cwd=tmp_path,
    )  # fmt: skip
    key = "model.generator.extra[1].deeper[0]._target_" if deep else "model.generator._target_"
    target = hostile_nodes(marker, side_pickle)[name]["_target_"]
    assert_refused(result, marker, str(path), f"{key}={target!r}")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["write_text", "torch_load"])
def test_eval_refuses_a_checkpoint_whose_config_would_run_code(tmp_path, checkpoint, name):
    marker = tmp_path / "marker"
    side_pickle = write_pickle_bomb(tmp_path / "side.pkl", marker)
    path = tmp_path / "hostile.ckpt"
    torch.save(with_node(checkpoint, hostile_nodes(marker, side_pickle)[name], deep=False), path)
    result = run("i2i-eval", f"ckpt_path={path}", "device=cpu", "metrics.extractor=proxy", cwd=tmp_path)
    assert_refused(result, marker, str(path), "model.generator._target_")
    assert not (tmp_path / "eval.json").exists()


def resume(tmp_path: Path, path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    fast = [*FAST, *small_data("cyclegan", "shapes")]
    return run("i2i-train", "model=cyclegan", *fast, f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'run'}",
               cwd=tmp_path, env=env)  # fmt: skip


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_whose_config_would_run_code(tmp_path, checkpoint):
    marker = tmp_path / "marker"
    path = tmp_path / "hostile.ckpt"
    torch.save(
        with_node(checkpoint, hostile_nodes(marker, tmp_path / "side.pkl")["write_text"], deep=True), path
    )
    assert_refused(resume(tmp_path, path), marker, str(path), "model.generator.extra[1].deeper[0]._target_")


@pytest.mark.slow
def test_resume_never_unpickles_the_checkpoint(tmp_path):
    marker = tmp_path / "marker"
    path = write_pickle_bomb(tmp_path / "last.ckpt", marker)
    assert_refused(resume(tmp_path, path, FORCE_UNPICKLING), marker, str(path))


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["i2i-translate", "i2i-convert"])
def test_a_pickled_checkpoint_is_never_unpickled(tmp_path, inputs, tool):
    """A regression guard: both tools already read with `weights_only=True`, also when the
    environment asks torch to unpickle."""
    marker = tmp_path / "marker"
    path = write_pickle_bomb(tmp_path / "gen_01000000.pt", marker)
    if tool == "i2i-convert":
        args = ["munit", str(path), str(tmp_path / "out.ckpt")]
    else:
        args = [f"ckpt_path={path}", f"input_dir={inputs}", f"output_dir={tmp_path / 'out'}", "device=cpu"]
    assert_refused(run(tool, *args, cwd=tmp_path, env=FORCE_UNPICKLING), marker, str(path))


@pytest.mark.slow
def test_compare_refuses_a_run_json_naming_other_targets(tmp_path):
    marker = tmp_path / "marker"
    node = hostile_nodes(marker, tmp_path / "side.pkl")["write_text"]
    run_dir = tmp_path / "runs" / "0"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"iterations": 1, "config": {"model": {"generator": node}}}))
    result = run("i2i-compare", str(tmp_path / "runs"), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert_refused(
        result, marker, str(run_dir / "run.json"), "model.generator._target_='pathlib.Path.write_text'"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("allow_unpublished", [False, True])
def test_eval_never_unpickles_an_inception_weights_file(tmp_path, checkpoint, allow_unpublished):
    marker = tmp_path / "marker"
    weights = write_pickle_bomb(tmp_path / INCEPTION_FILE, marker)
    path = tmp_path / "model.ckpt"
    torch.save(checkpoint, path)
    opt_in = ["metrics.allow_unpublished_weights=true"] if allow_unpublished else []
    result = run(
        "i2i-eval", f"ckpt_path={path}", "device=cpu", "n_images=2", f"metrics.inception_weights={weights}",
        *opt_in, cwd=tmp_path, env=FORCE_UNPICKLING,
    )  # fmt: skip
    if allow_unpublished:  # the digest is not checked: the file is read as plain tensors, and refused
        assert_refused(result, marker, f"{weights} is not a readable weights file")
    else:
        published = PUBLISHED_SHA256[INCEPTION_FILE]
        assert_refused(result, marker, f"{weights}: SHA-256 ", f"is not the published {published}")


@pytest.mark.slow
def test_eval_never_unpickles_an_lpips_backbone_in_the_hub_cache(tmp_path, checkpoint):
    """torchvision's loader unpickles what it finds in the hub cache; a file there under the
    AlexNet name is checked like any other."""
    marker = tmp_path / "marker"
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    weights = write_pickle_bomb(cache / LPIPS_BACKBONE_FILES["alex"], marker)
    munit = compose_config(["model=munit", *FAST, *small_data("munit", "shapes")], tmp_path / "run")
    path = tmp_path / "munit.ckpt"
    contents = {"state_dict": build_model(munit).state_dict(), "i2i": {"iteration": 0}}
    torch.save({**contents, "hyper_parameters": OmegaConf.to_container(munit, resolve=True)}, path)
    result = run(
        "i2i-eval", f"ckpt_path={path}", "device=cpu", "n_images=2", "metrics.names=[lpips_diversity]",
        "metrics.lpips_inputs=1", "metrics.lpips_styles=2",
        cwd=tmp_path, env={**FORCE_UNPICKLING, "TORCH_HOME": str(tmp_path / "torch_home")},
    )  # fmt: skip
    assert_refused(result, marker, f"{weights}: SHA-256 ", PUBLISHED_SHA256[LPIPS_BACKBONE_FILES["alex"]])


def shipped_configs() -> list[list[str]]:
    """Overrides that compose every shipped model (with its trainer, callbacks and loggers) and recipe."""
    models = [[f"model={p.stem}"] for p in sorted((CONFIGS / "model").glob("*.yaml")) if p.stem != "lomit"]
    extras = [["trainer=ddp", "callbacks=image_metrics", "logger=tensorboard"], ["logger=wandb"]]
    experiments = sorted((CONFIGS / "experiment").glob("*/*.yaml"))  # experiments/{paper,quality}/
    recipes = [[f"experiment={p.parent.name}/{p.stem}"] for p in experiments]
    return [
        *models,
        *[["model=cyclegan", *extra] for extra in extras],
        ["model=lomit", "data=celeba"],
        *recipes,
    ]


@pytest.mark.parametrize("overrides", shipped_configs(), ids=lambda overrides: "_".join(overrides))
def test_every_shipped_config_passes_the_allowlist(overrides):
    config = OmegaConf.to_container(compose_config(overrides), resolve=True)
    check_buildable(config, "composed")


def test_the_external_targets_are_the_torch_and_lightning_classes_of_the_configs():
    used = set()
    for path in CONFIGS.rglob("*.yaml"):
        lines = path.read_text().splitlines()
        used |= {line.split("_target_:")[1].split("#")[0].strip() for line in lines if "_target_:" in line}
    assert {target for target in used if not target.startswith("i2i.")} <= EXTERNAL_TARGETS
    for target in EXTERNAL_TARGETS:
        assert target.startswith(("torch.optim.", "pytorch_lightning.")) and inspect.isclass(
            get_class(target)
        )


@pytest.mark.parametrize(
    "target",
    [
        "pathlib.Path.write_text",
        "torch.load",
        "builtins.eval",
        "os.system",
        "i2i.cli.subprocess.Popen",  # a module imported by an i2i module
        "i2i.train.instantiate",  # a function imported into an i2i module
        "i2i.compare.write_csv",  # i2i's own functions write files
        "i2i.models.torch.nn.Module",
        "i2i.models.MUNIT",  # not where the class is defined
        "i2i.models.nonexistent.Class",
        "torch.optim.Adam.step",
        "torch.optim.lr_scheduler",
    ],
)
def test_the_allowlist_refuses_anything_else_naming_key_and_target(target):
    nets = [{"_target_": "i2i.models.munit.MUNIT"}, {"deep": {"_args_": [{"_target_": target}]}}]
    config = {"model": {"nets": nets}}
    with pytest.raises(UntrustedConfigError) as error:
        check_targets(config, "run.json")
    assert str(error.value).startswith(
        f"run.json: model.nets[1].deep._args_[0]._target_={target!r} is refused:"
    )
    assert "\n" not in str(error.value)


def test_an_interpolation_is_refused_where_the_config_would_be_built():
    config = {"model": {"_target_": "i2i.models.munit.MUNIT", "dim": "${oc.create:{_target_: os.system}}"}}
    check_targets(config, "run.json")  # only read, never resolved: the targets are what matters
    with pytest.raises(UntrustedConfigError, match=r"^x.ckpt: model.dim='\$\{oc.create"):
        check_buildable(config, "x.ckpt")


def test_lpips_heads_are_checked_before_torchmetrics_reads_them(monkeypatch):
    """The linear heads ship inside torchmetrics' wheel and torchmetrics loads them itself: a file
    there that is not LPIPS v0.1's is refused, naming it."""
    monkeypatch.setitem(extractors.LPIPS_HEAD_SHA256, "alex", "0" * 64)
    with pytest.raises(WeightsError, match=r"lpips_models/alex.pth: SHA-256 df73285e[0-9a-f]{56} is not"):
        extractors.build_lpips("proxy", "alex", None, allow_download=False, allow_unpublished=True)
