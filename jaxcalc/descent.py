"""Gradient descent on functions, its convergence theory, and divergence made readable.

The loop is x_{t+1} = x_t − α ∇f(x_t) as one `lax.scan`, returning the whole trajectory
(steps + 1 points, x_0 first); `optimize` runs the same loop with any optimiser of
`jaxcalc.optim`, `newton` with the Hessian.

Theory for the 1-D quadratic f(x) = a x² + b x + c (a > 0): f'(x) = 2a(x − x*) with
x* = −b/(2a), so one step gives x_{t+1} − x* = (1 − 2aα)(x_t − x*), hence

    x_t − x* = (1 − 2aα)^t (x_0 − x*)

It converges iff |1 − 2aα| < 1, i.e. 0 < α < 1/a (= 2/f''), monotonically for α < 1/(2a),
in one step at α = 1/(2a) (= 1/f''), and oscillating for 1/(2a) < α < 1/a.
For a bowl ½ xᵀHx with eigenvalues λ_min ≤ λ_max, κ = λ_max/λ_min, the best fixed step
α = 2/(λ_min + λ_max) contracts ‖x_t − x*‖ by (κ − 1)/(κ + 1) per step: the zig-zag.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.optim import (
    GradientTransformation,
    adam,
    apply_updates,
    check_learning_rate,
    rmsprop,
    sgd,
)
from jaxcalc.validation import (
    InputError,
    check_callable,
    check_in_range,
    check_nonempty,
    check_nonnegative_int,
    check_positive_finite,
)

Function = Callable[[jax.Array], jax.Array]


def _check(f: Function, x0: jax.Array, steps: int) -> jax.Array:
    check_callable("f", f)
    check_nonnegative_int("steps", steps)
    x0 = jnp.asarray(x0)
    check_nonempty("x0", x0.shape)
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        x0 = x0.astype(jnp.result_type(float))
    return x0


def optimize(f: Function, x0: jax.Array, opt: GradientTransformation, steps: int) -> jax.Array:
    """Minimise f from x0 with `opt` (from `jaxcalc.optim`); the trajectory (steps+1, *x0.shape)."""
    x0 = _check(f, x0, steps)
    grad = jax.grad(f)

    def step(carry, _):
        x, state = carry
        updates, state = opt.update(grad(x), state, x)
        x = apply_updates(x, updates)
        return (x, state), x

    _, xs = jax.lax.scan(step, (x0, opt.init(x0)), length=steps)
    return jnp.concatenate([x0[None], xs])


def gradient_descent(f: Function, x0: jax.Array, learning_rate: float, steps: int) -> jax.Array:
    """x_{t+1} = x_t − α ∇f(x_t); the trajectory x_0 … x_steps, shape (steps + 1, *x0.shape).

    Example:
        >>> xs = gradient_descent(lambda x: (x - 3.0) ** 2, 0.0, 0.25, 10)  # xs[-1] ≈ 3
    """
    return optimize(f, x0, sgd(learning_rate), steps)


def newton(
    f: Function,
    x0: jax.Array,
    steps: int,
    *,
    grad: Function | None = None,
    hessian: Function | None = None,
) -> jax.Array:
    """Newton's method x_{t+1} = x_t − H(x_t)⁻¹ ∇f(x_t); the trajectory (steps + 1, *x0.shape).

    `grad` and `hessian` default to `jax.grad(f)` and `jax.hessian(f)`; pass others (finite
    differences, say) to take the same steps with them. On a quadratic it lands on the
    minimum in one step, whatever the condition number; near a saddle or a maximum it goes
    there too, as it seeks ∇f = 0 (which is how `exercises` finds every critical point).
    """
    x0 = _check(f, x0, steps)
    grad = jax.grad(f) if grad is None else grad
    hessian = jax.hessian(f) if hessian is None else hessian
    check_callable("grad", grad)
    check_callable("hessian", hessian)

    def step(x, _):
        g = grad(x).reshape(-1)
        h = hessian(x).reshape(g.size, g.size)
        x = x - jnp.linalg.solve(h, g).reshape(x.shape)
        return x, x

    _, xs = jax.lax.scan(step, x0, length=steps)
    return jnp.concatenate([x0[None], xs])


# --- divergence -----------------------------------------------------------------------


class DescentResult(NamedTuple):
    """A run of a descent method, cut where it diverged.

    trajectory: the iterates up to (not including) the first bad one.
    values: f at those iterates.
    diverged_at: the first step whose |x| exceeded `bound` or whose x or f(x) was not
      finite, else None.
    message: "ran…" summary, "diverged at step k: …; try alpha < …", or "did not move…".
    stalled: x never moved although ∇f(x0) ≠ 0: every update was below the float spacing.
    """

    trajectory: np.ndarray
    values: np.ndarray
    diverged_at: int | None
    message: str
    stalled: bool = False


def curvature_bound(f: Function, x: jax.Array) -> float:
    """2 / λ_max(∇²f(x)): the largest stable gradient-descent step near x (1/a for a x²+…)."""
    x = jnp.asarray(x)
    h = jax.hessian(f)(x).reshape(x.size, x.size)
    lam = float(jnp.max(jnp.abs(jnp.linalg.eigvalsh(h))))
    return math.inf if lam == 0 else 2.0 / lam  # NaN where the Hessian is not finite


def descend(
    f: Function,
    x0: jax.Array,
    method: float | GradientTransformation,
    steps: int,
    *,
    bound: float = 1e6,
) -> DescentResult:
    """Run gradient descent (method = learning rate α) or an optimiser, and detect divergence.

    The scan always runs all `steps`; afterwards the first step whose iterate has
    max |x| > `bound` · max(1, max |x0|), or x or f(x) not finite, is reported, with for
    gradient descent the step that would be stable near x0 (2/λ_max of the Hessian, 1/a for
    a 1-D quadratic). A run that never moved from x0 although ∇f(x0) ≠ 0 (steps below the
    float spacing at x0) is `stalled`, and says so. `InputError` if x0 or f(x0) is not finite.
    """
    check_callable("f", f)
    check_positive_finite("bound", bound)
    if isinstance(method, GradientTransformation):
        xs = optimize(f, x0, method, steps)
    else:
        check_learning_rate(method)
        xs = gradient_descent(f, x0, method, steps)
    xs = np.asarray(xs)
    flat = xs.reshape(xs.shape[0], -1)
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.asarray(jax.vmap(f)(jnp.asarray(xs)))
        finite = np.isfinite(flat).all(axis=1) & np.isfinite(values)
        if not finite[0]:
            raise InputError(f"x0 and f(x0) must be finite, got f({flat[0]}) = {values[0]}")
        limit = bound * max(1.0, float(np.abs(flat[0]).max(initial=0)))
        bad = ~finite | (np.abs(flat).max(axis=1, initial=0) > limit)
    k = int(np.argmax(bad)) if bad.any() else None
    kept, values = (xs, values) if k is None else (xs[:k], values[:k])
    stalled = k is None and steps > 0 and np.array_equal(xs[-1], xs[0])
    stalled = stalled and bool(np.any(np.asarray(jax.grad(f)(jnp.asarray(xs[0]))) != 0))
    if stalled:
        spacing = np.spacing(np.abs(flat[0])).min()
        message = (
            f"did not move in {steps} steps: every step is below the {xs.dtype} spacing at "
            f"x0 ({spacing:.2g}); try a larger learning rate"
        )
    elif k is None:
        message = f"ran {steps} steps: f = {values[-1]:.6g} at the end"
    else:
        alpha = (
            math.nan if isinstance(method, GradientTransformation) else curvature_bound(f, xs[0])
        )
        if math.isfinite(alpha):
            hint = f"try alpha < {alpha:.4g} (2 / largest curvature at x0)"
        else:
            hint = "try a smaller learning rate"
        what = f"|x| exceeded {limit:g}" if finite[k] else "x or f(x) overflowed"
        message = f"diverged at step {k}: {what}; {hint}"
    return DescentResult(kept, values, k, message, stalled)


# --- quadratic theory ---------------------------------------------------------------------


def _check_a(a: float) -> float:
    return check_positive_finite("a", a)  # a > 0: a convex parabola


def quadratic(a: float, b: float, c: float) -> Function:
    """f(x) = a x² + b x + c."""
    _check_a(a)
    return lambda x: a * x**2 + b * x + c


def quadratic_minimum(a: float, b: float) -> float:
    """x* = −b / (2a)."""
    return -b / (2 * _check_a(a))


def quadratic_factor(a: float, learning_rate: float) -> float:
    """1 − 2aα: the factor multiplying x_t − x* at each step (|·| < 1 converges)."""
    return 1 - 2 * _check_a(a) * learning_rate


def stability_bound(a: float) -> float:
    """Gradient descent on a x² + b x + c converges iff 0 < α < 1/a (that is 2/f'')."""
    return 1 / _check_a(a)


def optimal_step(a: float) -> float:
    """α = 1/(2a) (that is 1/f'') reaches x* in one step."""
    return 1 / (2 * _check_a(a))


#: The largest condition number of `bowl`: f = ½ xᵀHx carries a rounding error of about
#: κ · eps · |x|² in float64, so beyond 1/√eps ≈ 6.7e7 it keeps less than half its digits
#: (at κ = 1e300 a final f came out at −2.65e+283 on this positive-definite bowl).
KAPPA_MAX = float(np.finfo(np.float64).eps ** -0.5)


def bowl(kappa: float, angle: float = 0.0) -> Function:
    """f(x) = ½ xᵀ H x, H with eigenvalues 1 and κ ≤ `KAPPA_MAX`, its axes turned by `angle`
    radians."""
    check_in_range("kappa", kappa, 1.0, KAPPA_MAX, closed=True)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    h = rot @ np.diag([1.0, kappa]) @ rot.T

    def f(x: jax.Array) -> jax.Array:
        return 0.5 * x @ jnp.asarray(h, x.dtype) @ x

    return f


def bowl_step(kappa: float) -> float:
    """α = 2/(λ_min + λ_max) = 2/(1 + κ), the best fixed step on `bowl(kappa)`."""
    return 2 / (1 + kappa)


def bowl_rate(kappa: float) -> float:
    """(κ − 1)/(κ + 1): the contraction of ‖x_t − x*‖ per step at the best fixed step."""
    return (kappa - 1) / (kappa + 1)


def rosenbrock(x: jax.Array, a: float = 1.0, b: float = 100.0) -> jax.Array:
    """f(x, y) = (a − x)² + b (y − x²)², minimum 0 at (a, a²), a curved narrow valley."""
    return (a - x[0]) ** 2 + b * (x[1] - x[0] ** 2) ** 2


def measured_rate(errors: np.ndarray, *, floor: float = 0.0) -> float:
    """Mean contraction per step (e_k / e_0)^(1/k) of a sequence of errors ‖x_t − x*‖.

    Only the steps with e_t > `floor` count (round-off stops the decrease near 1e-16·|x*|).
    """
    e = np.abs(np.asarray(errors, dtype=float))
    above = e[1:] > floor
    k = len(above) if above.all() else int(np.argmin(above))
    if k == 0 or e[0] == 0:
        return 0.0
    return float((e[k] / e[0]) ** (1 / k))


# --- studies behind the figures and the command line ---------------------------------------


class RateRun(NamedTuple):
    """Gradient descent on a x² + b x + c at one learning rate, theory beside measurement."""

    learning_rate: float
    gaps: np.ndarray  # f(x_t) − f* = a (x_t − x*)², t = 0 … (cut where it diverged)
    theory: float  # |1 − 2aα|, the predicted contraction of |x_t − x*| per step
    measured: float  # the contraction measured on the trajectory (NaN: diverged at step 1)
    regime: str  # "monotone", "one step", "oscillating", "diverging"
    result: DescentResult


def _regime(a: float, alpha: float) -> str:
    p = 2 * a * alpha  # the factor is 1 − p, p > 0 even where 1 − p rounds to 1
    if p >= 2:
        return "diverging"
    if p == 1:
        return "one step"
    return "monotone" if p < 1 else "oscillating"


def check_parabola(a: float, b: float, c: float, x0: float, learning_rates=()) -> None:
    """`InputError` unless float64 holds every number of gradient descent on a x² + b x + c
    from x0: 1/a, x*, f(x0), f(x*), the gap a (x0 − x*)², and 2aα for each learning rate α
    (an overflow would print inf or nan as a result)."""
    _check_a(a)
    with np.errstate(all="ignore"):
        a, b, c, x0 = map(np.float64, (a, b, c, x0))
        x_star = -b / (2 * a)
        numbers = {
            "1/a": 1 / a,
            "x* = -b/(2a)": x_star,
            "f(x0)": a * x0**2 + b * x0 + c,
            "f(x*)": a * x_star**2 + b * x_star + c,
            "a (x0 - x*)^2": a * (x0 - x_star) ** 2,
            **{
                f"2 a alpha (alpha = {alpha:g})": 2 * a * np.float64(alpha)
                for alpha in learning_rates
            },
        }
    bad = [name for name, v in numbers.items() if not np.isfinite(v)]
    if bad:
        raise InputError(
            f"a = {a:g}, b = {b:g}, c = {c:g}, x0 = {x0:g} overflow float64 in {', '.join(bad)}; "
            "choose numbers of moderate size"
        )


def learning_rate_study(
    a: float, b: float, c: float, x0: float, learning_rates, steps: int
) -> list[RateRun]:
    """Run gradient descent on a x² + b x + c (float64) for each learning rate."""
    check_nonnegative_int("steps", steps)
    for alpha in learning_rates:
        check_learning_rate(alpha)
    check_parabola(a, b, c, x0, learning_rates)
    x_star = quadratic_minimum(a, b)
    f = quadratic(a, b, c)
    floor = 1e-10 * max(1.0, abs(x_star), abs(x0 - x_star))
    runs = []
    with jax.enable_x64(True):
        for alpha in learning_rates:
            result = descend(f, jnp.float64(x0), float(alpha), steps)
            errors = result.trajectory - x_star
            runs.append(
                RateRun(
                    float(alpha),
                    a * errors**2,  # = f(x_t) − f*, free of the round-off of f(x_t) − f*
                    abs(quadratic_factor(a, alpha)),
                    measured_rate(errors, floor=floor) if len(errors) > 1 else math.nan,
                    _regime(a, alpha),
                    result,
                )
            )
    return runs


class Surface(NamedTuple):
    """A 2-D test surface with its minimum, a start, and settings that work on it."""

    name: str
    f: Function
    minimum: np.ndarray
    x0: np.ndarray
    extent: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max for contours
    steps: int
    learning_rates: dict[str, float]  # per method


def surface(name: str, *, kappa: float = 25.0) -> Surface:
    """ "rosenbrock", or "bowl": ½ xᵀHx with condition number κ, axes turned by 30°."""
    if name == "rosenbrock":
        lrs = {"gd": 1e-3, "momentum": 5e-4, "nesterov": 5e-4, "rmsprop": 5e-3, "adam": 0.05}
        return Surface(
            name, rosenbrock, np.array([1.0, 1.0]), np.array([-1.2, 1.0]),
            (-2.0, 2.0, -1.0, 3.0), 2000, lrs,
        )  # fmt: skip
    if name == "bowl":
        s = bowl_step(kappa)
        lrs = {"gd": s, "momentum": s / 2, "nesterov": s / 2, "rmsprop": 0.1, "adam": 0.3}
        return Surface(
            f"bowl (kappa={kappa:g})", bowl(kappa, math.pi / 6), np.zeros(2),
            np.array([-4.0, 2.0]), (-6.0, 6.0, -6.0, 6.0), 100, lrs,
        )  # fmt: skip
    raise InputError(f"unknown surface {name!r}; choose one of rosenbrock, bowl")


def methods(learning_rates: dict[str, float]) -> dict[str, float | GradientTransformation]:
    """Gradient descent, momentum, Nesterov (μ = 0.9), RMSprop and Adam at the given rates."""
    lr = learning_rates
    return {
        "gradient descent": lr["gd"],
        "momentum": sgd(lr["momentum"], momentum=0.9),
        "nesterov": sgd(lr["nesterov"], momentum=0.9, nesterov=True),
        "rmsprop": rmsprop(lr["rmsprop"]),
        "adam": adam(lr["adam"]),
    }


def compare(surf: Surface, steps: int | None = None) -> dict[str, DescentResult]:
    """Every method of `methods` from surf.x0, in float64; name -> DescentResult."""
    steps = surf.steps if steps is None else steps
    with jax.enable_x64(True):
        return {
            name: descend(surf.f, jnp.asarray(surf.x0, jnp.float64), m, steps)
            for name, m in methods(surf.learning_rates).items()
        }
