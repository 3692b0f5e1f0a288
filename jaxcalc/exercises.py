"""The chapter's derivative rules, worked examples and exercises, computed and checked.

Each function returns a list of `Answer`s: the problem, its closed form (what one derives
by hand) evaluated in float64, and the same quantity by autodiff and by finite
differences. `Answer.ok` says whether all three agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from jaxcalc.activations import sigmoid, sigmoid_grad
from jaxcalc.calculus import (
    GradCheck,
    check_grad,
    derivative,
    gradient,
    numerical_gradient,
    numerical_hessian,
)
from jaxcalc.descent import newton
from jaxcalc.validation import InputError, check_nonempty, check_rows

#: closed form vs autodiff (both exact up to rounding in float64)
AUTODIFF_RTOL, AUTODIFF_ATOL = 1e-10, 1e-12
#: closed form vs central differences in float64 (error ~ eps^(2/3) ≈ 4e-11 relative)
FD_RTOL, FD_ATOL = 1e-6, 1e-8


@dataclass(frozen=True)
class Answer:
    """A closed form's value, confirmed by autodiff and by finite differences."""

    name: str
    problem: str
    closed_form: str
    value: np.ndarray
    autodiff: np.ndarray
    finite_difference: np.ndarray
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(
            np.allclose(self.autodiff, self.value, rtol=AUTODIFF_RTOL, atol=AUTODIFF_ATOL)
            and np.allclose(self.finite_difference, self.value, rtol=FD_RTOL, atol=FD_ATOL)
        )


def _answer(
    name: str,
    problem: str,
    closed_form: str,
    value: ArrayLike,
    autodiff: ArrayLike,
    finite_difference: ArrayLike,
    note: str = "",
) -> Answer:
    """An `Answer` with its three numbers as float64 NumPy arrays."""
    value, autodiff, fd = (np.asarray(a, np.float64) for a in (value, autodiff, finite_difference))
    return Answer(name, problem, closed_form, value, autodiff, fd, note)


def _scalar_answer(name: str, problem: str, closed_form: str, f, fprime, xs) -> Answer:
    """f'(x) at the points xs: the closed form fprime, `jax.grad(f)`, central differences."""
    xs = jnp.asarray(xs, dtype=jnp.float64)
    return _answer(
        name,
        problem,
        closed_form,
        jax.jit(jax.vmap(fprime))(xs),
        [gradient(f, x) for x in xs],
        [derivative(f, x) for x in xs],
    )


def derivative_rules() -> list[Answer]:
    """The power, product, chain and multivariable chain rules, each checked numerically."""
    with jax.enable_x64(True):
        powers = jnp.array([-1.0, 0.5, 3.0])
        power = _answer(
            "Power rule",
            "d/dx x^n for n = -1, 0.5, 3 at x = 2",
            "n x^(n-1)",
            powers * 2.0 ** (powers - 1),
            jax.vmap(lambda n: jax.grad(lambda x: x**n)(2.0))(powers),
            [derivative(lambda x, n=n: x**n, 2.0) for n in powers],
        )
        product = _scalar_answer(
            "Product rule",
            "d/dx [x^2 sin x] at x = 1",
            "(fg)' = f'g + fg' = 2x sin x + x^2 cos x",
            lambda x: x**2 * jnp.sin(x),
            lambda x: 2 * x * jnp.sin(x) + x**2 * jnp.cos(x),
            [1.0],
        )
        chain = _scalar_answer(
            "Chain rule",
            "d/dx sin(x^2) at x = 1",
            "(f o g)' = f'(g(x)) g'(x) = cos(x^2) 2x",
            lambda x: jnp.sin(x**2),
            lambda x: jnp.cos(x**2) * 2 * x,
            [1.0],
        )

        def z_of_t(t):
            x, y = jnp.cos(t), jnp.sin(t)
            return x**2 * y

        def dz_dt(t):  # dz/dt = dz/dx dx/dt + dz/dy dy/dt
            x, y = jnp.cos(t), jnp.sin(t)
            return 2 * x * y * (-jnp.sin(t)) + x**2 * jnp.cos(t)

        multi = _scalar_answer(
            "Multivariable chain rule",
            "z = x^2 y with x = cos t, y = sin t: dz/dt at t = 1",
            "dz/dt = (dz/dx)(dx/dt) + (dz/dy)(dy/dt) = 2xy(-sin t) + x^2 cos t",
            z_of_t,
            dz_dt,
            [1.0],
        )
    return [power, product, chain, multi]


def _gradient_answer(name: str, problem: str, closed_form: str, f, grad, point) -> Answer:
    """∇f at a point: the closed form `grad`, `jax.grad(f)`, central differences."""
    p = jnp.asarray(point, dtype=jnp.float64)
    return _answer(name, problem, closed_form, grad(p), gradient(f, p), numerical_gradient(f, p))


def worked_example_1() -> list[Answer]:
    """∇(x² + 2xy + y²) = (2x + 2y, 2x + 2y) at (1, 2) is (6, 6)."""
    with jax.enable_x64(True):
        return [
            _gradient_answer(
                "Worked example 1",
                "gradient of f(x, y) = x^2 + 2xy + y^2 at (1, 2)",
                "grad f = (2x + 2y, 2x + 2y)",
                lambda p: p[0] ** 2 + 2 * p[0] * p[1] + p[1] ** 2,
                lambda p: jnp.array([2 * p[0] + 2 * p[1], 2 * p[0] + 2 * p[1]]),
                [1.0, 2.0],
            )
        ]


def worked_example_2() -> list[Answer]:
    """Chain rule: ∇ sin(x² + y²) = cos(x² + y²) (2x, 2y), at (1, 2)."""
    with jax.enable_x64(True):
        return [
            _gradient_answer(
                "Worked example 2",
                "chain rule: gradient of f(x, y) = sin(x^2 + y^2) at (1, 2)",
                "with u = x^2 + y^2: grad f = cos(u) (du/dx, du/dy) = cos(x^2 + y^2) (2x, 2y)",
                lambda p: jnp.sin(p[0] ** 2 + p[1] ** 2),
                lambda p: jnp.cos(p[0] ** 2 + p[1] ** 2) * 2 * p,
                [1.0, 2.0],
            )
        ]


#: Worked example 3's numbers: input, weights and target of x -> W1 -> sigma -> W2 -> y.
BACKPROP_EXAMPLE = {"x": 1.0, "W1": 0.5, "W2": 2.0, "target": 1.0}


def _backprop_loss(w: jax.Array) -> jax.Array:
    """Worked example 3's loss as a function of (W1, W2)."""
    x, t = BACKPROP_EXAMPLE["x"], BACKPROP_EXAMPLE["target"]
    return 0.5 * (w[1] * sigmoid(w[0] * x) - t) ** 2


def worked_example_3() -> list[Answer]:
    """Backprop through x → W1 → σ → W2 → y with L = ½(y − target)², scalars.

    Forward: z1 = W1 x, a1 = σ(z1), y = W2 a1. Backward, one chain-rule step a line:
    dL/dy = y − t, dL/dW2 = dL/dy · a1, dL/da1 = dL/dy · W2, dL/dz1 = dL/da1 · σ'(z1),
    dL/dW1 = dL/dz1 · x.
    """
    x, w1, w2, t = (BACKPROP_EXAMPLE[k] for k in ("x", "W1", "W2", "target"))
    with jax.enable_x64(True):
        z1 = w1 * x
        a1 = sigmoid(jnp.float64(z1))
        y = w2 * a1
        dL_dy = y - t
        dL_dW2 = dL_dy * a1
        dL_da1 = dL_dy * w2
        dL_dz1 = dL_da1 * sigmoid_grad(jnp.float64(z1))
        dL_dW1 = dL_dz1 * x
        w = jnp.array([w1, w2], dtype=jnp.float64)
        note = (
            f"forward: z1 = {z1:.4f}, a1 = sigma(z1) = {a1:.6f}, y = {y:.6f}, "
            f"L = {0.5 * dL_dy**2:.6f}; backward: dL/dy = {dL_dy:.6f}, "
            f"dL/da1 = {dL_da1:.6f}, dL/dz1 = {dL_dz1:.6f}"
        )
        return [
            _answer(
                "Worked example 3",
                f"backprop x -> W1 -> sigma -> W2 -> y, L = 1/2 (y - target)^2, "
                f"x = {x}, W1 = {w1}, W2 = {w2}, target = {t}: (dL/dW1, dL/dW2)",
                "dL/dW2 = (y - t) a1,  dL/dW1 = (y - t) W2 sigma(z1)(1 - sigma(z1)) x",
                [dL_dW1, dL_dW2],
                gradient(_backprop_loss, w),
                numerical_gradient(_backprop_loss, w),
                note,
            )
        ]


EXERCISE_1_POINTS = (-1.0, 0.5, 2.0)


def exercise_1() -> list[Answer]:
    """Derivatives of 3x⁴ − 2x³ + x² − 5x + 1, eˣ sin x and ln(x² + 1), at x = −1, 0.5, 2."""
    at = ", ".join(f"{p:g}" for p in EXERCISE_1_POINTS)
    with jax.enable_x64(True):
        return [
            _scalar_answer(
                "Exercise 1a",
                f"d/dx [3x^4 - 2x^3 + x^2 - 5x + 1] at x = {at}",
                "12x^3 - 6x^2 + 2x - 5",
                lambda x: 3 * x**4 - 2 * x**3 + x**2 - 5 * x + 1,
                lambda x: 12 * x**3 - 6 * x**2 + 2 * x - 5,
                EXERCISE_1_POINTS,
            ),
            _scalar_answer(
                "Exercise 1b",
                f"d/dx [e^x sin x] at x = {at}",
                "e^x (sin x + cos x)",
                lambda x: jnp.exp(x) * jnp.sin(x),
                lambda x: jnp.exp(x) * (jnp.sin(x) + jnp.cos(x)),
                EXERCISE_1_POINTS,
            ),
            _scalar_answer(
                "Exercise 1c",
                f"d/dx ln(x^2 + 1) at x = {at}",
                "2x / (x^2 + 1)",
                lambda x: jnp.log(x**2 + 1),
                lambda x: 2 * x / (x**2 + 1),
                EXERCISE_1_POINTS,
            ),
        ]


def exercise_2_f(p: jax.Array) -> jax.Array:
    """f(x, y) = x³y² + 2xy − y³."""
    x, y = p[0], p[1]
    return x**3 * y**2 + 2 * x * y - y**3


def newton_critical_points(
    f: Callable[[jax.Array], jax.Array],
    starts: jax.Array,
    *,
    iterations: int = 60,
    tol: float = 1e-10,
) -> np.ndarray:
    """All distinct points where ∇f = 0 that Newton's method reaches from `starts` (k, n).

    Each start takes `iterations` steps of `descent.newton`, p ← p − H(p)⁻¹ ∇f(p) (Hessian
    and gradient by autodiff); a run counts if it ends finite with ‖∇f‖ < tol. Points closer
    than 1e-6 are merged; the result (m, n) is sorted by coordinates.
    """
    starts = jnp.asarray(starts)
    if starts.ndim != 2:
        raise InputError(f"starts must be (k, n) points, got shape {starts.shape}")
    check_rows("starts", starts.shape, what="start")
    check_nonempty("starts", starts.shape)
    grad = jax.grad(f)

    @jax.jit
    def solve(starts: jax.Array) -> tuple[jax.Array, jax.Array]:
        ends = jax.vmap(lambda p: newton(f, p, iterations)[-1])(starts)
        return ends, jax.vmap(lambda p: jnp.linalg.norm(grad(p)))(ends)

    ends, norms = (np.asarray(a) for a in solve(starts))
    ends = ends[np.isfinite(norms) & (norms < tol)]
    found: list[np.ndarray] = []
    for p in ends:
        if all(np.linalg.norm(p - q) > 1e-6 for q in found):
            found.append(p)
    return np.array(sorted(found, key=tuple)).reshape(-1, starts.shape[1])


def classify(hessian: np.ndarray) -> str:
    """A critical point by the signs of the Hessian's eigenvalues."""
    hessian = np.asarray(hessian)
    if hessian.ndim != 2 or hessian.shape[0] != hessian.shape[1] or hessian.size == 0:
        raise InputError(f"hessian must be a square matrix with entries, got {hessian.shape}")
    eig = np.linalg.eigvalsh(hessian)
    if np.all(eig > 0):
        return "local minimum"
    if np.all(eig < 0):
        return "local maximum"
    if np.any(eig > 0) and np.any(eig < 0):
        return "saddle point"
    return "degenerate (test inconclusive)"


def exercise_2() -> list[Answer]:
    """f = x³y² + 2xy − y³: ∇f = (3x²y² + 2y, 2x³y + 2x − 3y²), ∇f(1, −1) = (1, −3).

    Critical points: 3x²y² + 2y = y(3x²y + 2) = 0 gives y = 0 (then x = 0) or y = −2/(3x²),
    which in the second component leaves 2x/3 − 4/(3x⁴) = 0, x⁵ = 2: so (0, 0) and
    (2^(1/5), −2^(3/5)/3). Newton's method from a 21 × 21 grid of starts on [−3, 3]² finds
    them without that algebra; the finite-difference column repeats three Newton steps from
    each point with the numerical gradient and Hessian.
    """
    f = exercise_2_f

    def grad_closed(p: jax.Array) -> jax.Array:
        x, y = p[0], p[1]
        return jnp.array([3 * x**2 * y**2 + 2 * y, 2 * x**3 * y + 2 * x - 3 * y**2])

    with jax.enable_x64(True):
        gradient = _gradient_answer(
            "Exercise 2a",
            "gradient of f(x, y) = x^3 y^2 + 2xy - y^3 at (1, -1)",
            "grad f = (3x^2 y^2 + 2y, 2x^3 y + 2x - 3y^2)",
            f,
            grad_closed,
            [1.0, -1.0],
        )
        g = jnp.linspace(-3.0, 3.0, 21)
        starts = jnp.stack(jnp.meshgrid(g, g), axis=-1).reshape(-1, 2)
        found = newton_critical_points(f, starts)

        def refine(p: jax.Array) -> jax.Array:  # Newton steps with finite differences
            fd_grad, fd_hessian = partial(numerical_gradient, f), partial(numerical_hessian, f)
            return newton(f, p, 3, grad=fd_grad, hessian=fd_hessian)[-1]

        def report(p: jax.Array) -> tuple[jax.Array, jax.Array]:
            return jnp.linalg.norm(jax.grad(f)(p)), jax.hessian(f)(p)

        refined = jax.jit(jax.vmap(refine))(jnp.asarray(found))
        norms, hessians = jax.jit(jax.vmap(report))(jnp.asarray(found))
        closed = jnp.array([[0.0, 0.0], [2.0 ** (1 / 5), -(2.0 ** (3 / 5)) / 3]])
        lines = [
            f"({p[0]:.6f}, {p[1]:.6f}): |grad f| = {n:.1e}, {classify(np.asarray(h))}"
            for p, n, h in zip(found, norms, hessians, strict=True)
        ]
        critical = _answer(
            "Exercise 2b",
            "all real critical points of f (Newton's method on the Hessian, 441 starts)",
            "grad f = 0 at (0, 0) and (2^(1/5), -2^(3/5)/3)",
            closed,
            found if found.shape == closed.shape else np.full(closed.shape, np.nan),
            refined,
            "; ".join(lines),
        )
    return [gradient, critical]


def exercise_3() -> list[Answer]:
    """z = e^(x² + y²), x = t², y = t³: dz/dt = e^(x²+y²)(2x · 2t + 2y · 3t²) = 10e² at t = 1."""
    with jax.enable_x64(True):
        return [
            _scalar_answer(
                "Exercise 3",
                "z = e^(x^2 + y^2), x = t^2, y = t^3: dz/dt at t = 1",
                "dz/dt = e^(x^2 + y^2) (2x * 2t + 2y * 3t^2) = (4t^3 + 6t^5) e^(t^4 + t^6)",
                lambda t: jnp.exp((t**2) ** 2 + (t**3) ** 2),
                lambda t: jnp.exp(t**4 + t**6) * (2 * t**2 * 2 * t + 2 * t**3 * 3 * t**2),
                [1.0],
            )
        ]


#: The chapter's functions of several variables and where `gradient_checks` checks them.
GRADCHECK_CASES: dict[str, tuple[Callable[[jax.Array], jax.Array], tuple[float, ...]]] = {
    "x^2 + 2xy + y^2 at (1, 2)": (lambda p: p[0] ** 2 + 2 * p[0] * p[1] + p[1] ** 2, (1.0, 2.0)),
    "sin(x^2 + y^2) at (1, 2)": (lambda p: jnp.sin(p[0] ** 2 + p[1] ** 2), (1.0, 2.0)),
    "backprop L(W1, W2) at (0.5, 2)": (_backprop_loss, (0.5, 2.0)),
    "x^3 y^2 + 2xy - y^3 at (1, -1)": (exercise_2_f, (1.0, -1.0)),
    "e^(x^2 + y^2) at (1, 1)": (lambda p: jnp.exp(p[0] ** 2 + p[1] ** 2), (1.0, 1.0)),
}


def gradient_checks() -> dict[str, GradCheck]:
    """`check_grad` (jax.grad against central differences, float64) on the chapter's functions."""
    return {name: check_grad(f, jnp.array(x)) for name, (f, x) in GRADCHECK_CASES.items()}


#: Everything `jaxcalc exercises` prints, in the chapter's order.
SECTIONS = (
    derivative_rules,
    worked_example_1,
    worked_example_2,
    worked_example_3,
    exercise_1,
    exercise_2,
    exercise_3,
)
