"""Activation functions, each with its hand-written derivative beside it.

Element-wise functions come as pairs `f(z)`, `f_grad(z) = f'(z)`; softmax and log_softmax
(vector-valued) come with their Jacobian and their vector-Jacobian product (what
backpropagation uses). All are numerically stable in float32: `sigmoid(±1000)` is finite,
`softmax` of logits near 1e4 does not overflow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sigmoid(z: jax.Array) -> jax.Array:
    """σ(z) = 1 / (1 + e^(−z)), computed from e^(−|z|) so neither branch overflows."""
    e = jnp.exp(-jnp.abs(z))
    return jnp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(z: jax.Array) -> jax.Array:
    """σ'(z) = σ(z)(1 − σ(z))."""
    s = sigmoid(z)
    return s * (1.0 - s)


def relu(z: jax.Array) -> jax.Array:
    """relu(z) = max(z, 0)."""
    return jnp.where(z > 0, z, jnp.zeros_like(z))


def relu_grad(z: jax.Array) -> jax.Array:
    """relu'(z) = 1 if z > 0 else 0; at z = 0 we take 0 (as `jax.nn.relu` and PyTorch do)."""
    return (z > 0).astype(z.dtype)


def tanh(z: jax.Array) -> jax.Array:
    """tanh(z) = (e^z − e^(−z)) / (e^z + e^(−z))."""
    return jnp.tanh(z)


def tanh_grad(z: jax.Array) -> jax.Array:
    """tanh'(z) = 1 − tanh(z)²."""
    t = jnp.tanh(z)
    return 1.0 - t * t


def identity(z: jax.Array) -> jax.Array:
    """id(z) = z (the linear output of a regression network)."""
    return z


def identity_grad(z: jax.Array) -> jax.Array:
    """id'(z) = 1."""
    return jnp.ones_like(z)


def softmax(z: jax.Array, axis: int = -1) -> jax.Array:
    """softmax(z)_i = e^(z_i − m) / Σ_j e^(z_j − m), with m = max_j z_j for stability."""
    e = jnp.exp(z - jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True)))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def softmax_jacobian(z: jax.Array) -> jax.Array:
    """∂softmax(z)_i / ∂z_j = s_i (δ_ij − s_j) = diag(s) − s sᵀ, over the last axis."""
    s = softmax(z)
    return s[..., :, None] * (_eye_like(z) - s[..., None, :])


def softmax_vjp(z: jax.Array, g: jax.Array) -> jax.Array:
    """gᵀ J_softmax(z) = s ⊙ (g − ⟨g, s⟩), over the last axis."""
    s = softmax(z)
    return s * (g - jnp.sum(g * s, axis=-1, keepdims=True))


def _eye_like(z: jax.Array) -> jax.Array:
    """The identity over the last axis of z, broadcast to z's batch shape (..., k, k)."""
    k = z.shape[-1]
    return jnp.broadcast_to(jnp.eye(k, dtype=z.dtype), (*z.shape[:-1], k, k))


def log_softmax(z: jax.Array, axis: int = -1) -> jax.Array:
    """log_softmax(z)_i = z_i − m − log Σ_j e^(z_j − m), with m = max_j z_j."""
    shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def log_softmax_jacobian(z: jax.Array) -> jax.Array:
    """∂log_softmax(z)_i / ∂z_j = δ_ij − s_j, over the last axis."""
    s = softmax(z)
    return _eye_like(z) - s[..., None, :]


def log_softmax_vjp(z: jax.Array, g: jax.Array) -> jax.Array:
    """gᵀ J_log_softmax(z) = g − s Σ_i g_i, over the last axis."""
    return g - softmax(z) * jnp.sum(g, axis=-1, keepdims=True)


#: Element-wise activations by name: (f, f').
ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "relu": (relu, relu_grad),
    "tanh": (tanh, tanh_grad),
    "identity": (identity, identity_grad),
}
