"""A learner's function, called safely: whatever it does, one line comes back.

`call` runs the learner's code and turns a stub ("not written yet"), any exception, or
nothing returned into a `Feedback`; `as_array` turns what came back into a float64 array of
the expected shape, or a `Feedback` that says why it cannot (a Python list, a string, the
wrong shape, NaN). `checked` wraps a check's body: float64, and any `Failure` or error of
its own turned into one line. A check never lets a traceback through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxcalc.course.diagnosis import diagnose

NOT_WRITTEN = "not written yet"


class Feedback(NamedTuple):
    """The verdict of a check: `ok`, and one line for the learner."""

    ok: bool
    message: str
    written: bool = True  # False for a stub: "not written yet"

    def __str__(self) -> str:
        return ("✓ " if self.ok else "✗ " if self.written else "○ ") + self.message

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython shows the line, not a tuple
        printer.text(str(self))


class Failure(Exception):
    """Raised inside a check to stop at the first problem; carries its `Feedback`."""

    def __init__(self, feedback: Feedback):
        super().__init__(feedback.message)
        self.feedback = feedback


def fail(message: str) -> Failure:
    return Failure(Feedback(False, message))


def checked(title: str) -> Callable:
    """Run a check body in float64 (rank promotion allowed: a learner broadcasts freely);
    its Failure, or any error of its own, becomes one line."""

    def wrap(body: Callable[..., str]) -> Callable[..., Feedback]:
        @functools.wraps(body)
        def check(*fns) -> Feedback:
            try:
                with jax.enable_x64(True), jax.numpy_rank_promotion("allow"):
                    return Feedback(True, body(*fns))
            except Failure as f:
                return f.feedback
            except Exception as e:  # noqa: BLE001 - an answer this check cannot read
                return Feedback(False, f"{title}: could not check the answer ({type(e).__name__})")

        return check

    return wrap


def judge(name: str, got, want, **alternatives) -> None:
    """`Failure` with `diagnose`'s line unless got equals want."""
    message = diagnose(name, got, np.asarray(want, np.float64), alternatives=alternatives)
    if message:
        raise fail(message)


def scalar(name: str, value) -> np.ndarray:
    """`as_array` of one number."""
    return as_array(name, value, (), shape_hints={(1,): "return a number, not a 1-entry array"})


def call(fn: Callable, *args: Any, name: str | None = None) -> Any:
    """fn(*args); a stub, an exception or `None` raise `Failure` with one line."""
    name = name or getattr(fn, "__name__", "your function")
    if not callable(fn):
        raise fail(f"{name} is a {type(fn).__name__}, not a function: define it with def")
    try:
        out = fn(*args)
    except NotImplementedError:
        raise Failure(Feedback(False, f"{name}: {NOT_WRITTEN}", written=False)) from None
    except Exception as e:  # noqa: BLE001 - the learner's code may raise anything
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        text = text if len(text) <= 150 else text[:147] + "..."
        raise fail(f"{name} raised {type(e).__name__}" + (f": {text}" if text else "")) from None
    if out is None:
        raise Failure(Feedback(False, f"{name}: {NOT_WRITTEN} (it returns None)", written=False))
    return out


def as_array(
    name: str,
    value: Any,
    shape: tuple[int, ...],
    *,
    shape_hints: Mapping[tuple[int, ...], str] | None = None,
) -> np.ndarray:
    """`value` as a float64 array of `shape`, else `Failure` naming what is wrong.

    `shape_hints` maps a wrong shape to the mistake that makes it (for example the shape of
    a sum over the wrong axis); a transposed shape is recognised by itself.
    """
    if isinstance(value, list | tuple):
        kind = type(value).__name__
        raise fail(f"{name} is a Python {kind}: return an array (jnp.array(...) or jnp.stack)")
    if isinstance(value, str | bytes | dict):
        raise fail(f"{name} is a {type(value).__name__}: return an array of shape {shape}")
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - an object that is not an array in any sense
        raise fail(f"{name} is a {type(value).__name__}, not an array") from None
    if array.dtype == bool:
        array = array.astype(np.float64)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise fail(f"{name} holds {array.dtype} values: return numbers of shape {shape}")
    if array.shape != tuple(shape):
        hint = (shape_hints or {}).get(array.shape)
        if hint is None and array.ndim == 2 and array.shape == tuple(shape)[::-1]:
            hint = "transposed?"
        if hint is None and array.size == int(np.prod(shape)):
            hint = "the right numbers in the wrong arrangement? reshape it"
        message = f"{name} has shape {array.shape} where {tuple(shape)} is expected"
        raise fail(message + (f": {hint}" if hint else ""))
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        what = "NaN" if np.isnan(array[bad]).any() else "inf"
        at = f" at index {where}" if array.ndim else ""
        raise fail(f"{name} is {what}{at}: look for a division by zero or an overflow")
    return array
