"""What is wrong with an answer, in one line: the patterns of a wrong derivative.

`diagnose(name, got, want)` returns None when `got` matches `want`, else the first pattern
that fits, in this order: a mistake the exercise names (`alternatives`: the value that
mistake gives, by the phrase that names it), all zeros, the wrong sign, a constant factor
(among two or more nonzero entries: any two numbers differ by a factor), the transpose,
and otherwise where it differs most.

This is a small stand-in for the diagnosis of the gradient checker `jaxcalc.check`
(issue 19): for the gradient exercises, the course's checks call `diagnose` only, so
switching them to the checker's diagnosis is a change of this one function.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: Two arrays agree when |got − want| ≤ ATOL + RTOL · |want| entry by entry (float64).
RTOL, ATOL = 1e-7, 1e-10


def close(got: np.ndarray, want: np.ndarray, *, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Same shape and equal within the tolerances."""
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=rtol, atol=atol))


def diagnose(
    name: str,
    got: np.ndarray,
    want: np.ndarray,
    *,
    alternatives: Mapping[str, np.ndarray] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> str | None:
    """None if `got` equals `want` (float64 arrays of one shape), else one line on why not."""
    if close(got, want, rtol=rtol, atol=atol):
        return None
    for phrase, value in (alternatives or {}).items():
        if close(got, np.asarray(value, np.float64), rtol=rtol, atol=atol):
            return f"{name} {phrase}"
    scale = float(np.max(np.abs(want), initial=0.0))
    if not np.any(got) and scale > 0:
        return f"{name} is all zeros"
    if close(got, -want, rtol=rtol, atol=atol):
        return f"{name} has the wrong sign"
    factor = _factor(got, want) if np.count_nonzero(want) >= 2 else None  # two numbers or more
    if factor is not None and close(got, factor * want, rtol=rtol, atol=atol):
        return f"{name} is {_number(factor)} times the right value"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and close(got.T, want, rtol=rtol, atol=atol):
        return f"{name} is transposed"
    error = np.abs(got - want)
    worst = np.unravel_index(int(np.argmax(error)), got.shape) if got.ndim else ()
    relative = float(np.max(error)) / max(scale, atol)
    at = f" at index {tuple(int(i) for i in worst)}" if got.ndim else ""
    how = "close but not equal" if relative < 1e-2 else "wrong"
    return (
        f"{name} is {how}{at}: {_number(got[worst])} where {_number(want[worst])} is expected"
        f" (relative error {relative:.1e})"
    )


def _factor(got: np.ndarray, want: np.ndarray) -> float | None:
    """The c that best fits got ≈ c · want (least squares), if want is not all zeros."""
    denom = float(np.sum(want * want))
    return float(np.sum(got * want)) / denom if denom > 0 else None


def _number(x) -> str:
    return f"{float(x):.6g}"
