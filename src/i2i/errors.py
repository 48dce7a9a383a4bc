"""Errors the command-line tools report as one line (no traceback).

Every problem a user can fix (a config value, a data folder, a checkpoint) raises one of these
with a message that names the problem and the fix; the entry points print it and exit with 2.
"""

from collections.abc import Iterable


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


def check_choice(key: str, value: object, choices: Iterable[object]) -> None:
    """Raise ConfigError unless `value` is one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(key, value, "choose one of " + ", ".join(map(str, choices)))


def check_non_negative(key: str, value: float) -> None:
    """Raise ConfigError when a weight or size is negative."""
    if value < 0:
        raise ConfigError(key, value, "must be >= 0")


def check_positive(key: str, value: float) -> None:
    """Raise ConfigError unless the value is > 0."""
    if value <= 0:
        raise ConfigError(key, value, "must be > 0")


def check_divisible(key: str, value: int, divisor: int, why: str) -> None:
    """Raise ConfigError unless `value` is a positive multiple of `divisor`."""
    if value <= 0 or value % divisor:
        raise ConfigError(key, value, f"must be a positive multiple of {divisor} ({why})")
