"""Input checks shared by the library and the command line.

Bad input raises `InputError` (a `ValueError`) or `InputTypeError` (a `TypeError`) whose
message names the offending argument, before any computation. The command line turns
them into a one-line message and exit status 2.
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


def check_callable(name: str, f: Any) -> None:
    if not callable(f):
        raise InputTypeError(f"{name} must be callable, got {type(f).__name__}")


def check_positive_finite(name: str, value: Any) -> float:
    """Return `value` as a float if it is a finite number > 0, else raise `InputError`."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive finite number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return v


def check_nonnegative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value
