"""Optimisers on a quadratic bowl, told honestly: rates from theory, measured against it.

On f(x) = ½ xᵀHx with eigenvalues μ = 1 ≤ λ ≤ L = κ, every linear method contracts each
eigen-direction of x_t − x* by a factor per step that theory gives exactly:

- Gradient descent x ← x − α∇f: |1 − αλ|. The best constant step α = 2/(μ + L) makes the
  two extremes equal, so the error shrinks by (κ − 1)/(κ + 1) ≈ 1 − 2/κ per step: about
  κ/2 steps per factor e. No constant-step method that uses only the current gradient does
  better on every such bowl, which is why it wins the κ = 25 race against momentum with a
  default β = 0.9 and against Adam.
- Heavy ball (Polyak momentum) x ← x − α∇f(x) + β(x − x_prev), which is `optim.sgd(α,
  momentum=β)`: per eigenvalue, the roots of z² − (1 + β − αλ) z + β. Complex roots have
  modulus √β whatever λ; real ones are worse. With α = 4/(√L + √μ)² and
  β = ((√κ − 1)/(√κ + 1))² the extremes sit at a double root, and the rate is
  (√κ − 1)/(√κ + 1) ≈ 1 − 2/√κ: about √κ/2 steps per factor e. At κ = 1000 that is 0.9387
  per step against gradient descent's 0.9980. A double root makes the error t·rᵗ, not rᵗ,
  so the rate measured between steps t₁ and t₂ is r·(t₂/t₁)^(1/(t₂ − t₁)), which tends to r.
  With β = 0.9 and a small α every root is complex, the rate √0.9 = 0.949: on κ = 25 that
  is slower than gradient descent's 0.923.
- Adam divides each coordinate's step by the running root mean square of that coordinate's
  gradient, so scaling coordinate i by any c_i changes nothing (up to eps). On a bowl whose
  axes are the coordinate axes, f = ½ Σ λ_i x_i², that undoes κ entirely: the steps to
  reach 1% do not depend on κ. Turn the bowl, and each coordinate's gradient mixes both
  eigenvalues: the per-coordinate scaling no longer matches the curvature, and Adam stalls.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.descent import bowl, bowl_rate, bowl_step, optimize
from jaxcalc.optim import GradientTransformation, adam, sgd
from jaxcalc.validation import InputError, check_in_range, check_positive_finite


def gd_rate(kappa: float, learning_rate: float) -> float:
    """max |1 − αλ| over λ ∈ {1, κ}: gradient descent's contraction per step on `bowl(κ)`."""
    check_positive_finite("learning_rate", learning_rate)
    return max(abs(1 - learning_rate), abs(1 - learning_rate * kappa))


def heavy_ball_parameters(kappa: float) -> tuple[float, float]:
    """The optimal (α, β) of heavy ball on `bowl(κ)`: 4/(√κ + 1)², ((√κ − 1)/(√κ + 1))²."""
    check_in_range("kappa", kappa, 1.0, math.inf, closed=True)
    s = math.sqrt(kappa)
    return 4 / (s + 1) ** 2, ((s - 1) / (s + 1)) ** 2


def heavy_ball_rate(kappa: float) -> float:
    """(√κ − 1)/(√κ + 1): heavy ball's contraction per step at its optimal (α, β)."""
    check_in_range("kappa", kappa, 1.0, math.inf, closed=True)
    s = math.sqrt(kappa)
    return (s - 1) / (s + 1)


def momentum_rate(kappa: float, learning_rate: float, beta: float) -> float:
    """The largest |root| of z² − (1 + β − αλ) z + β over λ ∈ {1, κ}: heavy ball's rate."""
    check_positive_finite("learning_rate", learning_rate)
    check_in_range("beta", beta, 0.0, 1.0, closed=False)
    roots = [np.roots([1.0, -(1 + beta - learning_rate * lam), beta]) for lam in (1.0, kappa)]
    return float(max(np.abs(r).max() for r in roots))


def window_rate(errors: np.ndarray, start: int, stop: int) -> float:
    """(e_stop / e_start)^(1/(stop − start)): the mean contraction per step between two steps."""
    if not 0 <= start < stop < len(errors):
        raise InputError(f"need 0 <= start < stop < {len(errors)}, got {start}, {stop}")
    return float((errors[stop] / errors[start]) ** (1 / (stop - start)))


class RateRun(NamedTuple):
    """One method on `bowl(κ)`: ‖x_t − x*‖ measured, its rate against theory."""

    method: str
    errors: np.ndarray  # ‖x_t − x*‖, t = 0 … steps
    window: tuple[int, int]  # the steps between which the rate is measured
    measured: float  # window_rate(errors, *window)
    theory: float  # what theory predicts for that same window
    asymptotic: float  # the rate per step as t → ∞ (r)


X0 = np.array([-4.0, 2.0])  # the start of `descent.surface("bowl")`
ANGLE = math.pi / 6  # its axes, turned by 30°


def rate_study(kappa: float = 1000.0, *, steps: int = 600, beta: float = 0.9) -> list[RateRun]:
    """Gradient descent (α = 2/(1 + κ)), heavy ball at its optimal (α, β), and momentum with
    `beta` at α = 1/(1 + κ) (half gradient descent's, as `descent.surface` takes), in float64,
    from `X0` on `bowl(κ, ANGLE)`. The rate is measured over the second half of the run."""
    alpha_hb, beta_hb = heavy_ball_parameters(kappa)
    window = (steps // 2, steps)
    t1, t2 = window
    hb = heavy_ball_rate(kappa)
    runs = {
        "gradient descent, optimal α": (sgd(bowl_step(kappa)), bowl_rate(kappa), bowl_rate(kappa)),
        "heavy ball, optimal α and β": (
            sgd(alpha_hb, momentum=beta_hb),
            hb * (t2 / t1) ** (1 / (t2 - t1)),  # e_t ∝ t rᵗ at a double root
            hb,
        ),
    }
    slow = momentum_rate(kappa, bowl_step(kappa) / 2, beta)
    runs[f"momentum β = {beta:g}, α = 1/(1 + κ)"] = (
        sgd(bowl_step(kappa) / 2, momentum=beta), slow, slow,
    )  # fmt: skip
    out = []
    for name, (opt, theory, asymptotic) in runs.items():
        errors = _errors(kappa, ANGLE, opt, steps)
        out.append(RateRun(name, errors, window, window_rate(errors, *window), theory, asymptotic))
    return out


def rates_against_kappa(kappas=(10.0, 100.0, 1000.0, 10000.0)) -> list[tuple[float, float, float]]:
    """(κ, gradient descent's measured rate, heavy ball's measured rate) at the optimal
    settings, each measured over the second half of a run long enough to shrink the error
    to about 1e-100, so that heavy ball's t-factor, (t₂/t₁)^(1/(t₂ − t₁)), is below 1.01."""
    rows = []
    for kappa in kappas:
        steps = 2 * math.ceil(115 / -math.log(heavy_ball_rate(kappa)))
        gd = _errors(kappa, ANGLE, sgd(bowl_step(kappa)), 2)  # exact from the first step
        alpha, beta = heavy_ball_parameters(kappa)
        hb = _errors(kappa, ANGLE, sgd(alpha, momentum=beta), steps)
        rows.append((kappa, window_rate(gd, 1, 2), window_rate(hb, steps // 2, steps)))
    return rows


def _errors(kappa: float, angle: float, opt: GradientTransformation, steps: int) -> np.ndarray:
    with jax.enable_x64(True):
        xs = optimize(bowl(kappa, angle), jnp.asarray(X0, jnp.float64), opt, steps)
        return np.linalg.norm(np.asarray(xs), axis=1)


def steps_to(errors: np.ndarray, fraction: float = 0.01) -> int | None:
    """The first step t with ‖x_t − x*‖ ≤ fraction · ‖x_0 − x*‖, or None."""
    hit = np.flatnonzero(errors <= fraction * errors[0])
    return int(hit[0]) if hit.size else None


class AxesRun(NamedTuple):
    """Gradient descent and Adam on `bowl(κ, angle)`: their paths and steps to 1%."""

    kappa: float
    angle: float
    learning_rate: float  # Adam's
    paths: dict[str, np.ndarray]  # method -> (steps + 1, 2)
    steps_to_1pct: dict[str, int | None]


def axes_study(
    kappas=(10.0, 100.0, 1000.0, 10000.0),
    angles=(0.0, ANGLE),
    *,
    learning_rate: float = 0.1,
    steps: int = 3000,
) -> list[AxesRun]:
    """What Adam's per-coordinate scaling buys: gradient descent at its optimal step and Adam
    (α = `learning_rate`) on axis-aligned and on turned bowls of each κ, float64, from `X0`."""
    out = []
    for kappa in kappas:
        for angle in angles:
            paths = {}
            for name, opt in (("gradient descent", sgd(bowl_step(kappa))),
                              ("adam", adam(learning_rate))):  # fmt: skip
                with jax.enable_x64(True):
                    xs = optimize(bowl(kappa, angle), jnp.asarray(X0, jnp.float64), opt, steps)
                paths[name] = np.asarray(xs)
            reach = {k: steps_to(np.linalg.norm(p, axis=1)) for k, p in paths.items()}
            out.append(AxesRun(kappa, angle, learning_rate, paths, reach))
    return out
