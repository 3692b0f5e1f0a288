"""Losses over a batch of rows, each with its hand-written gradient beside it.

MSE:            L = 1/(2n) Σ_i ‖y_i − ŷ_i‖²            ∂L/∂ŷ = (ŷ − y) / n
Cross-entropy:  L = −1/n Σ_i Σ_k y_ik log softmax(z_i)_k   ∂L/∂z = (softmax(z) − y) / n
(from logits z; y one-hot, or integer labels turned one-hot; n is the batch size).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcalc.activations import log_softmax, softmax


def one_hot(labels: jax.Array, num_classes: int, dtype=jnp.float32) -> jax.Array:
    """Integer labels (n,) to one-hot rows (n, num_classes)."""
    return (labels[:, None] == jnp.arange(num_classes)[None, :]).astype(dtype)


def _targets(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Integer labels (n,) become one-hot rows like `logits`; (n, k) targets pass through."""
    if labels.ndim == logits.ndim - 1:
        return one_hot(labels, logits.shape[-1], logits.dtype)
    return labels.astype(logits.dtype)


def mse(y_pred: jax.Array, y: jax.Array) -> jax.Array:
    """L = 1/(2n) Σ ‖y − ŷ‖² over the n rows of `y_pred`."""
    return 0.5 * jnp.sum((y - y_pred) ** 2) / y_pred.shape[0]


def mse_grad(y_pred: jax.Array, y: jax.Array) -> jax.Array:
    """∂L/∂ŷ = (ŷ − y) / n."""
    return (y_pred - y) / y_pred.shape[0]


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """L = −1/n Σ_i Σ_k y_ik log softmax(z_i)_k, stable for any logits."""
    y = _targets(logits, labels)
    return -jnp.sum(y * log_softmax(logits)) / logits.shape[0]


def cross_entropy_grad(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """∂L/∂z = (softmax(z) Σ_k y_k − y) / n, which is (softmax(z) − y) / n for one-hot y."""
    y = _targets(logits, labels)
    return (softmax(logits) * jnp.sum(y, axis=-1, keepdims=True) - y) / logits.shape[0]
