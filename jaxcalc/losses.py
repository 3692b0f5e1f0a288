"""Losses over a batch of rows, each with its hand-written gradient beside it.

MSE:            L = 1/(2n) Σ_i ‖y_i − ŷ_i‖²            ∂L/∂ŷ = (ŷ − y) / n
Cross-entropy:  L = −1/n Σ_i Σ_k y_ik log softmax(z_i)_k   ∂L/∂z = (softmax(z) − y) / n
(from logits z; y one-hot, or integer labels turned one-hot; n is the batch size).

Their second derivatives, as products with a vector v (`mse_hvp`, `cross_entropy_hvp`):
MSE ∂²L/∂ŷ² = I/n; cross-entropy ∂²L/∂z² = (Σ_k y_k)(diag(s) − s sᵀ)/n per row, s = softmax(z).
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from jaxcalc.activations import log_softmax, softmax, softmax_vjp
from jaxcalc.validation import InputError, check_positive_int, check_rows


def _check_batch(name: str, a: jax.Array, *, classes: bool = False) -> None:
    """`InputError` unless `a` has rows (a mean over none is no number) and, with
    `classes`, a last axis of at least one class. Static shapes: safe inside `jit`."""
    check_rows(name, jnp.shape(a))
    if classes and (jnp.ndim(a) < 2 or jnp.shape(a)[-1] == 0):
        raise InputError(f"{name} must be (n, classes) with a class at least, got {jnp.shape(a)}")


def one_hot(labels: jax.Array, num_classes: int, dtype=jnp.float32) -> jax.Array:
    """Integer labels (n,) to one-hot rows (n, num_classes).

    A label outside [0, num_classes) gives a row of NaN, so every loss and gradient made from
    it is NaN: inside `jit` nothing can raise, but no wrong number (a zero loss) comes out.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise InputError(f"num_classes must be a positive integer, got {num_classes!r}")
    check_positive_int("num_classes", int(num_classes))
    valid = (labels >= 0) & (labels < num_classes)
    rows = (labels[:, None] == jnp.arange(num_classes)[None, :]).astype(dtype)
    return jnp.where(valid[:, None], rows, jnp.nan).astype(dtype)


def smooth_labels(labels: jax.Array, num_classes: int, eps: float) -> jax.Array:
    """Label smoothing: one-hot rows (1 − ε) · onehot + ε / k, for integer labels (n,)."""
    return one_hot(labels, num_classes) * (1.0 - eps) + eps / num_classes


def one_hot_targets(labels: jax.Array, like: jax.Array) -> jax.Array:
    """Integer labels (n,) as one-hot rows like `like` (n, k); (n, k) targets pass through.

    Either way in `like`'s dtype; (n, k) targets may be one-hot, soft or regression values.
    """
    if labels.ndim == like.ndim - 1:
        return one_hot(labels, like.shape[-1], like.dtype)
    return labels.astype(like.dtype)


def mse(y_pred: jax.Array, y: jax.Array) -> jax.Array:
    """L = 1/(2n) Σ ‖y − ŷ‖² over the n rows of `y_pred`."""
    _check_batch("y_pred", y_pred)
    return 0.5 * jnp.sum((y - y_pred) ** 2) / y_pred.shape[0]


def mse_grad(y_pred: jax.Array, y: jax.Array) -> jax.Array:
    """∂L/∂ŷ = (ŷ − y) / n."""
    _check_batch("y_pred", y_pred)
    return (y_pred - y) / y_pred.shape[0]


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """L = −1/n Σ_i Σ_k y_ik log softmax(z_i)_k, stable for any logits."""
    _check_batch("logits", logits, classes=True)
    y = one_hot_targets(labels, logits)
    return -jnp.sum(y * log_softmax(logits)) / logits.shape[0]


def cross_entropy_grad(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """∂L/∂z = (softmax(z) Σ_k y_k − y) / n, which is (softmax(z) − y) / n for one-hot y."""
    _check_batch("logits", logits, classes=True)
    y = one_hot_targets(labels, logits)
    return (softmax(logits) * jnp.sum(y, axis=-1, keepdims=True) - y) / logits.shape[0]


# Second derivatives (Hessian-vector products in the loss's own input), for `mlp.hvp`.


def mse_hvp(y_pred: jax.Array, v: jax.Array) -> jax.Array:
    """∂²L/∂ŷ² v = v / n: the Hessian of L = 1/(2n) Σ ‖y − ŷ‖² in ŷ is I/n, whatever y is."""
    _check_batch("y_pred", y_pred)
    return v / y_pred.shape[0]


def cross_entropy_hvp(logits: jax.Array, labels: jax.Array, v: jax.Array) -> jax.Array:
    """∂²L/∂z² v, row by row: (Σ_k y_k) (diag(s) − s sᵀ) v / n with s = softmax(z).

    The gradient is (s Σ_k y_k − y)/n, and y does not depend on z, so the Hessian is the
    softmax Jacobian (symmetric: `softmax_vjp` is its product with v) times Σ_k y_k / n.
    Positive semi-definite: vᵀ(diag(s) − s sᵀ)v is the variance of v under s.
    """
    _check_batch("logits", logits, classes=True)
    y = one_hot_targets(labels, logits)
    return jnp.sum(y, axis=-1, keepdims=True) * softmax_vjp(logits, v) / logits.shape[0]
