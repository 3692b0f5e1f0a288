"""Diagnosis of a wrong block: the worst entries and the common patterns of mistake.

Given yours (y), the reference (r) and the reference's error bound (e), entry by entry over a
block (or over the sampled entries of one, `mask`), the first pattern that fits is named:

    nan         yours is NaN or infinite where the reference is finite
    zeros       yours is 0 at every wrong entry (a zeroed cotangent, a forgotten term)
    sign        y = −r                                     (a flipped sign)
    factor      y = c r, c ≠ ±1, to 0.1 %; c is named as a fraction p/q (q ≤ 64) when it
                is one (a dropped 2, a mean taken as a sum: n)
    transpose   y = rᵀ over a square pair of axes          (the transpose of the right answer)
    reduction   the entries differ but Σ y = Σ r           (summed over the wrong axis)
    entries     at most a tenth of the entries are wrong   (an off-by-one, one entry missed)
    mismatch    none of these

An entry is wrong where |y − r| > 3 e + floor · max |r| (the bound of `compare`, per entry).
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import numpy as np

#: A pattern (factor, transpose) fits when it leaves at most this fraction of ‖y‖.
FIT = 1e-3
SAFETY = 3.0  # the multiple of the reference's error estimate a difference may reach
WORST = 3  # worst entries listed


class Diagnosis(NamedTuple):
    pattern: str
    text: str  # what the report prints: "wrong sign: yours = −1 × reference"
    hint: str  # a phrase after the leaf's name: "has the wrong sign"
    worst: tuple[tuple[tuple[int, ...], float, float], ...]  # (index, yours, reference)


def name_factor(c: float) -> str:
    """c as "2", "1/8", "-3/2" when it is such a fraction (q ≤ 64) to 1e-5, else "%.6g"."""
    frac = Fraction(c).limit_denominator(64)
    if frac != 0 and abs(float(frac) - c) <= 1e-5 * abs(c):
        return str(frac)
    return f"{c:.6g}"


def diagnose(
    y: np.ndarray,
    r: np.ndarray,
    e: np.ndarray,
    floor: float,
    *,
    mask: np.ndarray | None = None,
    square: tuple[tuple[int, int], ...] = (),
    whole: bool = True,
) -> Diagnosis:
    """The pattern of y against r (see the module docstring).

    Args:
      y, r, e: yours, the reference and its error bound, in the block's layout.
      floor: the relative floor of the bound (√eps of the working type).
      mask: the entries that hold a comparison (all if None).
      square: pairs of axes of equal length along which a transpose is looked for.
      whole: the entries are the whole block (so their sums can be compared).
    """
    mask = np.ones(y.shape, bool) if mask is None else mask
    yv, rv, ev = y[mask], r[mask], e[mask]
    worst = _worst(y, r, mask)
    if not np.all(np.isfinite(yv)):
        i = _first(~np.isfinite(y) & mask)
        return Diagnosis(
            "nan", f"yours is {y[i]} at {_index(i)} (reference {r[i]:.6g})", "is NaN", worst
        )
    scale = float(np.max(np.abs(rv), initial=0.0))
    wrong = np.abs(yv - rv) > SAFETY * ev + floor * scale
    n, k = yv.size, int(wrong.sum())
    if k and np.all(np.abs(yv[wrong]) <= 1e-12 * max(scale, 1e-300)):
        if np.all(np.abs(yv) <= 1e-12 * max(scale, 1e-300)):
            return Diagnosis("zeros", "yours is zero; the reference is not", "is zero", worst)
        text = f"yours is zero at {k} of {n} entries where the reference is not"
        return Diagnosis("zeros", text, "is zero where it should not be", worst)
    rr = float(np.dot(rv, rv))
    if rr > 0:
        c = float(np.dot(yv, rv) / rr)
        if np.linalg.norm(yv - c * rv) <= FIT * np.linalg.norm(yv) + SAFETY * np.linalg.norm(ev):
            if abs(c + 1) <= FIT:
                return Diagnosis(
                    "sign", "wrong sign: yours = -1 × reference", "has the wrong sign", worst
                )
            if abs(c - 1) > FIT * 1e-3:
                name = name_factor(c)
                return Diagnosis(
                    "factor",
                    f"constant factor: yours = {name} × reference",
                    f"is off by a factor {name}",
                    worst,
                )
    for axes in square:
        rt, mt = np.swapaxes(r, *axes), np.swapaxes(mask, *axes) & mask
        if mt.any() and not np.allclose(r[mt], rt[mt], rtol=FIT, atol=floor * scale):
            gap = np.linalg.norm(y[mt] - rt[mt])
            if gap <= FIT * np.linalg.norm(y[mt]) + SAFETY * np.linalg.norm(e[mt]):
                return Diagnosis(
                    "transpose",
                    "the transpose of the right answer",
                    "is transposed",
                    worst,
                )
    total_r, total_y = float(np.sum(rv)), float(np.sum(yv))
    significant = abs(total_r) >= 0.1 * float(np.sum(np.abs(rv)))
    if (
        whole
        and k >= 2
        and significant
        and abs(total_y - total_r)
        <= (SAFETY * float(np.sum(ev)) + floor * float(np.sum(np.abs(rv))))
    ):
        return Diagnosis(
            "reduction",
            "entries differ but their sum matches: reduced over the wrong axis?",
            "is summed over the wrong axis",
            worst,
        )
    if n >= 4 and k <= max(1, n // 10):
        return Diagnosis(
            "entries", f"{k} of {n} entries wrong", f"is wrong in {k} of {n} entries", worst
        )
    return Diagnosis("mismatch", f"{k} of {n} entries differ", "differs", worst)


def _first(m: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(m)[0])


def _index(i: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(j) for j in i) + "]"


def _worst(y: np.ndarray, r: np.ndarray, mask: np.ndarray):
    with np.errstate(invalid="ignore"):
        gap = np.where(mask, np.abs(y - r), -1.0)
    gap = np.where(np.isnan(gap), np.inf, gap)
    order = np.argsort(-gap, axis=None)[:WORST]
    return tuple(
        (tuple(int(j) for j in np.unravel_index(i, y.shape)), float(y.flat[i]), float(r.flat[i]))
        for i in order
        if gap.flat[i] > 0
    )


def format_index(i: tuple[int, ...]) -> str:
    return _index(i)
