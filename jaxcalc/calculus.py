"""Derivatives by finite differences and by autodiff, side by side, and gradient checking.

Finite differences approximate f'(x) by a weighted sum of f at nearby points:

    forward      f'(x) ≈ (f(x + h) − f(x)) / h                                 error O(h)
    backward     f'(x) ≈ (f(x) − f(x − h)) / h                                 error O(h)
    central      f'(x) ≈ (f(x + h) − f(x − h)) / (2h)                          error O(h²)
    five-point   f'(x) ≈ (f(x−2h) − 8f(x−h) + 8f(x+h) − f(x+2h)) / (12h)       error O(h⁴)

A stencil of order p has truncation error ~ C hᵖ and round-off error ~ eps |f| / h, so the
total is smallest near h ≈ eps^(1/(p+1)): eps^(1/2) one-sided, eps^(1/3) central, eps^(1/5)
five-point, scaled by max(1, |x|), with eps the machine epsilon of x's float type. That is
the default step everywhere here; `jaxcalc.step_size` measures it.

Autodiff twins (`gradient`, `jacobian`, `hessian`, `hvp`) wrap `jax.grad`, `jax.jacfwd` /
`jax.jacrev`, `jax.hessian` and `jax.jvp`, jit-compiled once per f; `check_grad` compares
an analytic gradient with central differences in float64 using the cs231n relative error.

The functions f must be traceable by JAX (written with `jax.numpy`); the numerical
Jacobian and Hessian evaluate all perturbed points with `jax.lax.map` in vmapped chunks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.validation import (
    InputError,
    InputTypeError,
    check_callable,
    check_choice,
    check_nonempty,
    check_positive_finite,
)

#: name -> (offsets k, integer weights c_k, denominator d, order p):
#: f'(x) ≈ Σ c_k f(x + k h) / (d h), with truncation error O(hᵖ).
STENCILS: dict[str, tuple[tuple[int, ...], tuple[int, ...], int, int]] = {
    "forward": ((0, 1), (-1, 1), 1, 1),
    "backward": ((-1, 0), (-1, 1), 1, 1),
    "central": ((-1, 1), (-1, 1), 2, 2),
    "five-point": ((-2, -1, 1, 2), (1, -8, 8, -1), 12, 4),
}

#: cs231n thresholds on the relative error |a − n| / max(|a|, |n|).
OK_BELOW = 1e-7
WARN_BELOW = 1e-4

CHUNK = 256  # perturbed points evaluated per vmapped batch


def as_point(name: str, x: Any) -> jax.Array:
    """`x` as a float array (ints are promoted to the default float), checked finite in that
    float type (1e308 is not a float32); errors call it `name`."""
    try:
        with np.errstate(over="ignore"):  # an overflow is reported below, in one line
            a = jnp.asarray(float(x) if isinstance(x, int) else x)  # 2**40 is no int32
    except OverflowError:  # an int beyond float64
        raise InputError(f"{name} must be finite in {jnp.result_type(float)}, got {x!r}") from None
    except (TypeError, ValueError):
        raise InputTypeError(f"{name} must be a number or an array of numbers, got {x!r}") from None
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        a = a.astype(jnp.result_type(float))
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise InputTypeError(f"{name} must be real, got dtype {a.dtype}")
    if not isinstance(a, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(a))):
        overflow = not isinstance(x, jax.Array) and bool(np.all(np.isfinite(np.asarray(x, float))))
        raise InputError(f"{name} must be finite{f' in {a.dtype}' * overflow}, got {x!r}")
    return a


def default_step(x: jax.Array, order: int, *, derivative: int = 1) -> jax.Array:
    """h = eps^(1/(order+derivative)) · max(1, |x|), element-wise, eps of x's float type.

    A stencil of accuracy `order` p for the m-th `derivative` has truncation error ~ hᵖ and
    round-off error ~ eps/hᵐ; their sum is least near h = eps^(1/(p+m)).
    """
    eps = jnp.finfo(x.dtype).eps
    return eps ** (1.0 / (order + derivative)) * jnp.maximum(1.0, jnp.abs(x))


def _steps(
    x: jax.Array, h: float | None, order: int, derivative: int = 1, *, reach: int = 1
) -> jax.Array:
    """A step per element of x: the given h, or the default rule; checked by `_check_steps`."""
    if h is None:
        steps = default_step(x, order, derivative=derivative)
        _check_steps(x, steps, reach)
        return steps
    _check_steps(x, check_positive_finite("h", h), reach)
    return jnp.full(x.shape, h, dtype=x.dtype)


def _check_steps(x: jax.Array, h: Any, reach: int) -> None:
    """`InputError` unless x's float type can take the step(s) h at every element of x.

    h must be at least the spacing of floats at x (else x + h rounds to x and the quotient
    is 0, or NaN where h itself rounds to 0), and x ± reach·h must stay finite. Concrete x
    only: under `jit` nothing is checked.
    """
    if isinstance(x, jax.core.Tracer) or isinstance(h, jax.core.Tracer):
        return
    xs = np.asarray(x)
    hs = np.broadcast_to(np.asarray(h, np.float64), xs.shape)
    dtype, big = xs.dtype.name, float(jnp.finfo(xs.dtype).max)
    with np.errstate(over="ignore"):
        far = np.abs(xs.astype(np.float64)) + reach * hs
    if np.any(far > big):
        i = int(np.argmax(far > big))
        raise InputError(
            f"x ± h leaves {dtype} at x = {xs.flat[i]:g} (h = {hs.flat[i]:.3g}, largest "
            f"{dtype} {big:.3g}); use a smaller |x| or h, or float64"
        )
    spacing = np.maximum(np.spacing(np.abs(xs)), jnp.finfo(xs.dtype).tiny).astype(np.float64)
    if np.any(hs < spacing):
        i = int(np.argmax(hs < spacing))
        raise InputError(
            f"h = {hs.flat[i]:.3g} is below the {dtype} spacing at x = {xs.flat[i]:g} "
            f"({spacing.flat[i]:.3g}): x + h rounds to x; use h >= {spacing.flat[i]:.3g} "
            "or the default step"
        )


def difference(f: Callable, x: jax.Array, h: jax.Array, method: str = "central") -> jax.Array:
    """The finite-difference quotient Σ c_k f(x + k h) / (d h), with no input checks.

    Element-wise in x and h (broadcast together), so it can sweep many steps at once.
    """
    offsets, weights, denom, _ = STENCILS[method]
    total = sum(c * f(x + k * h) for k, c in zip(offsets, weights, strict=True))
    return total / (denom * h)


def derivative(
    f: Callable[[jax.Array], jax.Array],
    x: Any,
    *,
    h: float | None = None,
    method: str = "central",
) -> jax.Array:
    """f'(x) of f: R → R by finite differences.

    Args:
      f: a scalar function of a scalar (element-wise functions also take an array x).
      x: the point; its float type (float32 by default) sets eps.
      h: the step; default eps^(1/(p+1)) · max(1, |x|) for a stencil of order p.
      method: "forward", "backward", "central" or "five-point".

    Returns:
      The approximate derivative, a 0-d array of x's float type.

    >>> derivative(jnp.sin, 0.0)  # ≈ cos(0) = 1, to about eps^(2/3)
    Array(0.999996, dtype=float32)
    """
    check_callable("f", f)
    check_choice("method", method, STENCILS)
    x = as_point("x", x)
    check_nonempty("x", x.shape)
    offsets, _, _, order = STENCILS[method]
    step = _steps(x, h, order, reach=max(map(abs, offsets)))
    if h is None:
        step = (x + step) - x  # a step exactly representable next to x (Numerical Recipes §5.7)
    return difference(f, x, step, method)


def numerical_jacobian(
    f: Callable[[jax.Array], jax.Array], x: Any, *, h: float | None = None
) -> jax.Array:
    """∂f_i/∂x_j by central differences, shape f(x).shape + x.shape ((m, n) for R^n → R^m).

    Column j is (f(x + h_j e_j) − f(x − h_j e_j)) / (2 h_j), h_j = eps^(1/3) · max(1, |x_j|)
    by default; all 2n perturbed points are evaluated in vmapped chunks.
    """
    check_callable("f", f)
    x = as_point("x", x)
    check_nonempty("x", x.shape)
    check_nonempty("f(x)", jax.eval_shape(f, x).shape)
    return _central_jacobian(f, x, _steps(x, h, order=2))


@partial(jax.jit, static_argnums=0)
def _central_jacobian(f: Callable, x: jax.Array, steps: jax.Array) -> jax.Array:
    flat, steps = x.ravel(), steps.ravel()

    def column(j: jax.Array) -> jax.Array:
        e = jnp.zeros_like(flat).at[j].set(steps[j])
        up, down = (flat + e).reshape(x.shape), (flat - e).reshape(x.shape)
        return (f(up) - f(down)) / (2 * steps[j])

    cols = jax.lax.map(column, jnp.arange(flat.size), batch_size=min(flat.size, CHUNK))
    return jnp.moveaxis(cols, 0, -1).reshape(cols.shape[1:] + x.shape)


def _check_scalar_output(f: Callable, x: jax.Array) -> None:
    shape = jax.eval_shape(f, x).shape
    if shape != ():
        raise InputError(f"f must return a scalar, got shape {shape}")


def numerical_gradient(
    f: Callable[[jax.Array], jax.Array], x: Any, *, h: float | None = None
) -> jax.Array:
    """∇f(x) of a scalar f by central differences, shaped like x.

    ∂f/∂x_j ≈ (f(x + h_j e_j) − f(x − h_j e_j)) / (2 h_j), h_j = eps^(1/3) · max(1, |x_j|).
    """
    check_callable("f", f)
    x = as_point("x", x)
    check_nonempty("x", x.shape)
    _check_scalar_output(f, x)
    return _central_jacobian(f, x, _steps(x, h, order=2))


def numerical_hessian(
    f: Callable[[jax.Array], jax.Array], x: Any, *, h: float | None = None
) -> jax.Array:
    """∂²f/∂x_i∂x_j of a scalar f by central differences, shape x.shape + x.shape.

    H_ij ≈ [f(x + h_i e_i + h_j e_j) − f(x + h_i e_i − h_j e_j)
            − f(x − h_i e_i + h_j e_j) + f(x − h_i e_i − h_j e_j)] / (4 h_i h_j),
    with error O(h²) + O(eps/h²), so h_i = eps^(1/4) · max(1, |x_i|) by default;
    symmetrised as (H + Hᵀ)/2.
    """
    check_callable("f", f)
    x = as_point("x", x)
    check_nonempty("x", x.shape)
    _check_scalar_output(f, x)
    return _central_hessian(f, x, _steps(x, h, order=2, derivative=2, reach=2))


@partial(jax.jit, static_argnums=0)
def _central_hessian(f: Callable, x: jax.Array, steps: jax.Array) -> jax.Array:
    flat, steps = x.ravel(), steps.ravel()
    n = flat.size

    def at(v: jax.Array) -> jax.Array:
        return f(v.reshape(x.shape))

    def entry(ij: jax.Array) -> jax.Array:
        i, j = ij // n, ij % n
        ei = jnp.zeros_like(flat).at[i].set(steps[i])
        ej = jnp.zeros_like(flat).at[j].set(steps[j])
        total = at(flat + ei + ej) - at(flat + ei - ej) - at(flat - ei + ej) + at(flat - ei - ej)
        return total / (4 * steps[i] * steps[j])

    hess = jax.lax.map(entry, jnp.arange(n * n), batch_size=min(n * n, CHUNK)).reshape(n, n)
    return (0.5 * (hess + hess.T)).reshape(x.shape + x.shape)


@partial(jax.jit, static_argnums=(0, 1))
def _compiled(transform: Callable, f: Callable, *args: jax.Array) -> jax.Array:
    """transform(f)(*args), jit-compiled once per (transform, f) and argument shapes."""
    return transform(f)(*args)


def gradient(f: Callable[[jax.Array], jax.Array], x: Any) -> jax.Array:
    """∇f(x) by reverse-mode autodiff (`jax.grad`): one backward pass."""
    check_callable("f", f)
    x = as_point("x", x)
    check_nonempty("x", x.shape)
    return _compiled(jax.grad, f, x)


def jacobian(f: Callable[[jax.Array], jax.Array], x: Any, *, mode: str = "reverse") -> jax.Array:
    """∂f_i/∂x_j by autodiff, shape f(x).shape + x.shape.

    mode "forward" (`jax.jacfwd`, one JVP per input: best when n ≤ m) or
    "reverse" (`jax.jacrev`, one VJP per output: best when m ≤ n).
    """
    check_callable("f", f)
    check_choice("mode", mode, ("forward", "reverse"))
    x = as_point("x", x)
    check_nonempty("x", x.shape)
    return _compiled(jax.jacfwd if mode == "forward" else jax.jacrev, f, x)


def hessian(f: Callable[[jax.Array], jax.Array], x: Any) -> jax.Array:
    """∂²f/∂x_i∂x_j by autodiff (`jax.hessian` = forward over reverse), x.shape + x.shape."""
    check_callable("f", f)
    x = as_point("x", x)
    check_nonempty("x", x.shape)
    return _compiled(jax.hessian, f, x)


def _forward_over_reverse(f: Callable) -> Callable:
    return lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1]


def hvp(f: Callable[[jax.Array], jax.Array], x: Any, v: Any) -> jax.Array:
    """The Hessian-vector product H(x) v without forming H: forward over reverse.

    H v = d/dε ∇f(x + ε v) at ε = 0, i.e. `jax.jvp(jax.grad(f), (x,), (v,))`; costs a
    few gradient evaluations, and memory O(n) rather than O(n²).
    """
    check_callable("f", f)
    x, v = as_point("x", x), as_point("v", v)
    check_nonempty("x", x.shape)
    if v.shape != x.shape:
        raise InputError(f"v must have the shape of x {x.shape}, got {v.shape}")
    return _compiled(_forward_over_reverse, f, x, v.astype(x.dtype))


def relative_error(a: jax.Array, n: jax.Array) -> jax.Array:
    """max over elements of |a − n| / max(|a|, |n|), counting 0 where both are 0.

    NaN when any element of either side is NaN or infinite: no error can be measured there,
    and a check must fail rather than skip it.
    """
    scale = jnp.maximum(jnp.abs(a), jnp.abs(n))
    rel = jnp.where(scale > 0, jnp.abs(a - n) / jnp.where(scale > 0, scale, 1), 0)
    finite = jnp.all(jnp.isfinite(a)) & jnp.all(jnp.isfinite(n))
    return jnp.where(finite, jnp.max(rel, initial=0.0), jnp.nan)


def verdict(error: float) -> str:
    """cs231n: "ok" below 1e-7, "warn" below 1e-4 (fine only with kinks), else "fail"
    (also for a NaN error: a gradient or reference that is not finite)."""
    if error < OK_BELOW:
        return "ok"
    return "warn" if error < WARN_BELOW else "fail"


class GradCheck(NamedTuple):
    """A gradient check: the max relative error per array and overall, its verdict, and the
    report of `jaxcalc.check` it was computed from (diagnosis of a failure included)."""

    errors: dict[str, float]  # array name (path in the pytree, "x" for a bare array) -> error
    max_error: float
    verdict: str  # "ok" | "warn" | "fail"
    analytic: Any  # the gradient checked, float64, same structure as x
    numerical: Any  # the reference: central differences in float64, same structure as x
    report: Any = None  # the jaxcalc.check.Report

    def __str__(self) -> str:
        rows = ", ".join(f"{k}: {v:.2e}" for k, v in self.errors.items())
        text = f"{self.verdict} (max relative error {self.max_error:.2e}; {rows})"
        if self.report is not None and self.report.verdict != "ok":
            text += f"; {self.report.summary()}"
        return text


def check_grad(
    f: Callable[[Any], jax.Array],
    x: Any,
    grad_fn: Callable[[Any], Any] | None = None,
) -> GradCheck:
    """Compare `grad_fn(x)` (default `jax.grad(f)`) with central differences, in float64.

    x may be an array or a pytree of arrays (e.g. a dict of parameters); f maps it to a
    scalar and grad_fn returns the same structure. This is `jaxcalc.check.check_grads` in
    full mode, with x64 enabled and x cast to float64: every entry against central
    differences with Richardson's extrapolation, its error estimated from the function. Each
    array gets the cs231n relative error max |a − n| / max(|a|, |n|); the verdict is that
    of the check (a difference beyond the reference's own error fails; see
    `jaxcalc.check`), made no better than the cs231n rule on the worst error: "ok" < 1e-7 ≤
    "warn" < 1e-4 ≤ "fail". A gradient off by 1% fails; a NaN or infinite entry on either
    side makes that array's error NaN, and the verdict "fail".
    """
    from jaxcalc import check

    check_callable("f", f)
    if grad_fn is not None:
        check_callable("grad_fn", grad_fn)
    with jax.enable_x64(True):
        x64 = jax.tree.map(lambda a: as_point("x", a).astype(jnp.float64), x)
        leaves, treedef = jax.tree_util.tree_flatten_with_path(x64)
        if sum(a.size for _, a in leaves) == 0:
            raise InputError("x must hold at least one number")
        grad = grad_fn if grad_fn is not None else _compiled_grad(f)
        analytic = grad(x64)
        if jax.tree.structure(analytic) != jax.tree.structure(x64):
            raise InputError("grad_fn must return the same structure as x")
        analytic = jax.tree.map(lambda a: np.asarray(a, np.float64), analytic)
        for (path, a), g in zip(leaves, jax.tree.leaves(analytic), strict=True):
            if g.shape != a.shape:
                name = _name(path)
                raise InputError(f"grad_fn returned shape {g.shape} for {name}, expected {a.shape}")
        report = check.check_grads(f, (x64,), grad_fn=grad, mode="full")
    by_arg = {r.arg: r.reference for r in report.rows if r.reference is not None}
    numerical, errors = [], {}
    for (path, a), g, name in zip(
        leaves, jax.tree.leaves(analytic), _arg_names(f, leaves), strict=True
    ):
        n = by_arg.get(name)
        n = np.full(a.shape, np.nan) if n is None else np.asarray(n, np.float64).reshape(a.shape)
        numerical.append(n)
        with jax.enable_x64(True):
            errors[_name(path)] = float(relative_error(jnp.asarray(g), jnp.asarray(n)))
    worst = max(errors.values(), key=lambda e: (math.isnan(e), e))  # a NaN is the worst
    verdicts = ("ok", "warn", "fail")
    final = max(report.verdict, verdict(worst), key=verdicts.index)
    numerical = jax.tree_util.tree_unflatten(treedef, numerical)
    return GradCheck(errors, worst, final, analytic, numerical, report)


def _name(path: tuple) -> str:
    return jax.tree_util.keystr(path, simple=True, separator="/") or "x"


def _arg_names(f: Callable, leaves: list) -> list[str]:
    """The names `jaxcalc.check` gives the leaves of f's one argument."""
    from jaxcalc.check.problem import arg_names, leaf_name

    (arg,) = arg_names(f, 1)
    return [leaf_name(arg, path) for path, _ in leaves]


def _compiled_grad(f: Callable) -> Callable:
    return lambda x: _compiled(jax.grad, f, x)
