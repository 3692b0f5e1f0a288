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

Second order (`run_second_order`), by the same metric, on the same networks and a random v:

    H v  hand-written vs jax.jvp of jax.grad     float32 <= 1e-5, float64 <= 1e-12
    H v  hand-written vs central differences of the hand-written gradient, float64 <= 1e-7
    G v  hand-written vs jax.jvp / jax.vjp       float32 <= 1e-5, float64 <= 1e-12
    ∂z2/∂x hand-written vs jax.jacrev, jax.jacfwd float32 <= 1e-6, float64 <= 1e-12
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxcalc import mlp
from jaxcalc.calculus import CHUNK, numerical_gradient
from jaxcalc.validation import InputError, check_choice

#: (activation, loss, output) for every combination; the output of cross-entropy is softmax.
COMBOS = tuple(
    (activation, loss, output)
    for activation in mlp.HIDDEN_ACTIVATIONS
    for loss, output in (("cross_entropy", "softmax"), ("mse", "sigmoid"), ("mse", "identity"))
)


def mlp_output(output: str) -> str:
    """The `output` argument of `mlp` for a combination's output: cross-entropy applies the
    softmax itself and ignores the network's output, so "softmax" is passed as "sigmoid"."""
    return "sigmoid" if output == "softmax" else output


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
    quantity: str = "gradient"  # or "H v", "G v", "dz2/dx" (second order, see the end)

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), key=lambda e: (np.isnan(e), e))  # a NaN is the worst

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tolerance


def relative_error(a: jax.Array, r: jax.Array, *, floor: float = 0.0) -> float:
    """max_i |a_i − r_i| / max(|a_i|, |r_i|, floor), where 0/0 counts as 0 (NumPy, float64).

    NaN when a, r or the floor holds a NaN or an infinity: nothing can be judged, and a NaN
    error fails every tolerance.
    """
    a, r = np.asarray(a, np.float64), np.asarray(r, np.float64)
    if not (np.isfinite(a).all() and np.isfinite(r).all() and np.isfinite(floor)):
        return float("nan")
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
    cross-entropy, U(0, 1) for MSE); drawn with NumPy, so no shape triggers a compilation.
    No pre-activation lies near relu's kink (`clear_of_kinks`)."""
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = sizes
    params = {
        "W1": rng.normal(0, np.sqrt(2 / (n_in + n_hidden)), (n_in, n_hidden)),
        "b1": rng.normal(0, 0.1, n_hidden),
        "W2": rng.normal(0, np.sqrt(2 / (n_hidden + n_out)), (n_hidden, n_out)),
        "b2": rng.normal(0, 0.1, n_out),
    }
    x = rng.normal(size=(batch, n_in))
    if loss == "cross_entropy":
        y = jnp.asarray(rng.integers(0, n_out, batch), jnp.int32)
    else:
        y = jnp.asarray(rng.uniform(size=(batch, n_out)), dtype)
    x = jnp.asarray(clear_of_kinks(params, x, rng), dtype)
    return {k: jnp.asarray(v, dtype) for k, v in params.items()}, x, y


def clear_of_kinks(params: dict[str, np.ndarray], x: np.ndarray, rng) -> np.ndarray:
    """`x` with each row redrawn while one of its pre-activations z1 = x W1 + b1 lies within
    twice the finite-difference reach of 0, where relu has its kink.

    Central differences in float64 move one parameter by h = eps^(1/3) · max(1, |θ|)
    (`calculus.default_step`), which moves z1[n, k] by up to h · max_i |x[n, i]| (a weight)
    or h (a bias). A row closer to the kink makes the finite-difference reference of relu
    wrong (the two sides of the difference straddle it) while the backward pass is right;
    redrawn rows keep every entry of the gradient judged, at any batch size.
    """
    h = np.finfo(np.float64).eps ** (1 / 3)
    h_w1 = (h * np.maximum(1.0, np.abs(params["W1"]))).max(axis=0)  # (n_hidden,)
    h_b1 = h * np.maximum(1.0, np.abs(params["b1"]))
    x = np.array(x, np.float64)
    for _ in range(1000):
        reach = np.maximum(np.abs(x).max(axis=1, keepdims=True) * h_w1, h_b1)
        near = (np.abs(x @ params["W1"] + params["b1"]) <= 2 * reach).any(axis=1)
        if not near.any():
            return x
        x[near] = rng.normal(size=(int(near.sum()), x.shape[1]))
    raise InputError(
        f"no inputs found clear of relu's kink for {params['W1'].shape[1]} hidden units; "
        "use fewer hidden units"
    )


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
                output=mlp_output(output),
                finite_diff=finite_diff and dtype == "float64",
            )
            refs = {"jax.grad": auto} if fd is None else {"jax.grad": auto, "finite diff": fd}
            for reference, grads in refs.items():
                errors = gradient_errors(hand, grads)
                tol = TOLERANCES[(reference, dtype)]
                checks.append(Check(activation, loss, output, reference, dtype, errors, tol))
    return checks


#: The finite-difference reference evaluates the loss twice per parameter, `CHUNK` at a time:
#: at most this many flops and bytes (a few seconds and a GiB on a laptop CPU).
FD_MAX_FLOPS = 2e10
FD_MAX_BYTES = 2**30


def check_size(sizes: tuple[int, int, int], batch: int) -> None:
    """`InputError` when the finite-difference reference of `sizes` and `batch` would take
    more than `FD_MAX_FLOPS` or `FD_MAX_BYTES`: refused at once rather than run for hours."""
    n_in, n_hidden, n_out = sizes
    weights = n_hidden * (n_in + n_out)
    n_params = weights + n_hidden + n_out
    flops = 2 * n_params * 2 * batch * weights  # 2 evaluations per parameter, a matmul each
    nbytes = CHUNK * batch * (n_in + n_hidden + n_out) * 8
    if flops > FD_MAX_FLOPS or nbytes > FD_MAX_BYTES:
        raise InputError(
            f"sizes {tuple(sizes)} with batch {batch} are too big for the finite-difference "
            f"check ({n_params} parameters x {batch} rows); use smaller --sizes or --batch"
        )


def _check_run(
    sizes: tuple[int, int, int], batch: int, activations: tuple[str, ...], losses: tuple[str, ...]
) -> None:
    """`InputError` for sizes or a batch out of bounds (`check_size`), or an unknown name."""
    if len(sizes) != 3 or min(sizes) < 1 or batch < 1:
        raise InputError(f"sizes must be three positive ints and batch >= 1, got {sizes}, {batch}")
    check_size(sizes, batch)
    for a in activations:
        check_choice("activation", a, mlp.HIDDEN_ACTIVATIONS)
    for loss in losses:
        check_choice("loss", loss, mlp.LOSSES)


def run(
    *,
    seed: int = 0,
    sizes: tuple[int, int, int] = (6, 5, 3),
    batch: int = 8,
    activations: tuple[str, ...] = mlp.HIDDEN_ACTIVATIONS,
    losses: tuple[str, ...] = mlp.LOSSES,
) -> list[Check]:
    """All checks of the chosen combinations on the network `sizes` with `batch` rows."""
    _check_run(sizes, batch, activations, losses)
    return [
        check
        for i, combo in enumerate(COMBOS)
        if combo[0] in activations and combo[1] in losses
        for check in check_combo(*combo, seed=(seed, i), sizes=sizes, batch=batch)
    ]


# --------------------------------------------------------------------------- second order

#: (quantity, reference, dtype) -> tolerance of the second-order rows.
SECOND_ORDER_TOLERANCES = {
    ("H v", "jvp of grad", "float32"): 1e-5,
    ("H v", "jvp of grad", "float64"): 1e-12,
    ("H v", "finite diff", "float64"): 1e-7,
    ("G v", "jvp/vjp", "float32"): 1e-5,
    ("G v", "jvp/vjp", "float64"): 1e-12,
    ("dz2/dx", "jax.jacrev", "float32"): 1e-6,
    ("dz2/dx", "jax.jacrev", "float64"): 1e-12,
    ("dz2/dx", "jax.jacfwd", "float32"): 1e-6,
    ("dz2/dx", "jax.jacfwd", "float64"): 1e-12,
}


def direction(seed: int | tuple[int, ...], params: mlp.Params) -> mlp.Params:
    """A random direction v ~ N(0, 1) shaped like params (NumPy, like `problem`)."""
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.normal(size=p.shape), p.dtype) for k, p in params.items()}


def hvp_difference(params, x, y, v, **kwargs) -> mlp.Params:
    """(g(θ + h v) − g(θ − h v)) / 2h of the hand-written gradient g: H v to O(h²).

    h = eps^(1/3) · max(1, |θ|∞) / |v|∞, shortened to half the distance along v to relu's
    nearest kink (z1 + t R{z1} = 0), where g jumps and a difference across it means nothing.
    """
    flat, _ = ravel_pytree(params)
    vflat, _ = ravel_pytree(v)
    h = jnp.finfo(flat.dtype).eps ** (1 / 3) * jnp.maximum(1.0, jnp.max(jnp.abs(flat)))
    h = h / jnp.max(jnp.abs(vflat))
    if kwargs.get("activation") == "relu":
        z1 = x @ params["W1"] + params["b1"][None, :]
        rz1 = x @ v["W1"] + v["b1"][None, :]
        h = jnp.minimum(h, 0.5 * jnp.min(jnp.abs(z1) / jnp.maximum(jnp.abs(rz1), 1e-300)))
    grad = lambda t: mlp.loss_and_grad(  # noqa: E731
        jax.tree.map(lambda p, d: p + t * d, params, v), x, y, **kwargs
    )[1]
    return jax.tree.map(lambda a, b: (a - b) / (2 * h), grad(h), grad(-h))


@partial(jax.jit, static_argnames=("activation", "loss", "output", "finite_diff"))
def _second_order(params, x, y, v, *, activation, loss, output, finite_diff):
    """[(hand-written, reference)] for H v, G v and (if `finite_diff`) H v by differences."""
    kw = {"activation": activation, "loss": loss, "output": output}
    hv = mlp.hvp(params, x, y, v, **kw)
    pairs = [(hv, mlp.hvp_autodiff(params, x, y, v, **kw))]
    pairs.append((mlp.ggn_vp(params, x, y, v, **kw), mlp.ggn_vp_autodiff(params, x, y, v, **kw)))
    if finite_diff:
        pairs.append((hv, hvp_difference(params, x, y, v, **kw)))
    return pairs


@partial(jax.jit, static_argnames=("activation",))
def _input_jacobians(params, x, *, activation):
    """The hand-written ∂z2/∂x and its jacrev and jacfwd twins."""
    auto = [
        mlp.input_jacobian_autodiff(params, x, activation=activation, mode=m)
        for m in ("reverse", "forward")
    ]
    return mlp.input_jacobian(params, x, activation=activation), auto


def check_second_order(
    activation: str,
    loss: str,
    output: str,
    *,
    seed: int | tuple[int, ...] = 0,
    sizes: tuple[int, int, int] = (6, 5, 3),
    batch: int = 8,
    finite_diff: bool = True,
) -> list[Check]:
    """H v and G v of one combination against their references (see the module docstring)."""
    checks = []
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            params, x, y = problem(seed, sizes, batch, loss, jnp.dtype(dtype))
            v = direction((*np.atleast_1d(seed), 2), params)
            fd = finite_diff and dtype == "float64"
            pairs = _second_order(
                params, x, y, v, activation=activation, loss=loss, output=mlp_output(output),
                finite_diff=fd,
            )  # fmt: skip
            names = [("H v", "jvp of grad"), ("G v", "jvp/vjp"), ("H v", "finite diff")]
            for (quantity, reference), (hand, ref) in zip(names, pairs, strict=False):
                tol = SECOND_ORDER_TOLERANCES[(quantity, reference, dtype)]
                errors = gradient_errors(hand, ref)
                checks.append(
                    Check(activation, loss, output, reference, dtype, errors, tol, quantity)
                )
    return checks


def check_input_jacobian(
    activation: str, *, seed=0, sizes: tuple[int, int, int] = (6, 5, 3), batch: int = 8
) -> list[Check]:
    """∂z2/∂x against jax.jacrev and jax.jacfwd in float32 and float64."""
    checks = []
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            params, x, _ = problem(seed, sizes, batch, "mse", jnp.dtype(dtype))
            hand, autos = _input_jacobians(params, x, activation=activation)
            for reference, ref in zip(("jax.jacrev", "jax.jacfwd"), autos, strict=True):
                floor = float(np.max(np.abs(ref), initial=0.0))
                errors = {"dz2/dx": relative_error(hand, ref, floor=floor)}
                tol = SECOND_ORDER_TOLERANCES[("dz2/dx", reference, dtype)]
                checks.append(Check(activation, "-", "-", reference, dtype, errors, tol, "dz2/dx"))
    return checks


def run_second_order(
    *,
    seed: int = 0,
    sizes: tuple[int, int, int] = (6, 5, 3),
    batch: int = 8,
    activations: tuple[str, ...] = mlp.HIDDEN_ACTIVATIONS,
    losses: tuple[str, ...] = mlp.LOSSES,
) -> list[Check]:
    """The second-order rows for the chosen combinations, then ∂z2/∂x per activation."""
    _check_run(sizes, batch, activations, losses)  # the same bounds as the first-order rows'
    checks = [
        check
        for i, combo in enumerate(COMBOS)
        if combo[0] in activations and combo[1] in losses
        for check in check_second_order(*combo, seed=(seed, i), sizes=sizes, batch=batch)
    ]
    for j, activation in enumerate(a for a in mlp.HIDDEN_ACTIVATIONS if a in activations):
        checks += check_input_jacobian(activation, seed=(seed, 100 + j), sizes=sizes, batch=batch)
    return checks
