"""Every `bash` block of README.md runs as written, shrunk, so a README command can never fail again.

The rules (README "Tests" states them for readers):
- A block is a ```bash fence. Lines ending in a backslash continue; `#` starts a comment; leading
  `NAME=value` words set environment variables for that command.
- A block whose fence follows an HTML comment `<!-- not-run: <why> -->` (GPUs, SLURM, several nodes,
  downloads, other models' checkpoints, the install) is parsed only: Hydra composes each `i2i-*`
  command's overrides (the first value of a sweep; `torchrun ... -m i2i.train` as `i2i-train`),
  argparse parses the other CLIs' arguments, a `make` target must exist in the Makefile.
- The other blocks run in README order in one scratch folder (the working directory, with
  I2I_LOG_DIR and I2I_DATA_DIR inside it, W&B offline, TORCH_HOME holding random-weight metric
  networks), as a reader following the README would: later blocks use files earlier ones made.
- Each command is shrunk by the overrides of `shrink`: it replaces a value the command sets for the
  same key (`trainer.max_steps=200000` becomes the tests' few iterations) and appends the others.
- `<run>` is a run of the default `i2i-train` (shrunk), made once; `<sweep>` the newest sweep folder.
- `i2i-*` commands run in this process through their entry points; one that starts several
  processes (`trainer=ddp*`, whose launcher re-runs the command line) runs its console script.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import DEFAULT_MODEL, FAST, small_data
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from i2i import compare, convert, evaluate, train, translate
from i2i.data import download

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<why>.+?)\s*-->")
RUN_NAME = "readme_run"  # the folder `<run>` stands for
ENTRY_POINTS = {
    "i2i-train": train.main,
    "i2i-translate": translate.main,
    "i2i-eval": evaluate.main,
    "i2i-compare": compare.main,
    "i2i-convert": convert.main,
    "i2i-data": download.main,
}
# TORCH_HOME holds random-weight stand-ins of the metric networks (tests/metric_weights.py), not the
# published files
UNPUBLISHED = ["metrics.allow_unpublished_weights=true"]
IMAGE_METRICS = [
    "callbacks.image_metrics.n_images=2",
    "metrics.lpips_inputs=2",
    "metrics.lpips_styles=2",
    *UNPUBLISHED,
]
HYDRA_CONFIGS = {"i2i-train": "train", "i2i-translate": "translate", "i2i-eval": "eval"}


@dataclass(frozen=True)
class Command:
    """One command line of a README block: environment words, the program and its arguments."""

    line: int
    env: dict[str, str]
    program: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        words = [f"{k}={v}" for k, v in self.env.items()] + [self.program, *self.args]
        return " ".join(words)


@dataclass
class Block:
    """A ```bash block of the README and, when it is marked not-run, why."""

    line: int
    commands: list[Command] = field(default_factory=list)
    not_run: str | None = None

    @property
    def id(self) -> str:
        first = self.commands[0]
        return f"L{self.line}-{first.program}-{'parse' if self.not_run else 'run'}"


def readme_blocks(text: str) -> list[Block]:
    """The README's ```bash blocks with their commands, in order."""
    blocks, lines = [], text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```bash":
            index += 1
            continue
        marker = NOT_RUN.search(lines[index - 1]) if index else None
        block = Block(line=index + 1, not_run=marker.group("why") if marker else None)
        index += 1
        pending, start = "", None
        while lines[index].strip() != "```":
            text_line = lines[index]
            start = index + 1 if start is None else start
            pending += text_line.rstrip().removesuffix("\\") + " "
            if not text_line.rstrip().endswith("\\"):
                command = parse_command(pending, start)
                if command is not None:
                    block.commands.append(command)
                pending, start = "", None
            index += 1
        blocks.append(block)
        index += 1
    return blocks


def parse_command(text: str, line: int) -> Command | None:
    """A shell line as (environment, program, arguments); None for a comment or blank line."""
    words = shlex.split(text, comments=True)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if not words:
        return None
    return Command(line, env, words[0], tuple(words[1:]))


BLOCKS = readme_blocks(README.read_text())


def test_the_readme_has_runnable_blocks_and_marks_the_others_with_a_reason():
    runnable = [b for b in BLOCKS if not b.not_run]
    assert len(runnable) >= 5 and all(b.commands for b in BLOCKS)
    first = runnable[0].commands  # the first example gets its inputs from i2i-data export
    assert [c.program for c in first] == ["i2i-train", "i2i-data", "i2i-translate"] and first[1].args[
        0
    ] == "export"
    known = set(ENTRY_POINTS) | {"make", "torchrun"}
    assert {c.program for b in BLOCKS for c in b.commands} <= known


# ------------------------------------------------------------------------------- shrinking
def key_of(argument: str) -> str:
    """The key an override or option sets: `trainer.max_steps` of `trainer.max_steps=4`."""
    return argument.split("=", 1)[0].lstrip("+~")


def merge(arguments: list[str], shrunk: list[str]) -> list[str]:
    """`arguments` with each key that `shrunk` also sets replaced by the shrunk value, then the rest
    of `shrunk` appended."""
    replacements = {key_of(a): a for a in shrunk}
    merged = [replacements.pop(key_of(a), a) for a in arguments]
    return merged + [a for a in shrunk if key_of(a) in replacements]


def merge_options(arguments: list[str], options: dict[str, str]) -> list[str]:
    """argparse arguments with `--option value` pairs replaced or appended."""
    merged, pending = list(arguments), dict(options)
    for index, word in enumerate(merged[:-1]):
        if word in pending:
            merged[index + 1] = pending.pop(word)
    return merged + [w for pair in pending.items() for w in pair]


def override_value(arguments: list[str], key: str, default: str) -> str:
    return next((a.split("=", 1)[1] for a in arguments if a.startswith(f"{key}=")), default)


def shrink(command: Command) -> list[str]:
    """The command's arguments with the test's few iterations, tiny images and image counts."""
    arguments = list(command.args)
    if command.program == "i2i-train":
        model = override_value(arguments, "model", DEFAULT_MODEL)
        data = override_value(arguments, "data", "shapes")
        extra = [*IMAGE_METRICS] if "callbacks=image_metrics" in arguments else []
        if any(a.startswith("hparams_search=") for a in arguments):
            extra.append("hydra.sweeper.n_trials=2")
        # a deletion (`~callbacks.progress_bar`) fails where a recipe already set the entry to null
        fast = [f"++{a[1:]}=null" if a.startswith("~") else a for a in FAST]
        return merge(arguments, [*fast, *small_data(model, data), "data.num_workers=0", *extra])
    if command.program == "i2i-eval" and any(a.startswith("ckpt_path=") for a in arguments):
        return merge(arguments, ["n_images=2", "device=cpu", *IMAGE_METRICS[1:]])
    if command.program == "i2i-eval":
        return merge(arguments, ["device=cpu", *UNPUBLISHED])
    if command.program == "i2i-data" and arguments[:1] == ["export"]:
        options = {"--num-test": "4"} | ({"--num-train": "8"} if "--num-train" in arguments else {})
        return merge_options(arguments, options)
    return arguments


# ------------------------------------------------------------------------------- running
@dataclass(frozen=True)
class Workspace:
    folder: Path
    env: dict[str, str]

    def substitute(self, argument: str) -> str:
        """`<run>` and `<sweep>` replaced by the folders they stand for."""
        if "<sweep>" in argument:
            sweeps = sorted(
                (self.folder / "logs" / "train" / "multiruns").iterdir(), key=lambda p: p.stat().st_mtime
            )
            argument = argument.replace("<sweep>", sweeps[-1].name)
        return argument.replace("<run>", RUN_NAME)


def run_in_process(command: Command, arguments: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The command through its entry point, as its console script would call it; fails on an exit
    code other than 0."""
    monkeypatch.setattr(sys, "argv", [command.program, *arguments])
    GlobalHydra.instance().clear()
    try:
        ENTRY_POINTS[command.program]()
    except SystemExit as exit_info:
        assert exit_info.code in (0, None), f"`{command}` exited with {exit_info.code}"
    finally:
        GlobalHydra.instance().clear()


def starts_processes(arguments: list[str]) -> bool:
    return any(re.fullmatch(r"trainer=ddp\w*", a) for a in arguments)


def run_command(command: Command, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    arguments = [workspace.substitute(a) for a in shrink(command)]
    if starts_processes(arguments):
        script = Path(sys.executable).parent / command.program
        result = subprocess.run(
            [str(script), *arguments], cwd=workspace.folder, env=os.environ | workspace.env | command.env,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, (
            f"`{command}` exited with {result.returncode}:\n{result.stderr[-3000:]}"
        )
        return
    for name, value in command.env.items():
        monkeypatch.setenv(name, value)
    run_in_process(command, arguments, monkeypatch)


def checkpoints(workspace: Workspace) -> set[Path]:
    return set((workspace.folder / "logs").rglob("last.ckpt"))


def check_outputs(command: Command, arguments: list[str], workspace: Workspace, before: set[Path]) -> None:
    """What the command is documented to write is there (its exit code alone proves little)."""
    options = dict(a.split("=", 1) for a in arguments if "=" in a and not a.startswith("-"))
    written: list[Path] = []
    if command.program == "i2i-translate":
        written = list(Path(options["output_dir"]).glob("*.png"))
    elif command.program == "i2i-data" and arguments[0] == "export":
        written = list(Path(arguments[2], "testA").glob("*.png"))
    elif command.program == "i2i-eval" and "fake_dir" in options:
        written = [Path(options.get("output") or f"{options['fake_dir'].rstrip('/')}_eval.json")]
    elif command.program == "i2i-eval":
        written = [Path(options["ckpt_path"]).parents[1] / "eval.json"]
    elif command.program == "i2i-compare":
        written = [Path(arguments[0], "comparison.md")]
    elif command.program == "i2i-train" and "ckpt_path" in options:
        written = [Path(options["ckpt_path"])]  # resumed in place
    elif command.program == "i2i-train":
        written = list(checkpoints(workspace) - before)  # a new run (or a job per sweep point)
    assert [path for path in written if path.is_file()], f"`{command}` wrote none of its outputs"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, metric_weights_home) -> Iterator[Workspace]:
    """The scratch folder the README's commands run in, with `<run>` trained in it."""
    folder = tmp_path_factory.mktemp("readme")
    env = {
        "I2I_LOG_DIR": str(folder / "logs"),
        "I2I_DATA_DIR": str(folder / "data"),
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(folder),
        "WANDB_SILENT": "true",
        "TORCH_HOME": str(metric_weights_home),
    }
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(folder)
        default_run = Command(
            0, {}, "i2i-train", (f"hydra.run.dir={folder / 'logs' / 'train' / 'runs' / RUN_NAME}",)
        )
        run_in_process(default_run, shrink(default_run), monkeypatch)
        yield Workspace(folder, env)


# ------------------------------------------------------------------------------- parsing
class _Parsed(Exception):
    """Raised by the patched `parse_args` once argparse has accepted the arguments."""


def first_of_sweeps(overrides: list[str]) -> list[str]:
    """Each sweep override (`loss.cycle_w=5,10`) as its first value, for composing one config."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [
        f"{o.get_key_element()}={next(o.sweep_string_iterator())}" if o.is_sweep_override() else o.input_line
        for o in parsed
    ]


def parse_then_stop(parse):
    """`parse` (an ArgumentParser method) that raises _Parsed once the arguments are accepted."""

    def parse_only(self, args=None, namespace=None):
        parse(self, args, namespace)
        raise _Parsed

    return parse_only


def check_parses(command: Command, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's arguments are accepted by its program, without running it."""
    program = command.program
    arguments = [re.sub(r"<(\w+)>", r"\1", a) for a in command.args]  # placeholders as plain names
    if program == "make":
        targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
        assert set(arguments) <= set(targets), f"`{command}`: no such Makefile target"
        return
    if program == "torchrun":
        assert arguments[arguments.index("-m") + 1] == "i2i.train", f"`{command}` runs no i2i module"
        program, arguments = "i2i-train", arguments[arguments.index("-m") + 2 :]
    if program in HYDRA_CONFIGS:
        overrides = first_of_sweeps([a for a in arguments if a not in ("-m", "--multirun")])
        GlobalHydra.instance().clear()
        with initialize_config_module(version_base="1.3", config_module="i2i.conf"):
            compose(HYDRA_CONFIGS[program], overrides=overrides, return_hydra_config=True)
        GlobalHydra.instance().clear()
        return
    for method in ("parse_args", "parse_intermixed_args"):
        monkeypatch.setattr(
            argparse.ArgumentParser, method, parse_then_stop(getattr(argparse.ArgumentParser, method))
        )
    monkeypatch.setattr(sys, "argv", [program, *arguments])
    with pytest.raises(_Parsed):
        ENTRY_POINTS[program]()


# ------------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_every_readme_command_parses(block, monkeypatch):
    """All blocks, the runnable ones too: a misspelt key fails here in seconds, without running."""
    for command in block.commands:
        check_parses(command, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.not_run], ids=lambda b: b.id)
def test_a_readme_block_runs_as_written(block, workspace, monkeypatch):
    monkeypatch.chdir(workspace.folder)
    for command in block.commands:
        before, start = checkpoints(workspace), time.monotonic()
        run_command(command, workspace, monkeypatch)
        print(f"{time.monotonic() - start:6.1f} s  {command}")  # shown by pytest -s, or on failure
        check_outputs(command, [workspace.substitute(a) for a in shrink(command)], workspace, before)


@pytest.mark.parametrize(
    ("command", "misspelt"),
    [
        (Command(0, {}, "i2i-train", ("trainer=gpu", "trainer.devcies=8")), "devcies"),
        (
            Command(0, {}, "i2i-train", ("-m", "hydra/launcher=slurm", "hydra.launcher.partiton=gpu")),
            "partiton",
        ),
        (
            Command(0, {}, "i2i-train", ("-m", "model=cyclegan", "loss.cycle_w=5,10", "loss.recon_x_w=1,2")),
            "recon_x_w",
        ),
        (Command(0, {}, "i2i-eval", ("fake_dir=a", "real_dri=b")), "real_dri"),
        (Command(0, {}, "i2i-convert", ("munti", "gen.pt", "out.ckpt")), "munti"),
        (Command(0, {}, "make", ("bench-qualty",)), "bench-qualty"),
    ],
    ids=lambda value: str(value) if isinstance(value, Command) else "",
)
def test_parsing_a_not_run_command_catches_a_misspelling(command, misspelt, monkeypatch, capsys):
    with pytest.raises((Exception, SystemExit)) as failure:
        check_parses(command, monkeypatch)
    assert not isinstance(failure.value, _Parsed)
    assert misspelt in str(failure.value) + capsys.readouterr().err  # argparse says why on stderr
