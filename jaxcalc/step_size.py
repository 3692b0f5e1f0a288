"""The step-size study: the error of a finite difference against its step h, a V shape.

A stencil of order p has truncation error ~ C hᵖ, falling with h, and round-off error
~ eps |f| / h, rising as h shrinks; on log-log axes their sum is a V with its minimum near
the default step eps^(1/(p+1)) · max(1, |x|) of `jaxcalc.calculus`. `step_size_study` sweeps
h over fourteen decades and measures both arms, in float32 and float64, for forward and
central differences (`jaxcalc derivatives` prints and plots it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.calculus import STENCILS, as_point, default_step, difference
from jaxcalc.validation import InputError, check_choice

_difference = jax.jit(difference, static_argnums=(0, 3))


#: The study's functions: name -> (f, f'), both element-wise.
FUNCTIONS: dict[str, tuple[Callable, Callable]] = {
    "sin": (jnp.sin, jnp.cos),
    "exp": (jnp.exp, jnp.exp),
}

STUDY_METHODS = ("forward", "central")
STUDY_DTYPES = ("float32", "float64")


class StepStudy(NamedTuple):
    """Errors of finite differences for f'(x) over a sweep of steps h."""

    function: str
    x: float
    steps: np.ndarray  # (k,) from large to small
    errors: dict[str, dict[str, np.ndarray]]  # errors[dtype][method], shape (k,)
    best_step: dict[str, dict[str, float]]  # the h of least error, per dtype and method
    default_step: dict[str, dict[str, float]]  # the rule eps^(1/(p+1)) · max(1, |x|)
    spacing: dict[str, float]  # per dtype, the float spacing at x: a smaller h leaves x + h = x


#: The study averages over this many points spread over x ± 1% · max(1, |x|).
STUDY_POINTS = 41


def step_size_study(
    function: str = "sin",
    x: float = 1.0,
    *,
    steps: np.ndarray | None = None,
) -> StepStudy:
    """The error of forward and central differences for h from 1e-1 to 1e-15 (times
    max(1, |x|), like the default step, so that the sweep suits any x).

    Truncation error falls as h (forward) or h² (central) while round-off error
    eps |f(x)| / h rises, a V shape on log-log axes with its minimum near the default step.
    The error for each h is the root mean square of D_h f − f' over 41 points spread over
    x ± 1% · max(1, |x|), so the minimum reflects the typical error rather than a lucky
    cancellation at one point. Differences are computed in float32 and float64 and compared
    with f' evaluated in float64 at the same (rounded) points. Steps below the float spacing
    at x (`spacing`) leave x + h = x: there the quotient is 0 and the error |f'(x)|.
    """
    check_choice("function", function, FUNCTIONS)
    f, fprime = FUNCTIONS[function]
    xf = float(as_point("x", x))
    if steps is None:
        steps = np.logspace(-1, -15, 57) * max(1.0, abs(xf))
    steps = np.asarray(steps, dtype=np.float64)
    if steps.ndim != 1 or steps.size == 0 or not np.all(np.isfinite(steps) & (steps > 0)):
        raise InputError("steps must be a non-empty 1-D array of positive finite numbers")
    spread = xf + max(1.0, abs(xf)) * np.linspace(-0.01, 0.01, STUDY_POINTS)
    errors: dict[str, dict[str, np.ndarray]] = {}
    best: dict[str, dict[str, float]] = {}
    rule: dict[str, dict[str, float]] = {}
    with jax.enable_x64(True):
        for dtype in STUDY_DTYPES:
            xs = jnp.asarray(spread, dtype=dtype)[:, None]  # (m, 1) against h (1, k)
            if not bool(jnp.all(jnp.isfinite(f(xs)) & jnp.isfinite(fprime(xs)))):
                raise InputError(f"x = {xf} overflows {function} in {dtype}")
            exact = fprime(xs.astype(jnp.float64))
            hs = jnp.asarray(steps, dtype=dtype)[None, :]
            errors[dtype], best[dtype], rule[dtype] = {}, {}, {}
            for method in STUDY_METHODS:
                diff = _difference(f, xs, hs, method).astype(jnp.float64) - exact
                err = np.sqrt(np.mean(np.asarray(diff) ** 2, axis=0))
                errors[dtype][method] = err
                best[dtype][method] = float(steps[np.argmin(err)])
                order = STENCILS[method][3]
                rule[dtype][method] = float(default_step(jnp.asarray(xf, dtype), order))
    spacing = {d: float(np.spacing(np.abs(np.asarray(xf, d)))) for d in STUDY_DTYPES}
    return StepStudy(function, xf, steps, errors, best, rule, spacing)
