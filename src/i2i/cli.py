"""What the command-line entry points share: one-line error reports and config printing."""

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue
from rich.console import Console
from rich.syntax import Syntax

from i2i.errors import I2IError

log = logging.getLogger("i2i")


def _user_error(error: BaseException) -> BaseException | None:
    """The I2IError (or missing mandatory value) behind `error`, following Hydra's wrapping."""
    while error is not None:
        if isinstance(error, (I2IError, MissingMandatoryValue)):
            return error
        error = error.__cause__  # Hydra's InstantiationException wraps the original error
    return None


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn a user-fixable error into one line on stderr and exit status 2, not a traceback."""
    try:
        yield
    except Exception as error:
        cause = _user_error(error)
        if cause is None:
            raise
        message = str(cause).splitlines()[0] if isinstance(cause, MissingMandatoryValue) else str(cause)
        if isinstance(cause, MissingMandatoryValue):
            message = f"missing required value: {message} (pass it on the command line, key=value)"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def print_config(cfg: DictConfig) -> None:
    """Print the composed config as YAML (unresolved, so interpolations stay readable)."""
    Console(stderr=True).print(Syntax(OmegaConf.to_yaml(cfg), "yaml", theme="ansi_dark"))


def source_commit() -> str:
    """The git commit of the i2i source tree (`-dirty` with uncommitted changes), or "unknown"
    for an installed copy outside git; recorded beside every reported score."""
    root = Path(__file__).resolve().parents[2]
    run = lambda *args: subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    head = run("rev-parse", "HEAD")
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("-dirty" if run("status", "--porcelain").stdout.strip() else "")
