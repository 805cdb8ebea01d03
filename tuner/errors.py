"""The one exception type for mistakes a user can make in a config or on the command line, and
the checks every part of tuner raises it from."""

from __future__ import annotations

from typing import Any


class ConfigError(Exception):
    """A bad input, reported as one line that names the key and how to fix it.

    The entry point prints it as ``error: <key>: <problem>; <fix>`` and exits with code 2,
    before Ray starts and before anything is written.
    """

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        self.key, self.problem, self.fix = key, problem, fix
        super().__init__(f"{key}: {problem}; {fix}" if fix else f"{key}: {problem}")


def check_count(value: Any, key: str, minimum: int = 1, fix: str = "") -> int:
    """A whole number of things (trials, epochs, seeds), at least ``minimum``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(key, f"must be {kind}, got {value!r}", fix or f"set {key} to {kind}")
    return value


def check_positive(value: Any, key: str, fix: str = "") -> float:
    """A number above zero (CPUs, seconds, weights)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(key, f"must be a positive number, got {value!r}", fix or f"set {key} to a positive number")
    return value


def first_line(err: BaseException) -> str:
    """An exception's message cut to its first line, or its type when it has none: what a one-line
    error or warning quotes of a library's exception."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
