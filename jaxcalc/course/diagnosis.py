"""What is wrong with an answer, in one line: the patterns of a wrong derivative.

`diagnose(name, got, want)` returns None when `got` matches `want`, else one line: first a
mistake the exercise names (`alternatives`: the value that mistake gives, by the phrase that
names it), then the patterns of the gradient checker's diagnosis (`jaxcalc.check.diagnosis`:
zeros, the wrong sign, a constant factor, the transpose, a sum over the wrong axis, a few
wrong entries), else where it differs most. A single number has no pattern but its sign.

`name_row` turns a failed row of a `jaxcalc.check` report into the same kind of line, for
the exercises whose gradients the checker judges.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from jaxcalc.check import Row
from jaxcalc.check.diagnosis import SAFETY
from jaxcalc.check.diagnosis import diagnose as check_diagnose

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
    if got.size == 1:  # one number: any two differ by a factor, so only the sign is a pattern
        if close(got, -want, rtol=rtol, atol=atol):
            return f"{name} has the wrong sign"
        return f"{name} {_differs(got, want, atol)}"
    # The checker's diagnosis with the bound |want| · rtol + atol per entry (as `close`).
    square = ((0, 1),) if got.ndim == 2 and got.shape[0] == got.shape[1] > 1 else ()
    bound = (atol + rtol * np.abs(want)) / SAFETY
    found = check_diagnose(got, want, bound, 0.0, square=square)
    if _vague(found.pattern, found.hint):
        return f"{name} {_differs(got, want, atol)}"
    return f"{name} {found.hint}"


def name_row(row: Row, name: str) -> str:
    """A failed row of a `jaxcalc.check` report as "dW1 has the wrong sign": the checker's
    pattern, with the worst entry where the pattern is only "these entries differ"."""
    if not (_vague(row.pattern, row.hint) and row.worst):
        return f"{name} {row.hint or row.text}"
    index, yours, ref = row.worst[0]
    what = {"entries": row.hint, "mismatch": f"is wrong ({row.text})"}.get(row.pattern, "is wrong")
    at = f" at index {index}" if index else ""
    return f"{name} {what}, the worst{at}: {_number(yours)} where {_number(ref)} is expected"


def _vague(pattern: str, hint: str) -> bool:
    """The checker's pattern says no more than "these entries differ" (a factor of 1 is
    rounding of a factor near it): the worst entry says more."""
    return pattern in ("entries", "mismatch") or hint == "is off by a factor 1"


def _differs(got: np.ndarray, want: np.ndarray, atol: float) -> str:
    """ "is wrong at index (i, j): 1.2 where 1.5 is expected (relative error 2.0e-01)"."""
    error = np.abs(got - want)
    worst = np.unravel_index(int(np.argmax(error)), got.shape) if got.ndim else ()
    scale = float(np.max(np.abs(want), initial=0.0))
    relative = float(np.max(error)) / max(scale, atol)
    at = f" at index {tuple(int(i) for i in worst)}" if got.ndim else ""
    how = "close but not equal" if relative < 1e-2 else "wrong"
    return (
        f"is {how}{at}: {_number(got[worst])} where {_number(want[worst])} is expected"
        f" (relative error {relative:.1e})"
    )


def _number(x) -> str:
    return f"{float(x):.6g}"
