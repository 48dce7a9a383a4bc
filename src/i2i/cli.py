"""What the command-line entry points share: the values they check before building anything,
one-line error reports (also for argparse), and the run header."""

import argparse
import errno
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NoReturn

from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from i2i.errors import I2IError, ValueRule, check_values

log = logging.getLogger("i2i")

R = ValueRule
# Values each entry point checks before it builds anything, so a wrong value (a command-line
# `key=abc` arrives as a string, `key=1.5` as a float) is refused naming the key the user typed,
# not the library call it would reach first. The typed config schema (a later issue) replaces these.
TRAIN_VALUES = (
    R("seed", "seed"),
    R("trainer.max_steps", "positive integer"),
    R("trainer.log_every_n_steps", "positive integer"),
    R("trainer.num_nodes", "positive integer"),
    R("data.image_size", "positive integer"),
    R("data.batch_size", "positive integer"),
    R("data.num_workers", "count"),
    R("data.domains.load_size", "positive integer"),
    R("data.domains.crop_size", "positive integer"),
    R("callbacks.*.every_n_iterations", "positive integer"),
    R("callbacks.*.n_images", "positive integer"),
    R("callbacks.checkpoint.keep_every", "positive integer", optional=True),
    R("model.optimizers.*.lr", "non-negative"),
    R("model.optimizers.*.weight_decay", "non-negative"),
    R("model.pool_size", "count"),
    # network depths (a negative one would silently build no layers) and widths
    R("model.n_*", "count"),
    R("model.*.n_*", "count"),
    R("model.*_blocks", "count"),
    R("model.*.num_scales", "positive integer"),
    R("model.*.dim", "positive integer"),
    R("model.*_dim", "positive integer"),
    R("model.*.nf", "positive integer"),
    R("model.*.ngf", "positive integer"),
    R("model.*.ndf", "positive integer"),
)
TRANSLATE_VALUES = (
    R("image_size", "positive integer", optional=True),
    R("batch_size", "positive integer"),
    R("k", "positive integer", optional=True),
    R("n_styles", "positive integer", optional=True),
    R("style_seed", "seed", optional=True),
)
EVAL_VALUES = (
    R("seed", "seed"),
    R("n_images", "positive integer", optional=True),
    R("metrics.batch_size", "positive integer"),
    R("metrics.kid_subsets", "positive integer"),
    R("metrics.kid_max_subset_size", "positive integer"),
    R("metrics.lpips_inputs", "positive integer"),
    R("metrics.lpips_styles", "positive integer"),
    R("metrics.kid_seed", "seed"),
)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_config(cfg: DictConfig, rules: tuple[ValueRule, ...]) -> None:
    """Check the values of `cfg` that `rules` name (resolving only those), one ConfigError naming
    the first wrong key; a required value left unset (???) is reported as missing."""
    keys = flatten(OmegaConf.to_container(cfg, resolve=False))
    matching = [key for key in keys if any(fnmatchcase(key, rule.pattern) for rule in rules)]
    check_values({key: OmegaConf.select(cfg, key, throw_on_missing=True) for key in matching}, rules)


# What the file system says about a path the user named (an output folder that is a file, a folder
# without write permission, a full disk): reported with the path, like an I2IError.
HYDRA_FULL_ERROR = "HYDRA_FULL_ERROR"
PATH_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def _is_path_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.filename is not None and (
        isinstance(error, PATH_ERRORS) or error.errno == errno.ENOSPC
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
        if isinstance(error.__cause__, OmegaConfBaseException):  # e.g. "Key 'x' is not in struct"
            message += f" ({str(error.__cause__).splitlines()[0]})"
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)
    finally:
        if previous is None:
            del os.environ[HYDRA_FULL_ERROR]
        else:
            os.environ[HYDRA_FULL_ERROR] = previous


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
