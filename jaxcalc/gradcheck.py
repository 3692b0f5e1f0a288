"""Check the MLP's hand-written gradients against `jax.grad` and finite differences.

For every activation x loss combination, on a small random network and batch:

    hand-written vs jax.grad          float32   max relative error <= 1e-6
    hand-written vs jax.grad          float64   max relative error <= 1e-12
    hand-written vs finite diffs      float64   max relative error <= 1e-7

Relative error (cs231n) with a floor, element-wise, maximum over each parameter array:

    err = max_i |a_i − r_i| / max(|a_i|, |r_i|, floor),   floor = max |r| over all of r

(a: hand-written, r: the reference). The floor is the scale of the whole gradient, so each
entry is judged against the gradient's largest entry. The bare cs231n ratio blows up on
entries that are small by cancellation, where the two computations round differently: in
float32 a sum over rows of terms of both signs (b1 of a one-unit layer) keeps only the
rounding of its largest terms, and `a(1 − a)` of a saturated sigmoid keeps few digits. It is
0/0 on entries that are exactly zero (a dead relu unit); those count as 0. A wrong gradient
still shows: an array off by a factor δ whose scale is s times the largest entry errs by δ·s.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxcalc import mlp
from jaxcalc.calculus import numerical_gradient
from jaxcalc.validation import InputError, check_choice

#: (activation, loss, output) for every combination; the output of cross-entropy is softmax.
COMBOS = tuple(
    (activation, loss, output)
    for activation in mlp.HIDDEN_ACTIVATIONS
    for loss, output in (("cross_entropy", "softmax"), ("mse", "sigmoid"), ("mse", "identity"))
)
#: (reference, dtype) -> tolerance on the max relative error.
TOLERANCES = {
    ("jax.grad", "float32"): 1e-6,
    ("jax.grad", "float64"): 1e-12,
    ("finite diff", "float64"): 1e-7,
}


class Check(NamedTuple):
    """One comparison: the max relative error per parameter array and its verdict."""

    activation: str
    loss: str
    output: str
    reference: str  # "jax.grad" | "finite diff"
    dtype: str
    errors: dict[str, float]  # W1, b1, W2, b2 -> max relative error
    tolerance: float

    @property
    def max_error(self) -> float:
        return max(self.errors.values())

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tolerance


def relative_error(a: jax.Array, r: jax.Array, *, floor: float = 0.0) -> float:
    """max_i |a_i − r_i| / max(|a_i|, |r_i|, floor), where 0/0 counts as 0 (NumPy, float64)."""
    a, r = np.asarray(a, np.float64), np.asarray(r, np.float64)
    denom = np.maximum(np.maximum(np.abs(a), np.abs(r)), floor)
    rel = np.divide(np.abs(a - r), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(np.max(rel, initial=0.0))


def gradient_errors(a: mlp.Params, r: mlp.Params) -> dict[str, float]:
    """Relative error per parameter array, floored at the largest |r| of the whole gradient."""
    floor = max(float(np.max(np.abs(v), initial=0.0)) for v in r.values())
    return {k: relative_error(a[k], r[k], floor=floor) for k in mlp.PARAM_NAMES}


def problem(
    seed: int | tuple[int, ...], sizes: tuple[int, int, int], batch: int, loss: str, dtype
) -> tuple[mlp.Params, jax.Array, jax.Array]:
    """Random Xavier-scaled params with non-zero biases, inputs, and targets (labels for
    cross-entropy, U(0, 1) for MSE); drawn with NumPy, so no shape triggers a compilation."""
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = sizes
    params = {
        "W1": rng.normal(0, np.sqrt(2 / (n_in + n_hidden)), (n_in, n_hidden)),
        "b1": rng.normal(0, 0.1, n_hidden),
        "W2": rng.normal(0, np.sqrt(2 / (n_hidden + n_out)), (n_hidden, n_out)),
        "b2": rng.normal(0, 0.1, n_out),
    }
    params = {k: jnp.asarray(v, dtype) for k, v in params.items()}
    x = jnp.asarray(rng.normal(size=(batch, n_in)), dtype)
    if loss == "cross_entropy":
        y = jnp.asarray(rng.integers(0, n_out, batch), jnp.int32)
    else:
        y = jnp.asarray(rng.uniform(size=(batch, n_out)), dtype)
    return params, x, y


@partial(jax.jit, static_argnames=("activation", "loss", "output", "finite_diff"))
def _gradients(params, x, y, *, activation, loss, output, finite_diff):
    """Hand-written, jax.grad and (if `finite_diff`) central-difference gradients, jitted."""
    kwargs = {"activation": activation, "loss": loss, "output": output}
    hand = mlp.loss_and_grad(params, x, y, **kwargs)[1]
    auto = mlp.loss_and_grad_autodiff(params, x, y, **kwargs)[1]
    if not finite_diff:
        return hand, auto, None
    flat, unravel = ravel_pytree(params)
    fd = numerical_gradient(lambda v: mlp.loss_fn(unravel(v), x, y, **kwargs), flat)
    return hand, auto, unravel(fd)


def check_combo(
    activation: str,
    loss: str,
    output: str,
    *,
    seed: int | tuple[int, ...] = 0,
    sizes: tuple[int, int, int] = (6, 5, 3),
    batch: int = 8,
    finite_diff: bool = True,
) -> list[Check]:
    """The comparisons of the module docstring for one combination (FD if `finite_diff`)."""
    mlp_output = "sigmoid" if output == "softmax" else output  # unused by cross-entropy
    checks = []
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            params, x, y = problem(seed, sizes, batch, loss, jnp.dtype(dtype))
            hand, auto, fd = _gradients(
                params,
                x,
                y,
                activation=activation,
                loss=loss,
                output=mlp_output,
                finite_diff=finite_diff and dtype == "float64",
            )
            refs = {"jax.grad": auto} if fd is None else {"jax.grad": auto, "finite diff": fd}
            for reference, grads in refs.items():
                errors = gradient_errors(hand, grads)
                tol = TOLERANCES[(reference, dtype)]
                checks.append(Check(activation, loss, output, reference, dtype, errors, tol))
    return checks


def run(
    *,
    seed: int = 0,
    sizes: tuple[int, int, int] = (6, 5, 3),
    batch: int = 8,
    activations: tuple[str, ...] = mlp.HIDDEN_ACTIVATIONS,
    losses: tuple[str, ...] = mlp.LOSSES,
) -> list[Check]:
    """All checks of the chosen combinations on the network `sizes` with `batch` rows."""
    if len(sizes) != 3 or min(sizes) < 1 or batch < 1:
        raise InputError(f"sizes must be three positive ints and batch >= 1, got {sizes}, {batch}")
    for a in activations:
        check_choice("activation", a, mlp.HIDDEN_ACTIVATIONS)
    for loss in losses:
        check_choice("loss", loss, mlp.LOSSES)
    return [
        check
        for i, combo in enumerate(COMBOS)
        if combo[0] in activations and combo[1] in losses
        for check in check_combo(*combo, seed=(seed, i), sizes=sizes, batch=batch)
    ]


def table(checks: list[Check]) -> str:
    """A text table: one row per check, the max relative error per parameter array."""
    head = (
        f"{'activation':<10} {'loss':<13} {'output':<8} {'reference':<11} {'dtype':<7} "
        + " ".join(f"{k:>8}" for k in mlp.PARAM_NAMES)
        + f" {'max':>8} {'tol':>7}  ok"
    )
    rows = [head, "-" * len(head)]
    for c in checks:
        rows.append(
            f"{c.activation:<10} {c.loss:<13} {c.output:<8} {c.reference:<11} {c.dtype:<7} "
            + " ".join(f"{c.errors[k]:8.1e}" for k in mlp.PARAM_NAMES)
            + f" {c.max_error:8.1e} {c.tolerance:7.0e}  {'ok' if c.ok else 'FAIL'}"
        )
    return "\n".join(rows)
