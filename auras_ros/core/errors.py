"""Precise exceptions shared by the core and the models: each names what is wrong and what was expected."""

from __future__ import annotations

from typing import Any, Iterable


class ConfigError(ValueError):
    """A configuration field holds a value outside its allowed set."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid {field}={value!r}: expected {allowed}")


class InputError(ValueError):
    """Data handed to a stage (an observation, a tensor, a checkpoint) does not fit what the stage expects."""

    def __init__(self, what: str, where: str, expected: str, got: Any) -> None:
        self.what = what
        self.where = where
        self.expected = expected
        self.got = got
        super().__init__(f"{where}: {what} is {got!r}, expected {expected}")


def positive_int(field: str, value: Any) -> int:
    """``value`` when it is an integer >= 1 (a bool is not), else a ConfigError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(field, value, "an integer >= 1")
    return value


def one_of(values: Iterable[Any]) -> str:
    """Format an allowed-values set for ConfigError."""
    return "one of " + ", ".join(repr(v) for v in values)
