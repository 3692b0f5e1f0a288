"""Input checks shared by the library and the command line: the one place they live.

Bad input raises `InputError` (a `ValueError`) or `InputTypeError` (a `TypeError`) whose
message names the offending argument, before any computation. The command line turns
them into a one-line message and exit status 2; its argument types (`jaxcalc.cli`) parse
the text and call these same checks.

Each `check_*(name, value, ...)` returns the value (a number as a float) or raises
`InputError("<name> must be <what>, got <value>")`. Integers are Python ints of any size
(a bool is not an integer); a number is anything `float()` takes except a bool or a text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


class InputError(ValueError):
    """A value the user passed is out of its domain; the message names the argument."""


class InputTypeError(InputError, TypeError):
    """An argument has the wrong type (for example a non-callable function)."""


class DataError(Exception):
    """A data set is missing or broken; the message names the file and what to do."""


class RunError(Exception):
    """A run failed for a reason other than bad input (a measurement subprocess died, every
    implementation failed); the message says what failed and what to do. Exit status 1."""


def check_callable(name: str, f: Any) -> None:
    if not callable(f):
        raise InputTypeError(f"{name} must be callable, got {type(f).__name__}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any) -> int:
    """An integer > 0."""
    if not _is_int(value) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_nonnegative_int(name: str, value: Any) -> int:
    """An integer >= 0."""
    if not _is_int(value) or value < 0:
        raise InputError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _number(name: str, value: Any, what: str, ok) -> float:
    """`value` as a float if it is a number and `ok(v)`; else InputError: name must be what."""
    v = math.nan
    if not isinstance(value, bool | str | bytes):
        try:
            v = float(value)
        except (TypeError, ValueError):
            pass
    if math.isnan(v) or not ok(v):
        raise InputError(f"{name} must be {what}, got {value!r}")
    return v


def check_finite(name: str, value: Any) -> float:
    """A finite number."""
    return _number(name, value, "a finite number", math.isfinite)


def check_positive_finite(name: str, value: Any) -> float:
    """A finite number > 0."""
    return _number(name, value, "a positive finite number", lambda v: 0 < v < math.inf)


def check_nonnegative_finite(name: str, value: Any) -> float:
    """A finite number >= 0."""
    return _number(name, value, "a finite number >= 0", lambda v: 0 <= v < math.inf)


def check_in_range(name: str, value: Any, lo: float, hi: float, *, closed: bool = False) -> float:
    """A number in [lo, hi), or in [lo, hi] with `closed=True` (e.g. a decay in [0, 1))."""
    interval = f"[{lo:g}, {hi:g}{']' if closed else ')'}"
    ok = (lambda v: lo <= v <= hi) if closed else (lambda v: lo <= v < hi)
    return _number(name, value, f"a number in {interval}", ok)


def check_nonempty(name: str, shape: tuple[int, ...]) -> None:
    """`InputError` unless an array of `shape` holds at least one number (a 0-d array holds
    one). Shapes are static: safe inside `jit`, where values are not known."""
    if math.prod(shape) == 0:
        raise InputError(f"{name} has no entries (shape {tuple(shape)}); give at least one number")


def check_rows(name: str, shape: tuple[int, ...], least: int = 1, *, what: str = "row") -> None:
    """`InputError` unless an array of `shape` has at least `least` rows (its first axis):
    a batch of examples, a set of samples. Static, like `check_nonempty`."""
    if len(shape) == 0 or shape[0] < least:
        got = "a 0-d array" if not shape else f"{shape[0]} (shape {tuple(shape)})"
        raise InputError(f"{name} must hold at least {least} {what}{'s' * (least > 1)}, got {got}")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value
