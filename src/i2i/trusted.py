"""What a config read from a file may name: the allowlist of `_target_`s.

A config we did not just compose (the run config stored in a checkpoint, a run's `run.json`) is
data from whoever wrote the file, and `hydra.utils.instantiate` calls whatever its `_target_`s
name: `pathlib.Path.write_text` writes any file, `torch.load` with `weights_only: false` unpickles
anything. Hydra's own blocklist (os.system, subprocess) is no defence, so such a config is checked
against an allowlist before it is built or shown: every `_target_` (in nested dicts and lists,
`_args_` and `_partial_` nodes included) must name a class defined in i2i itself or one of the
torch/Lightning constructors the shipped configs use (`EXTERNAL_TARGETS`).

A target is checked by its string first: only a dotted name under `i2i.` is imported, and only as
the module the name spells, so no module outside i2i is ever imported to check a name. The class
must be defined in that module under that name, which rules out names that reach further through
an import (`i2i.cli.subprocess.Popen`, `i2i.train.instantiate`) and i2i's functions (which may
write files). Interpolations (`${...}`) in a config that is to be built are refused as well:
Hydra would resolve them while building, and a resolver such as `oc.create` or `oc.decode` can
turn a string into a new node with a target of its own. i2i writes its configs resolved.
"""

import importlib
import inspect
import re
from collections.abc import Iterator
from typing import Any

from i2i.errors import I2IError

# The torch/Lightning constructors of conf/ and experiments/ (optimizers, schedules, the trainer,
# its progress bar, loggers), and those of earlier i2i versions, whose checkpoints name them
# (CSVLogger: conf/logger/csv.yaml up to 1d0cf17); a recipe that needs another adds its exact name.
EXTERNAL_TARGETS = frozenset(
    {
        "torch.optim.Adam",
        "torch.optim.RMSprop",
        "torch.optim.lr_scheduler.LambdaLR",
        "torch.optim.lr_scheduler.StepLR",
        "pytorch_lightning.Trainer",
        "pytorch_lightning.callbacks.RichProgressBar",
        "pytorch_lightning.loggers.CSVLogger",
        "pytorch_lightning.loggers.TensorBoardLogger",
        "pytorch_lightning.loggers.WandbLogger",
    }
)
# Classes that earlier i2i versions named in the configs they wrote, under their names today: such a
# name is allowed as the class it now is, and `current_targets` renames it before the config is built.
MOVED_TARGETS = {
    "i2i.models.fewshot.FewShotLoss": "i2i.models.funit.FUNITLoss",  # up to bbf4374 (issue 25 §3)
}
TARGET_KEY = "_target_"
I2I_CLASS_NAME = re.compile(r"i2i(\.[A-Za-z_][A-Za-z0-9_]*)+")
INTERPOLATION = "${"
ALLOWED = "a config read from a file may name only i2i's classes and the torch/Lightning constructors it uses"


class UntrustedConfigError(I2IError):
    """A config read from a file names something i2i does not build from a file."""


def is_allowed_target(target: object) -> bool:
    """Whether `target` names a class defined in i2i (by its defining module and name) or one of
    `EXTERNAL_TARGETS`. Imports nothing but the i2i module the name spells."""
    if not isinstance(target, str):
        return False
    target = MOVED_TARGETS.get(target, target)
    if target in EXTERNAL_TARGETS:
        return True
    if not I2I_CLASS_NAME.fullmatch(target):
        return False
    module_name, _, name = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    found = vars(module).get(name)  # not getattr: a module-level __getattr__ could answer anything
    return inspect.isclass(found) and found.__module__ == module_name and found.__qualname__ == name


def current_targets(config: Any) -> Any:
    """`config` (a plain dict or list) with every target of `MOVED_TARGETS` renamed to the class's
    name today, so that a checkpoint written before the class moved still builds."""
    if isinstance(config, dict):
        return {key: _moved(v) if key == TARGET_KEY else current_targets(v) for key, v in config.items()}
    if isinstance(config, list):
        return [current_targets(value) for value in config]
    return config


def _moved(target: Any) -> Any:
    return MOVED_TARGETS.get(target, target) if isinstance(target, str) else target


def _nodes(config: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(key path, key, value) of every entry of every dict and list in `config`, depth first."""
    if isinstance(config, dict):
        entries = [(f"{path}.{key}" if path else str(key), key, value) for key, value in config.items()]
    elif isinstance(config, (list, tuple)):
        entries = [(f"{path}[{index}]", index, value) for index, value in enumerate(config)]
    else:
        return
    for key_path, key, value in entries:
        yield key_path, key, value
        yield from _nodes(value, key_path)


def check_targets(config: Any, source: object) -> None:
    """Raise UntrustedConfigError, naming the key path and the target, unless every `_target_` in
    `config` (a plain dict or list as loaded from `source`) is allowed (see `is_allowed_target`)."""
    for key_path, key, value in _nodes(config, ""):
        if key == TARGET_KEY and not is_allowed_target(value):
            raise UntrustedConfigError(
                f"{source}: {key_path}={value!r} is refused: {ALLOWED} (this file was not written by i2i "
                "or was altered; use a file i2i wrote)"
            )


def check_buildable(config: Any, source: object) -> None:
    """`check_targets`, and refuse interpolations: for a config from `source` that Hydra is to
    instantiate (which resolves `${...}` while building)."""
    check_targets(config, source)
    for key_path, _, value in _nodes(config, ""):
        if isinstance(value, str) and INTERPOLATION in value:
            raise UntrustedConfigError(
                f"{source}: {key_path}={value!r} is refused: a config read from a file is built without "
                "interpolations (i2i writes resolved configs; this file was not written by i2i "
                "or was altered)"
            )
