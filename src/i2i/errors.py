"""Errors the command-line tools report as one line (no traceback).

Every problem a user can fix (a config value, a data folder, a checkpoint) raises one of these
with a message that names the problem and the fix; the entry points print it and exit with 2.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any


class I2IError(Exception):
    """A user-fixable problem, reported in one line."""


class ConfigError(I2IError):
    """A config value is out of its allowed range."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")
        self.key = key


class DataError(I2IError):
    """A data folder or image cannot be used."""


class CheckpointError(I2IError):
    """A checkpoint is missing, unreadable or not an i2i checkpoint."""


class NonFiniteLossError(I2IError):
    """A loss became NaN or inf during training."""


class NonFiniteGradientError(NonFiniteLossError):
    """A gradient became NaN or inf during training (the loss was finite)."""


class DivergedError(I2IError):
    """A loss or a network's parameter norm grew beyond its configured bound during training."""


def check_choice(key: str, value: object, choices: Iterable[object]) -> None:
    """Raise ConfigError unless `value` is one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(key, value, "choose one of " + ", ".join(map(str, choices)))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # True is an int to Python


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_number(key: str, value: object) -> None:
    """Raise ConfigError unless `value` is a number (a command-line `key=abc` arrives as a string)."""
    if not _is_number(value):
        raise ConfigError(key, value, "must be a number")


def check_integer(key: str, value: object, minimum: int | None = None, maximum: int | None = None) -> None:
    """Raise ConfigError unless `value` is a whole number, within `minimum` and `maximum` when given."""
    if not _is_integer(value):
        at_least = f" >= {minimum}" if minimum is not None else ""
        raise ConfigError(key, value, f"must be a whole number{at_least}")
    if minimum is not None and value < minimum:
        raise ConfigError(key, value, f"must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(key, value, f"must be <= {maximum}")


def check_non_negative(key: str, value: float) -> None:
    """Raise ConfigError when a weight or size is negative or not a number."""
    check_number(key, value)
    if value < 0:
        raise ConfigError(key, value, "must be >= 0")


def check_positive(key: str, value: float) -> None:
    """Raise ConfigError unless the value is a number > 0."""
    check_number(key, value)
    if value <= 0:
        raise ConfigError(key, value, "must be > 0")


def check_divisible(key: str, value: int, divisor: int, why: str) -> None:
    """Raise ConfigError unless `value` is a positive multiple of `divisor`."""
    if not _is_integer(value) or value <= 0 or value % divisor:
        raise ConfigError(key, value, f"must be a positive multiple of {divisor} ({why})")


MAX_SEED = 2**32 - 1  # the random generators take seeds 0 ... 2^32 - 1 (numpy's range, as Lightning)
# The checks a `ValueRule` names, each `(key, value) -> None`.
CHECKS: dict[str, Callable[[str, Any], None]] = {
    "seed": lambda key, value: check_integer(key, value, 0, MAX_SEED),
    "count": lambda key, value: check_integer(key, value, 0),
    "positive integer": lambda key, value: check_integer(key, value, 1),
    "non-negative": check_non_negative,
    "positive": check_positive,
}


@dataclass(frozen=True)
class ValueRule:
    """Every config key matching `pattern` (dotted; `*` matches any characters, dots included) must
    pass the check named `check` (a key of CHECKS); with `optional`, null is allowed too."""

    pattern: str
    check: str
    optional: bool = False


def check_values(values: Mapping[str, Any], rules: Iterable[ValueRule]) -> None:
    """Refuse the first of `values` (dotted key -> value) that breaks a rule, naming its key."""
    for rule in rules:
        for key, value in values.items():
            if fnmatchcase(key, rule.pattern) and not (rule.optional and value is None):
                CHECKS[rule.check](key, value)
