"""The reference: directional derivatives J d by central differences, with their own error.

Along a direction d of one argument leaf, g(t) = F(x + t d) and

    D(h) = (g(h) − g(−h)) / 2h   = J d + g‴ h²/6 + O(h⁴) + O(eps |g| / h)
    R    = (4 D(h/2) − D(h)) / 3 = J d + O(h⁴) + O(eps |g| / h)      Richardson's extrapolation

R is the reference value. Its error is bounded, element by element, by what the function
itself shows, plus the rounding bound of the formulas (eps of g's float type times the
weighted |g| they combine, over h):

    |D(h) − D(h/2)|                three times the truncation error of D(h/2), itself far
                                   above R's; it also carries the rounding noise of g
    |Δ(h) − 4 Δ(h/2)| / h          Δ(h) = g(h) − 2 g(0) + g(−h): O(h³) where g is smooth,
                                   the jump of the slope where a kink lies within reach
                                   (the one-sided differences disagree), however small h

The step starts at h = eps^(1/3) (eps of the leaf's float type; d is scaled by max(1, |x|),
so this is the classic h = eps^(1/3) · max(1, |x|)), where D(h/2)'s truncation and the
rounding meet. Where the estimate is poor, above √eps of the pair's scale (the function is
steep at the scale of h, a kink lies within reach, or g is not finite next to x), the step is
searched in `STEP_TRIES` (smaller, to step inside a kink's distance or a steep feature;
larger, where rounding dominates) and the best estimate is kept, probe by probe. A probe
whose best estimate is still above `ROUGH` is "rough": f is not differentiable at x along
it, or not finite next to it (`kinks` decides what to do).

`autodiff` is the alternative reference: the JVP of a plain twin, exact up to rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxcalc.check import evaluate
from jaxcalc.check.evaluate import Directions

#: Multiples of eps^(1/3) tried, in order, for probes whose estimate is still poor.
STEP_TRIES = (1.0, 1e-2, 1e2, 1e-4)
#: A probe whose error estimate stays above this, relative to the pair's scale, is rough.
ROUGH = 1e-3


class Estimate(NamedTuple):
    """J d for each direction of one argument leaf, per output leaf, with its error."""

    value: list[np.ndarray]  # per output leaf: (B, *out) the reference J d
    error: list[np.ndarray]  # per output leaf: (B, *out) its error bound, element-wise
    rough: np.ndarray  # (B,) bool: probes with no estimate better than ROUGH
    eps: float  # the largest eps among the leaf's and the outputs' float types


def floor(eps: float) -> float:
    """√eps: the smallest relative error a check claims to resolve in that float type."""
    return float(np.sqrt(eps))


def finite_differences(
    F: Callable, x: Sequence, a: int, dirs: Directions, g0: Sequence[np.ndarray]
) -> Estimate:
    """R and its error bound for each direction of leaf a; g0 = F(x) (module docstring)."""
    eps_x = float(jnp.finfo(x[a].dtype).eps)
    h0 = eps_x ** (1 / 3)
    n = dirs.count
    best: Estimate | None = None
    score = np.full(n, np.inf)
    scale = None
    todo = np.arange(n)
    for multiple in STEP_TRIES:
        est, trunc = _ladder(F, x, a, dirs.take(todo), h0 * multiple, g0)
        if scale is None:  # the pair's scale: root mean square of ‖J d‖ over the probes
            scale = [_rms(v) for v in est.value]
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.max(
                [
                    _per_probe(t) / sc if sc > 0 else np.where(_per_probe(t) > 0, np.inf, 0.0)
                    for t, sc in zip(trunc, scale, strict=True)
                ],
                axis=0,
            )
        s = np.where(np.isnan(s), np.inf, s)
        better = s < score[todo]
        best = est if best is None else _merge(best, est, todo, better)
        score[todo] = np.where(better, s, score[todo])
        todo = np.flatnonzero(score > floor(max(eps_x, est.eps)))
        if todo.size == 0:
            break
    return best._replace(rough=score > ROUGH)


def _ladder(F, x, a, dirs: Directions, h: float, g0) -> tuple[Estimate, list[np.ndarray]]:
    """g at ±h, ±h/2 along each direction; R, its error bound, and the part of the bound
    the function shows (|D(h) − D(h/2)| + |Δ(h) − 4Δ(h/2)| / h)."""
    b = dirs.count
    steps = np.concatenate([np.full(b, t) for t in (h, -h, h / 2, -h / 2)])
    four = Directions(
        dirs.shape, *(None if v is None else np.concatenate([v] * 4) for v in dirs[1:])
    )
    outs = evaluate.along(F, x, a, four, steps)
    eps = max([float(jnp.finfo(g.dtype).eps) for g in outs] + [float(jnp.finfo(x[a].dtype).eps)])
    value, error, trunc = [], [], []
    for g, c in zip(outs, g0, strict=True):
        g = g.astype(np.float64)
        gp, gm, gp2, gm2 = (g[i * b : (i + 1) * b] for i in range(4))
        c = np.asarray(c, np.float64)[None]
        with np.errstate(invalid="ignore", over="ignore"):
            d1 = (gp - gm) / (2 * h)
            d2 = (gp2 - gm2) / h
            kink = np.abs((gp + gm) - 4 * (gp2 + gm2) + 6 * c) / h  # |Δ(h) − 4Δ(h/2)| / h
            t = np.abs(d1 - d2) + kink
            big, half = np.abs(gp) + np.abs(gm), np.abs(gp2) + np.abs(gm2)
            rounding = eps * (4 / 3 * half + big / 6 + big + 4 * half + 6 * np.abs(c))
            value.append((4 * d2 - d1) / 3)
            error.append(t + rounding / h)
        trunc.append(t)
    return Estimate(value, error, np.zeros(b, bool), eps), trunc


def _per_probe(v: np.ndarray) -> np.ndarray:
    """The norm of each probe's row (NaN where a row is not finite)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.sqrt(np.sum(v.reshape(v.shape[0], -1) ** 2, axis=1))


def _rms(v: np.ndarray) -> float:
    """Root mean square over the probes of their norms, leaving out rows not finite."""
    norms = _per_probe(v)
    norms = norms[np.isfinite(norms)]
    return float(np.sqrt(np.mean(norms**2))) if norms.size else 0.0


def _merge(best: Estimate, est: Estimate, rows: np.ndarray, better: np.ndarray) -> Estimate:
    """`best` with the probes `rows[better]` taken from `est`."""
    take = rows[better]
    for mine, theirs in ((best.value, est.value), (best.error, est.error)):
        for m, t in zip(mine, theirs, strict=True):
            m[take] = t[better]
    return best._replace(eps=max(best.eps, est.eps))


def autodiff(ref: Callable, x: Sequence, a: int, dirs: Directions) -> Estimate:
    """The JVP of the plain twin `ref` along each direction: exact up to its rounding."""
    outs = evaluate.jvps(ref, x, a, dirs)
    eps = max(float(jnp.finfo(v.dtype).eps) for v in outs)
    value = [v.astype(np.float64) for v in outs]
    return Estimate(value, [np.zeros_like(v) for v in value], np.zeros(dirs.count, bool), eps)
