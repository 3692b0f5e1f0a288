"""Activation functions, each with its hand-written derivative beside it.

Element-wise functions come with their derivative twice: from the input, `f_grad(z)`, and
from the output, `f_grad_from_output(h)` = f'(z) at h = f(z), which is what a backward pass
uses as it keeps h, not z: σ' = h(1 − h), tanh' = 1 − h², relu' = [h > 0]; and so does the
second derivative (`f_grad2`, `f_grad2_from_output`, for Hessian-vector products): σ'' =
h(1 − h)(1 − 2h), tanh'' = −2h(1 − h²), relu'' = id'' = 0. `ACTIVATIONS` lists them by
name. softmax (vector-valued) comes with its Jacobian and its vector-Jacobian product
(what backpropagation uses; the Jacobian is symmetric, so `softmax_vjp` is also its
Jacobian-vector product); log_softmax is what cross-entropy takes. All are numerically
stable in float32: `sigmoid(±1000)` is finite, `softmax` of logits near 1e4 does not overflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxcalc.validation import InputError


def sigmoid(z: jax.Array) -> jax.Array:
    """σ(z) = 1 / (1 + e^(−z)), computed from e^(−|z|) so neither branch overflows."""
    e = jnp.exp(-jnp.abs(z))
    return jnp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(z: jax.Array) -> jax.Array:
    """σ'(z) = σ(z)(1 − σ(z))."""
    return sigmoid_grad_from_output(sigmoid(z))


def sigmoid_grad_from_output(h: jax.Array) -> jax.Array:
    """σ'(z) from the output h = σ(z): h(1 − h)."""
    return h * (1.0 - h)


def sigmoid_grad2(z: jax.Array) -> jax.Array:
    """σ''(z) = σ'(z)(1 − 2σ(z))."""
    return sigmoid_grad2_from_output(sigmoid(z))


def sigmoid_grad2_from_output(h: jax.Array) -> jax.Array:
    """σ''(z) from the output h = σ(z): h(1 − h)(1 − 2h)."""
    return h * (1.0 - h) * (1.0 - 2.0 * h)


def relu(z: jax.Array) -> jax.Array:
    """relu(z) = max(z, 0)."""
    return jnp.where(z > 0, z, jnp.zeros_like(z))


def relu_grad(z: jax.Array) -> jax.Array:
    """relu'(z) = 1 if z > 0 else 0; at z = 0 we take 0 (as `jax.nn.relu` and PyTorch do)."""
    return (z > 0).astype(z.dtype)


def relu_grad_from_output(h: jax.Array) -> jax.Array:
    """relu'(z) from the output h = relu(z): [h > 0] (h > 0 exactly when z > 0)."""
    return (h > 0).astype(h.dtype)


def relu_grad2(z: jax.Array) -> jax.Array:
    """relu''(z) = 0 for z ≠ 0 (at the kink relu' jumps: no finite second derivative; 0, as
    `jax.grad` of relu' gives)."""
    return jnp.zeros_like(z)


def relu_grad2_from_output(h: jax.Array) -> jax.Array:
    """relu''(z) from the output h = relu(z): 0."""
    return jnp.zeros_like(h)


def tanh(z: jax.Array) -> jax.Array:
    """tanh(z) = (e^z − e^(−z)) / (e^z + e^(−z))."""
    return jnp.tanh(z)


def tanh_grad(z: jax.Array) -> jax.Array:
    """tanh'(z) = 1 − tanh(z)²."""
    return tanh_grad_from_output(jnp.tanh(z))


def tanh_grad_from_output(h: jax.Array) -> jax.Array:
    """tanh'(z) from the output h = tanh(z): 1 − h²."""
    return 1.0 - h * h


def tanh_grad2(z: jax.Array) -> jax.Array:
    """tanh''(z) = −2 tanh(z)(1 − tanh(z)²)."""
    return tanh_grad2_from_output(jnp.tanh(z))


def tanh_grad2_from_output(h: jax.Array) -> jax.Array:
    """tanh''(z) from the output h = tanh(z): −2h(1 − h²)."""
    return -2.0 * h * (1.0 - h * h)


def identity(z: jax.Array) -> jax.Array:
    """id(z) = z (the linear output of a regression network)."""
    return z


def identity_grad(z: jax.Array) -> jax.Array:
    """id'(z) = 1."""
    return jnp.ones_like(z)


def identity_grad_from_output(h: jax.Array) -> jax.Array:
    """id'(z) from the output h = z: 1."""
    return jnp.ones_like(h)


def identity_grad2(z: jax.Array) -> jax.Array:
    """id''(z) = 0."""
    return jnp.zeros_like(z)


def identity_grad2_from_output(h: jax.Array) -> jax.Array:
    """id''(z) from the output h = z: 0."""
    return jnp.zeros_like(h)


def _check_axis(z: jax.Array, axis: int) -> None:
    """`InputError` unless z has the axis a softmax runs over, with an entry at least
    (static shapes: safe inside `jit` and inside a Pallas kernel)."""
    shape = jnp.shape(z)
    if not -len(shape) <= axis < len(shape) or shape[axis] == 0:
        raise InputError(f"softmax over axis {axis} needs that axis with entries, got {shape}")


def softmax(z: jax.Array, axis: int = -1) -> jax.Array:
    """softmax(z)_i = e^(z_i − m) / Σ_j e^(z_j − m), with m = max_j z_j for stability."""
    _check_axis(z, axis)
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
    _check_axis(z, axis)
    shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


Elementwise = Callable[[jax.Array], jax.Array]


class Activation(NamedTuple):
    """An element-wise activation: f(z); f'(z) from z and from h = f(z); f''(z) likewise."""

    f: Elementwise
    grad: Elementwise
    grad_from_output: Elementwise
    grad2: Elementwise
    grad2_from_output: Elementwise


#: Activations whose f'' is 0 wherever it exists (all but a kink): a Hessian-vector
#: product skips their f'' term.
PIECEWISE_LINEAR = frozenset({"relu", "identity"})

#: Element-wise activations by name.
ACTIVATIONS = {
    "sigmoid": Activation(
        sigmoid, sigmoid_grad, sigmoid_grad_from_output, sigmoid_grad2, sigmoid_grad2_from_output
    ),
    "relu": Activation(relu, relu_grad, relu_grad_from_output, relu_grad2, relu_grad2_from_output),
    "tanh": Activation(tanh, tanh_grad, tanh_grad_from_output, tanh_grad2, tanh_grad2_from_output),
    "identity": Activation(
        identity,
        identity_grad,
        identity_grad_from_output,
        identity_grad2,
        identity_grad2_from_output,
    ),
}
