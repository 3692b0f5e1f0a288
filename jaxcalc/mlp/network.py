"""The 2-layer network: init, forward, a hand-written backward pass, and its autodiff twin.

Rows are samples, so the chapter's column-vector equations `z₁ = W₁x + b₁` read here as

    z1 = x @ W1 + b1        h1 = f(z1)        a1 = h1 ⊙ m      (m: optional dropout mask)
    z2 = a1 @ W2 + b2       a2 = softmax(z2)  for loss="cross_entropy"
                            a2 = g(z2)        for loss="mse", g = `output` (sigmoid, identity)

with params `{"W1": (n_in, n_hidden), "b1": (n_hidden,), "W2": (n_hidden, n_out),
"b2": (n_out,)}`. The loss is the batch mean: cross-entropy from the logits z2 (integer
labels, one-hot or soft targets) or `L = 1/(2n) Σ ‖y − a2‖²` (targets (n, n_out), or integer
labels taken as one-hot).

String arguments (`activation`, `loss`, `output`) are static: jit with `static_argnames`
or close over them, and new data of the same shape never recompiles. Inside the library
they travel as one frozen value, `Net(activation, loss, output)`, the first argument of each
building block (`check_args`, `forward_unchecked`, `backward_unchecked`, `backprop`), as
equinox and flax keep static configuration in one place. Shapes, dtypes and names are
checked before anything is computed (also while tracing); integer labels are range-checked
only when they are concrete, so the checks never break `jit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.activations import ACTIVATIONS, softmax
from jaxcalc.losses import cross_entropy, cross_entropy_grad, mse, mse_grad, one_hot_targets
from jaxcalc.validation import InputError, check_choice, check_positive_int, check_rows

HIDDEN_ACTIVATIONS = ("sigmoid", "relu", "tanh")
LOSSES = ("cross_entropy", "mse")
OUTPUTS = ("sigmoid", "identity")
INITS = ("xavier", "he")
PARAM_NAMES = ("W1", "b1", "W2", "b2")

Params = dict[str, jax.Array]


@dataclass(frozen=True)
class Net:
    """The network's static configuration, checked when made (`InputError` otherwise).

    `activation`: the hidden f (sigmoid, relu, tanh); `loss`: "cross_entropy" (softmax over
    z2) or "mse"; `output`: the MSE output g (sigmoid, identity), unused with cross-entropy.
    Hashable, so a jit's static argument.
    """

    activation: str = "sigmoid"
    loss: str = "cross_entropy"
    output: str = "sigmoid"

    def __post_init__(self) -> None:
        check_choice("activation", self.activation, HIDDEN_ACTIVATIONS)
        check_choice("loss", self.loss, LOSSES)
        check_choice("output", self.output, OUTPUTS)


class Cache(NamedTuple):
    """What the forward pass keeps for the backward pass (z1 is not needed: f' comes from h1)."""

    x: jax.Array  # (n, n_in) input
    h1: jax.Array  # (n, n_hidden) f(z1), before the dropout mask
    a1: jax.Array  # (n, n_hidden) h1 ⊙ mask (h1 itself without a mask)
    z2: jax.Array  # (n, n_out) logits
    a2: jax.Array  # (n, n_out) softmax(z2) or output(z2)


# --------------------------------------------------------------------------- init


def init_params(
    key: jax.Array,
    sizes: tuple[int, int, int] = (784, 128, 10),
    *,
    activation: str = "sigmoid",
    init: str | None = None,
    dtype=None,
) -> Params:
    """Random weights, zero biases, for `sizes = (n_in, n_hidden, n_out)`.

    `init="xavier"` (Glorot): W ~ N(0, 2 / (fan_in + fan_out)), keeps the variance of
    sigmoid/tanh layers; `init="he"`: W ~ N(0, 2 / fan_in), for relu. By default the
    activation chooses: He for relu, Xavier otherwise. `dtype` defaults to JAX's default
    float (float32, or float64 under x64).
    """
    check_choice("activation", activation, HIDDEN_ACTIVATIONS)
    if init is None:
        init = "he" if activation == "relu" else "xavier"
    check_choice("init", init, INITS)
    sizes = tuple(sizes)
    if len(sizes) != 3:
        raise InputError(f"sizes must be (n_in, n_hidden, n_out), got {sizes!r}")
    for name, s in zip(("n_in", "n_hidden", "n_out"), sizes, strict=True):
        check_positive_int(f"sizes {name}", s)
    dtype = jnp.dtype(dtype) if dtype is not None else jnp.zeros(()).dtype
    n_in, n_hidden, n_out = sizes
    k1, k2 = jax.random.split(key)

    def weights(k: jax.Array, fan_in: int, fan_out: int) -> jax.Array:
        var = 2.0 / fan_in if init == "he" else 2.0 / (fan_in + fan_out)
        return jnp.sqrt(var).astype(dtype) * jax.random.normal(k, (fan_in, fan_out), dtype)

    return {
        "W1": weights(k1, n_in, n_hidden),
        "b1": jnp.zeros((n_hidden,), dtype),
        "W2": weights(k2, n_hidden, n_out),
        "b2": jnp.zeros((n_out,), dtype),
    }


# --------------------------------------------------------------------------- checks


def _is_concrete(a) -> bool:
    return not isinstance(a, jax.core.Tracer)


def _check_params_x(params: Params, x: jax.Array, hidden_mask: jax.Array | None) -> None:
    if not isinstance(params, dict) or set(params) != set(PARAM_NAMES):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise InputError(f"params must be a dict with keys W1, b1, W2, b2, got {got}")
    W1, b1, W2, b2 = (params[k] for k in PARAM_NAMES)
    if W1.ndim != 2 or W2.ndim != 2 or b1.ndim != 1 or b2.ndim != 1:
        raise InputError(
            "params must hold W1 (n_in, n_hidden), b1 (n_hidden,), W2 (n_hidden, n_out), "
            f"b2 (n_out,); got shapes W1 {W1.shape}, b1 {b1.shape}, W2 {W2.shape}, b2 {b2.shape}"
        )
    if b1.shape[0] != W1.shape[1] or W2.shape[0] != W1.shape[1] or b2.shape[0] != W2.shape[1]:
        raise InputError(
            f"params shapes disagree: W1 {W1.shape}, b1 {b1.shape}, W2 {W2.shape}, b2 {b2.shape}"
        )
    dtypes = {jnp.dtype(p.dtype) for p in (W1, b1, W2, b2)}
    if len(dtypes) != 1 or not jnp.issubdtype(W1.dtype, jnp.floating):
        raise InputError(f"params must share one float dtype, got {sorted(map(str, dtypes))}")
    if x.ndim != 2 or x.shape[1] != W1.shape[0]:
        raise InputError(f"x must have shape (n, {W1.shape[0]}) to match W1, got {x.shape}")
    check_rows("x", x.shape, what="example (row)")
    if x.dtype != W1.dtype:
        raise InputError(
            f"x has dtype {x.dtype} but params {W1.dtype}; cast x, or build params with "
            "init_params(..., dtype=x.dtype)"
        )
    if hidden_mask is not None:
        want = (x.shape[0], W1.shape[1])
        if hidden_mask.shape != want or hidden_mask.dtype != x.dtype:
            raise InputError(
                f"hidden_mask must have shape {want} and dtype {x.dtype} like a1, "
                f"got {hidden_mask.shape} {hidden_mask.dtype}"
            )


def _check_y(y: jax.Array, x: jax.Array, n_out: int, loss: str) -> None:
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise InputError(f"y must have one row per row of x ({x.shape[0]}), got shape {y.shape}")
    if jnp.issubdtype(y.dtype, jnp.integer):
        if y.ndim != 1:
            raise InputError(f"integer labels y must have shape (n,), got {y.shape}")
        labels = np.asarray(y) if _is_concrete(y) else None  # numpy: no tracing inside jit
        if labels is not None and labels.size and (labels.min() < 0 or labels.max() >= n_out):
            raise InputError(
                f"labels y must lie in [0, {n_out}), got values from {labels.min()} to "
                f"{labels.max()}"
            )
    elif y.shape != (x.shape[0], n_out) or y.dtype != x.dtype:
        kind = "targets" if loss == "mse" else "one-hot or soft targets"
        raise InputError(
            f"y must be integer labels (n,) or {kind} of shape {(x.shape[0], n_out)} "
            f"and dtype {x.dtype}, got {y.shape} {y.dtype}"
        )


def check_args(net: Net, params, x, y=None, hidden_mask=None) -> tuple:
    """Check the arrays for `net` and return them as jax arrays: (params, x, y, hidden_mask).

    The building blocks below (`forward_unchecked`, `backward_unchecked`, `output_grad`,
    `backprop`) take what this returns, unchecked (as `second_order` does too).
    """
    x = jnp.asarray(x)
    y = jnp.asarray(y) if y is not None else None
    hidden_mask = jnp.asarray(hidden_mask) if hidden_mask is not None else None
    params = {k: jnp.asarray(v) for k, v in params.items()} if isinstance(params, dict) else params
    _check_params_x(params, x, hidden_mask)
    if y is not None:
        _check_y(y, x, params["W2"].shape[1], net.loss)
    return params, x, y, hidden_mask


# --------------------------------------------------------------------------- forward


def forward_unchecked(
    net: Net, params: Params, x: jax.Array, hidden_mask: jax.Array | None = None
) -> tuple[jax.Array, Cache]:
    """`forward` on arguments already checked by `check_args`: (a2, cache)."""
    z1 = x @ params["W1"] + params["b1"][None, :]
    h1 = ACTIVATIONS[net.activation].f(z1)
    a1 = h1 if hidden_mask is None else h1 * hidden_mask
    z2 = a1 @ params["W2"] + params["b2"][None, :]
    a2 = softmax(z2) if net.loss == "cross_entropy" else ACTIVATIONS[net.output].f(z2)
    return a2, Cache(x, h1, a1, z2, a2)


def forward(
    params: Params,
    x: jax.Array,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> tuple[jax.Array, Cache]:
    """Forward pass `z1 = x @ W1 + b1, a1 = f(z1) ⊙ mask, z2 = a1 @ W2 + b2, a2 = out(z2)`.

    Args:
      params: `{"W1", "b1", "W2", "b2"}` (see the module docstring); x: (n, n_in) rows.
      activation: hidden f, one of sigmoid, relu, tanh.
      loss: "cross_entropy" makes a2 = softmax(z2); "mse" makes a2 = output(z2).
      output: the MSE output g, sigmoid or identity (unused with cross-entropy).
      hidden_mask: inverted-dropout mask (n, n_hidden), already scaled by 1/keep_prob.
    Returns:
      `(a2, cache)`: the network output (n, n_out) and the `Cache` for `backward`.
    """
    net = Net(activation, loss, output)
    params, x, _, hidden_mask = check_args(net, params, x, hidden_mask=hidden_mask)
    return forward_unchecked(net, params, x, hidden_mask)


# --------------------------------------------------------------------------- backward


def activation_grad(activation: str, h1: jax.Array) -> jax.Array:
    """f'(z1) from the cached h1 = f(z1), by `activations`' own from-output derivative."""
    return ACTIVATIONS[activation].grad_from_output(h1)


def _loss_value(net: Net, cache: Cache, y: jax.Array) -> jax.Array:
    if net.loss == "cross_entropy":
        return cross_entropy(cache.z2, y)
    return mse(cache.a2, one_hot_targets(y, cache.a2))


def output_grad(net: Net, cache: Cache, y: jax.Array) -> jax.Array:
    """dL/dz2 (n, n_out), where the backward pass starts."""
    # dL/dz2: softmax + cross-entropy fuse to (a2 − y)/n; MSE is (a2 − y)/n ⊙ g'(z2).
    if net.loss == "cross_entropy" and y.ndim == 1:
        return (cache.a2 - one_hot_targets(y, cache.a2)) / y.shape[0]
    if net.loss == "cross_entropy":
        return cross_entropy_grad(cache.z2, y)  # soft targets: (a2 Σ_k y_k − y)/n
    # dL/da2 = (a2 − y)/n, and g'(z2) from the output a2: σ' = a2(1 − a2), id' = 1
    da2 = mse_grad(cache.a2, one_hot_targets(y, cache.a2))
    return da2 * ACTIVATIONS[net.output].grad_from_output(cache.a2)


def backward_unchecked(net: Net, params: Params, cache: Cache, y: jax.Array, mask) -> Params:
    """`backward` on arguments already checked by `check_args`: dL/dθ shaped like params."""
    return backprop(net, params, cache, output_grad(net, cache, y), mask)


def backprop(net: Net, params: Params, cache: Cache, dz2: jax.Array, mask) -> Params:
    """From dL/dz2 back to the parameters: a product with the Jacobian ∂z2/∂θ transposed."""
    # dL/dW2 = a1ᵀ dL/dz2                (n_hidden, n_out)
    dW2 = cache.a1.T @ dz2
    # dL/db2 = Σ_rows dL/dz2             (n_out,)
    db2 = jnp.sum(dz2, axis=0)
    # dL/da1 = dL/dz2 W2ᵀ                (n, n_hidden)
    da1 = dz2 @ params["W2"].T
    # dL/dh1 = dL/da1 ⊙ mask             (dropout; nothing without a mask)
    dh1 = da1 if mask is None else da1 * mask
    # dL/dz1 = dL/dh1 ⊙ f'(z1)           (n, n_hidden)
    dz1 = dh1 * activation_grad(net.activation, cache.h1)
    # dL/dW1 = xᵀ dL/dz1                 (n_in, n_hidden); dL/dx is never needed
    dW1 = cache.x.T @ dz1
    # dL/db1 = Σ_rows dL/dz1             (n_hidden,)
    db1 = jnp.sum(dz1, axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def backward(
    params: Params,
    cache: Cache,
    y: jax.Array,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> Params:
    """Hand-written backward pass: the chain rule from dL/dz2 back to dL/dW1, dL/db1.

    Same keyword arguments as the `forward` that made `cache` (pass the same mask).
    Returns the gradients as a dict shaped like `params`.
    """
    net = Net(activation, loss, output)
    params, _, y, hidden_mask = check_args(net, params, cache.x, y, hidden_mask)
    return backward_unchecked(net, params, cache, y, hidden_mask)


# --------------------------------------------------------------------------- loss and grad


def loss_and_grad(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> tuple[jax.Array, Params]:
    """Loss and its gradient with respect to params, by the hand-written backward pass.

    `y`: integer labels (n,), or (n, n_out) one-hot / soft / regression targets.
    Returns `(loss, grads)` with grads shaped like params.
    """
    value, grads, _ = loss_grad_and_logits(
        params, x, y, activation=activation, loss=loss, output=output, hidden_mask=hidden_mask
    )
    return value, grads


def loss_grad_and_logits(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> tuple[jax.Array, Params, jax.Array]:
    """`loss_and_grad` and the logits of its own forward pass: `(loss, grads, z2 (n, n_out))`.

    The network's predictions on the batch, argmax z2 (through `hidden_mask` when given),
    come with the gradient at no extra cost: a training step counts them for its running
    accuracy without a second forward pass.
    """
    net = Net(activation, loss, output)
    params, x, y, hidden_mask = check_args(net, params, x, y, hidden_mask)
    _, cache = forward_unchecked(net, params, x, hidden_mask)
    grads = backward_unchecked(net, params, cache, y, hidden_mask)
    return _loss_value(net, cache, y), grads, cache.z2


def loss_fn(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> jax.Array:
    """The scalar loss of the network on (x, y): what both gradients differentiate."""
    net = Net(activation, loss, output)
    params, x, y, hidden_mask = check_args(net, params, x, y, hidden_mask)
    _, cache = forward_unchecked(net, params, x, hidden_mask)
    return _loss_value(net, cache, y)


def loss_and_grad_autodiff(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> tuple[jax.Array, Params]:
    """`jax.value_and_grad` of `loss_fn` with respect to params: the reference twin."""
    return jax.value_and_grad(loss_fn)(
        params, x, y, activation=activation, loss=loss, output=output, hidden_mask=hidden_mask
    )


def loss_grad_and_logits_autodiff(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> tuple[jax.Array, Params, jax.Array]:
    """The twin of `loss_grad_and_logits`: `jax.value_and_grad` of the loss with the logits
    z2 as its auxiliary output."""
    net = Net(activation, loss, output)
    params, x, y, hidden_mask = check_args(net, params, x, y, hidden_mask)

    def loss_and_logits(p: Params) -> tuple[jax.Array, jax.Array]:
        _, cache = forward_unchecked(net, p, x, hidden_mask)
        return _loss_value(net, cache, y), cache.z2

    (value, z2), grads = jax.value_and_grad(loss_and_logits, has_aux=True)(params)
    return value, grads, z2


# --------------------------------------------------------------------------- predict


def predict(params: Params, x: jax.Array, *, activation: str = "sigmoid") -> jax.Array:
    """Predicted class per row: argmax of the logits z2 (the same for softmax or sigmoid)."""
    net = Net(activation)  # z2 does not depend on the loss
    params, x, _, _ = check_args(net, params, x)
    _, cache = forward_unchecked(net, params, x)
    return jnp.argmax(cache.z2, axis=1)


def accuracy(
    params: Params, x: jax.Array, y: jax.Array, *, activation: str = "sigmoid"
) -> jax.Array:
    """Fraction of rows whose predicted class equals y (integer labels or one-hot rows)."""
    params, x, y, _ = check_args(Net(activation), params, x, y)
    labels = y if y.ndim == 1 else jnp.argmax(y, axis=1)
    return jnp.mean(predict(params, x, activation=activation) == labels)


__all__ = [
    "Cache",
    "Net",
    "accuracy",
    "backward",
    "forward",
    "init_params",
    "loss_and_grad",
    "loss_and_grad_autodiff",
    "loss_fn",
    "loss_grad_and_logits",
    "loss_grad_and_logits_autodiff",
    "predict",
]
