"""What the command-line entry points share: one-line error reports (also for argparse, and for the
config schema's refusals while Hydra composes), and the run header. The values they check before
building anything are in i2i.schema."""

import argparse
import difflib
import errno
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from i2i.errors import I2IError

log = logging.getLogger("i2i")

# What the file system says about a path the user named (an output folder that is a file, a folder
# without write permission, a full disk): reported with the path, like an I2IError.
HYDRA_FULL_ERROR = "HYDRA_FULL_ERROR"
PATH_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def _is_path_error(error: BaseException) -> bool:
    return (
        isinstance(error, OSError)
        and error.filename is not None
        and (isinstance(error, PATH_ERRORS) or error.errno == errno.ENOSPC)
    )


def _user_error(error: BaseException) -> BaseException | None:
    """The I2IError, missing mandatory value or file-system error about a path behind `error`,
    following Hydra's wrapping."""
    while error is not None:
        if isinstance(error, (I2IError, MissingMandatoryValue)) or _is_path_error(error):
            return error
        error = error.__cause__  # Hydra's InstantiationException wraps the original error
    return None


def _one_line(error: BaseException) -> str:
    if isinstance(error, MissingMandatoryValue):  # its further lines repeat the key and the node type
        key = str(error).splitlines()[0]
        return f"missing required value: {key} (pass it on the command line, key=value)"
    if isinstance(error, OSError):
        target = f"{error.filename} -> {error.filename2}" if error.filename2 else error.filename
        return f"{target}: {error.strerror} (choose another path, or fix its permissions or space)"
    return " ".join(line.strip() for line in str(error).splitlines())


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn a user-fixable error into one line on stderr and exit status 2, not a traceback."""
    try:
        yield
    except Exception as error:
        cause = _user_error(error)
        if cause is None:
            raise
        print(f"error: {_one_line(cause)}", file=sys.stderr)
        sys.exit(2)


def run_hydra_cli(hydra_main: Callable[[], object]) -> None:
    """Run a `@hydra.main` function so that Hydra's own refusals of the command line (a key the
    config lacks, a group option that does not exist, an override that does not parse, a run
    directory it cannot create) are one `error:` line with exit status 2 like every other bad input.
    Hydra prints them in several lines with exit status 1 unless HYDRA_FULL_ERROR is set, when it
    raises them; it is set for the call."""
    previous = os.environ.get(HYDRA_FULL_ERROR)
    os.environ[HYDRA_FULL_ERROR] = "1"
    try:
        with reporting_errors():
            hydra_main()
    except (ConfigCompositionException, OverrideParseException) as error:
        message = str(error).split("Config search path")[0]  # the search path is Hydra's internals
        if isinstance(error.__cause__, ValidationError):  # a value of the wrong type for the schema
            cause = error.__cause__
            message = f"{cause.full_key}={cause.value!r} is not allowed: {cause.msg.splitlines()[0]}"
        elif isinstance(error.__cause__, ConfigAttributeError | ConfigKeyError) and _keys_of(error.__cause__):
            message = _no_such_key(error.__cause__)
        elif isinstance(error.__cause__, OmegaConfBaseException):
            message += f" ({str(error.__cause__).splitlines()[0]})"
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)
    finally:
        if previous is None:
            del os.environ[HYDRA_FULL_ERROR]
        else:
            os.environ[HYDRA_FULL_ERROR] = previous


def _keys_of(error: OmegaConfBaseException) -> list[str]:
    """The keys of the config node a misspelt key was looked up in (none when unknown)."""
    parent = error.parent_node
    keys = list(parent.keys()) if isinstance(parent, DictConfig) else []
    return [str(key) for key in keys if key != "_target_"]


def _no_such_key(error: OmegaConfBaseException) -> str:
    """A key the config does not have, named with the nearest keys it does have: a misspelling is
    refused, not appended (Hydra's own message suggests `+key=...`, which adds a key no code reads)."""
    key, keys = str(error.key), _keys_of(error)
    group = error.full_key.rpartition(".")[0] or "the config"
    near = difflib.get_close_matches(key, keys, n=1)
    hint = f"did you mean {near[0]}? " if near else ""
    return f"{error.full_key}: no such key in {group}; {hint}its keys: {', '.join(keys)}"


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the entry points without Hydra: a wrong argument is one `error:` line naming
    it (exit status 2) like every other refusal, not the usage text followed by the message."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def print_config(cfg: DictConfig) -> None:
    """Print a run's header (model, data, preset, devices, run directory) on stderr; the composed
    config itself is the run directory's `.hydra/config.yaml`, where Hydra writes it."""
    from hydra.core.hydra_config import HydraConfig

    from i2i.loggers import run_choices  # its Lightning import is only for the commands that train

    choices, trainer = run_choices(cfg), cfg.trainer
    run_dir = Path(cfg.paths.output_dir)
    record = HydraConfig.get().output_subdir if HydraConfig.initialized() else None
    nodes = f" x {trainer.num_nodes} nodes" if trainer.get("num_nodes", 1) > 1 else ""
    header = [
        f"model:   {choices['model']}",
        f"data:    {choices['data']}",
        f"preset:  {choices['preset']}",
        f"devices: {trainer.accelerator} x {trainer.devices}{nodes}",
        f"run dir: {run_dir}" + (f" (config: {run_dir / record / 'config.yaml'})" if record else ""),
    ]
    print("\n".join(header), file=sys.stderr, flush=True)


# Lightning's "💡 Tip: ... try installing litlogger / litmodels" lines, logged on every start
LIGHTNING_ADVERTISING = "💡 Tip:"


class _DropAdvertising(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LIGHTNING_ADVERTISING)


def silence_lightning_advertising() -> None:
    """Drop Lightning's product tips (its rank-zero info logger) and keep its other messages."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropAdvertising) for f in logger.filters):
        logger.addFilter(_DropAdvertising())


def source_commit() -> str:
    """The git commit of the i2i source tree (`-dirty` with uncommitted changes), or "unknown"
    for an installed copy outside git; recorded beside every reported score."""
    root = Path(__file__).resolve().parents[2]
    run = lambda *args: subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    head = run("rev-parse", "HEAD")
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("-dirty" if run("status", "--porcelain").stdout.strip() else "")
