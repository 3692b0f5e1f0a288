"""The MLP's hand-written derivatives, checked by `jaxcalc.check`: the table behind
`jaxcalc gradcheck`.

Each hand-written quantity is checked as the derivative of something, against two references:
"finite diff" (central differences with Richardson's extrapolation, in float64) and "autodiff"
(JAX's derivative of a plain twin, exact up to rounding):

    gradient   dL/dθ   mlp.loss_and_grad, as the gradient of mlp.loss_fn    (grad_fn)
    H v        mlp.hvp, as the derivative of the hand-written gradient along v    (custom_jvp)
    G v        mlp.ggn_vp, as the derivative of Jᵀ ∇ℓ(o(θ)) along v, J = ∂o/∂θ frozen at θ
               (o: z2 for cross-entropy, a2 for MSE; at θ it is Jᵀ H_ℓ J v)      (custom_jvp)
    dz2/dx     mlp.input_jacobian, as the derivative of the logits in x, forward and reverse

on a small random float32 network, in full mode (every entry), so yours runs in float32 and
float64 and the reference in float64 (`jaxcalc.check`). A `Check` is one row: the relative
error of each array ‖yours − reference‖ / ‖reference‖, the bound the reference's own error
allows, the float32 drift, and the verdict. The "autodiff" rows of H v and G v are the old
"jvp of grad" and "jvp/vjp" rows; the dz2/dx rows check the JVP (jacfwd's) and the VJP
(jacrev's) of the hand-written rule at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import check, mlp
from jaxcalc.losses import cross_entropy, mse
from jaxcalc.validation import InputError, check_choice

#: (activation, loss, output) for every combination; the output of cross-entropy is softmax.
COMBOS = tuple(
    (activation, loss, output)
    for activation in mlp.HIDDEN_ACTIVATIONS
    for loss, output in (("cross_entropy", "softmax"), ("mse", "sigmoid"), ("mse", "identity"))
)
REFERENCES = ("autodiff", "finite diff")
QUANTITIES = ("gradient", "H v", "G v", "dz2/dx")
#: Networks with at most this many parameters are checked entry by entry (full mode).
FULL_PARAMS = 1024


def mlp_output(output: str) -> str:
    """The `output` argument of `mlp` for a combination's output: cross-entropy applies the
    softmax itself and ignores the network's output, so "softmax" is passed as "sigmoid"."""
    return "sigmoid" if output == "softmax" else output


class Check(NamedTuple):
    """One row of the table: a quantity of one combination against one reference."""

    activation: str
    loss: str
    output: str
    quantity: str  # "gradient", "H v", "G v", "dz2/dx"
    reference: str  # "autodiff" | "finite diff"
    errors: dict[str, float]  # array (W1, b1, W2, b2; x for dz2/dx) -> relative error
    bound: float  # the largest bound of the rows
    f32: float | None  # the largest float32 drift
    verdict: str  # "ok" | "warn" | "fail"
    report: check.Report | None = None

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), key=lambda e: (np.isnan(e), e))  # a NaN is the worst

    @property
    def ok(self) -> bool:
        return self.verdict != "fail"


def relative_error(a: jax.Array, r: jax.Array, *, floor: float = 0.0) -> float:
    """max_i |a_i − r_i| / max(|a_i|, |r_i|, floor), where 0/0 counts as 0 (NumPy, float64).

    NaN when a, r or the floor holds a NaN or an infinity: nothing can be judged.
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
    cross-entropy, U(0, 1) for MSE); drawn with NumPy, so no shape triggers a compilation."""
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = sizes
    params = {
        "W1": rng.normal(0, np.sqrt(2 / (n_in + n_hidden)), (n_in, n_hidden)),
        "b1": rng.normal(0, 0.1, n_hidden),
        "W2": rng.normal(0, np.sqrt(2 / (n_hidden + n_out)), (n_hidden, n_out)),
        "b2": rng.normal(0, 0.1, n_out),
    }
    x = jnp.asarray(rng.normal(size=(batch, n_in)), dtype)
    if loss == "cross_entropy":
        y = jnp.asarray(rng.integers(0, n_out, batch), jnp.int32)
    else:
        y = jnp.asarray(rng.uniform(size=(batch, n_out)), dtype)
    return {k: jnp.asarray(v, dtype) for k, v in params.items()}, x, y


def direction(seed: int | tuple[int, ...], params: mlp.Params) -> mlp.Params:
    """A random direction v ~ N(0, 1) shaped like params (NumPy, like `problem`)."""
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.normal(size=p.shape), p.dtype) for k, p in params.items()}


# --------------------------------------------------------------------------- the quantities


def _like(a: jax.Array, ref: jax.Array) -> jax.Array:
    """Data in the float type of the parameters they meet (float64 in the reference run)."""
    return a.astype(ref.dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a


def _with_jvp(primal: Callable, tangent: Callable) -> Callable:
    """primal(p) with the hand-written forward rule tangent(p, v) (a custom_jvp)."""
    f = jax.custom_jvp(primal)
    f.defjvp(lambda ps, vs: (primal(ps[0]), tangent(ps[0], vs[0])))
    return f


def quantity(name: str, params, x, y, *, activation: str, loss: str, output: str):
    """(f, args, check_grads keywords, twin) of one quantity: yours is in f (or grad_fn),
    the twin is the plain function whose autodiff is the "autodiff" reference."""
    kw = {"activation": activation, "loss": loss, "output": output}

    def data(p):
        return _like(x, p["W1"]), _like(y, p["W1"])

    def loss_of(p):
        return mlp.loss_fn(p, *data(p), **kw)

    def hand_grad(p):
        return mlp.loss_and_grad(p, *data(p), **kw)[1]

    if name == "gradient":
        return jax.jit(loss_of), (params,), {"grad_fn": jax.jit(hand_grad)}, jax.jit(loss_of)
    if name == "H v":

        def hv(p, v):
            return mlp.hvp(p, *data(p), v, **kw)

        f = jax.jit(_with_jvp(hand_grad, hv))
        return f, (params,), {"modes": ("fwd",)}, jax.jit(jax.grad(loss_of))
    if name == "G v":
        frozen = jax.tree.map(np.asarray, params)

        def out(p):  # z2 for cross-entropy, a2 = g(z2) for MSE: where the loss is convex
            return mlp.forward(
                p,
                data(p)[0],
                activation=activation,
                loss="mse",
                output="identity" if loss == "cross_entropy" else output,
            )[0]

        def loss_of_out(o, p):
            t = data(p)[1]
            return cross_entropy(o, t) if loss == "cross_entropy" else mse(o, t)

        def gauss_newton(p):  # Jᵀ ∇ℓ(o(p)) with J frozen at the checked point
            p0 = jax.tree.map(lambda a, q: jnp.asarray(a, q.dtype), frozen, p)
            pullback = jax.vjp(out, p0)[1]
            return pullback(jax.grad(loss_of_out)(out(p), p))[0]

        def gv(p, v):
            return mlp.ggn_vp(p, *data(p), v, **kw)

        f = jax.jit(_with_jvp(gauss_newton, gv))
        return f, (params,), {"modes": ("fwd",)}, jax.jit(gauss_newton)

    def logits(x):
        return mlp.forward(
            _params_like(params, x), x, activation=activation, loss="mse", output="identity"
        )[0]

    def jvp_rule(x, t):
        jac = mlp.input_jacobian(_params_like(params, x), x, activation=activation)
        return jnp.einsum("nki,ni->nk", jac, t)

    return jax.jit(_with_jvp(logits, jvp_rule)), (x,), {}, jax.jit(logits)


def _params_like(params: mlp.Params, x: jax.Array) -> mlp.Params:
    return {k: jnp.asarray(np.asarray(v), x.dtype) for k, v in params.items()}


def check_quantity(
    name: str,
    activation: str,
    loss: str,
    output: str,
    *,
    seed: int | tuple[int, ...] = 0,
    sizes: tuple[int, int, int] = (6, 5, 3),
    batch: int = 8,
) -> list[Check]:
    """One quantity of one combination against both references (module docstring)."""
    params, x, y = problem(seed, sizes, batch, loss, jnp.float32)
    if name in ("H v", "G v", "dz2/dx"):
        loss = "mse" if name == "dz2/dx" else loss
    kw = {"activation": activation, "loss": loss, "output": mlp_output(output)}
    f, args, options, twin = quantity(name, params, x, y, **kw)
    count = sum(int(v.size) for v in jax.tree.leaves(args[0]))
    mode = "full" if count <= FULL_PARAMS else "fast"
    checks = []
    for reference in REFERENCES:
        report = check.check_grads(
            f, args, **options, reference=twin if reference == "autodiff" else None, mode=mode
        )
        checks.append(_row(report, activation, loss, output, name, reference))
    return checks


def _row(report: check.Report, activation, loss, output, name, reference) -> Check:
    errors: dict[str, float] = {}
    for r in report.rows:
        errors[r.leaf] = max(errors.get(r.leaf, 0.0), r.error, key=lambda e: (np.isnan(e), e))
    bound = max((r.bound for r in report.rows), default=0.0)
    drifts = [r.f32 for r in report.rows if r.f32 is not None]
    f32 = max(drifts) if drifts else None
    out = "-" if name == "dz2/dx" else output
    losses = "-" if name == "dz2/dx" else loss
    return Check(
        activation, losses, out, name, reference, errors, bound, f32, report.verdict, report
    )


#: The forward passes of the checks at most cost this many flops and hold this many bytes
#: (seconds and a GiB on a laptop CPU).
MAX_FLOPS = 2e10
MAX_BYTES = 2**30


def check_size(sizes: tuple[int, int, int], batch: int) -> None:
    """`InputError` when the checks of `sizes` and `batch` would take more than `MAX_FLOPS`
    or `MAX_BYTES`: refused at once rather than run for hours. Full mode evaluates the
    network about 4 times per parameter (and per reference), fast mode about 200 times."""
    n_in, n_hidden, n_out = sizes
    weights = n_hidden * (n_in + n_out)
    n_params = weights + n_hidden + n_out
    evaluations = 8 * n_params if n_params <= FULL_PARAMS else 200
    flops = evaluations * 2 * batch * weights
    nbytes = 8 * batch * (n_in + n_hidden + n_out) * 64  # the vmapped chunks of full mode
    if flops > MAX_FLOPS or nbytes > MAX_BYTES:
        raise InputError(
            f"sizes {tuple(sizes)} with batch {batch} are too big for the gradient check "
            f"({n_params} parameters x {batch} rows); use smaller --sizes or --batch"
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


def _run(quantities, *, seed, sizes, batch, activations, losses) -> list[Check]:
    _check_run(sizes, batch, activations, losses)
    checks = []
    for name in quantities:
        if name == "dz2/dx":
            for j, a in enumerate(a for a in mlp.HIDDEN_ACTIVATIONS if a in activations):
                checks += check_quantity(
                    name, a, "mse", "identity", seed=(seed, 100 + j), sizes=sizes, batch=batch
                )
            continue
        for i, combo in enumerate(COMBOS):
            if combo[0] in activations and combo[1] in losses:
                checks += check_quantity(name, *combo, seed=(seed, i), sizes=sizes, batch=batch)
    return checks


def run(
    *,
    seed: int = 0,
    sizes: tuple[int, int, int] = (6, 5, 3),
    batch: int = 8,
    activations: tuple[str, ...] = mlp.HIDDEN_ACTIVATIONS,
    losses: tuple[str, ...] = mlp.LOSSES,
) -> list[Check]:
    """The gradient rows of the chosen combinations on the network `sizes` with `batch` rows."""
    return _run(
        ("gradient",), seed=seed, sizes=sizes, batch=batch, activations=activations, losses=losses
    )


def run_second_order(
    *,
    seed: int = 0,
    sizes: tuple[int, int, int] = (6, 5, 3),
    batch: int = 8,
    activations: tuple[str, ...] = mlp.HIDDEN_ACTIVATIONS,
    losses: tuple[str, ...] = mlp.LOSSES,
) -> list[Check]:
    """The H v and G v rows of the chosen combinations, then dz2/dx per activation."""
    return _run(
        ("H v", "G v", "dz2/dx"),
        seed=seed,
        sizes=sizes,
        batch=batch,
        activations=activations,
        losses=losses,
    )
