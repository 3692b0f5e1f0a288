"""Gradients through depth: why they vanish or explode, and what initialisation does about it.

A deep network of `depth` weight layers: a_0 = x, then for l = 1 … depth

    z_l = a_(l−1) @ W_l + b_l,    a_l = f(z_l)  (l < depth),    z_depth = logits,

with cross-entropy on the logits. The backward pass, one layer at a time:

    δ_depth = ∂L/∂z_depth = (softmax(z) − y)/n
    ∂L/∂W_l = a_(l−1)ᵀ δ_l,       ∂L/∂b_l = Σ_rows δ_l
    δ_(l−1) = (δ_l W_lᵀ) ⊙ f'(z_(l−1))

So each layer multiplies the gradient by W_lᵀ and by f'. With W ~ N(0, s²) and width w,
‖δ W ᵀ‖ ≈ √w · s · ‖δ‖, and f' scales it again: σ' ≤ 1/4 everywhere (= 1/4 only at 0,
≈ 0 where σ saturates), tanh' ≤ 1, relu' ∈ {0, 1} (1/2 on average). Per layer the norm
changes by about √w · s · (a typical |f'|): below 1 it vanishes geometrically with depth,
above 1 it explodes. The initialisations:

- "standard": s = 1, W ~ N(0, 1), as Nielsen's network.py: √w · s ≫ 1, so z is large and
  σ, tanh saturate (f' ≈ 0: vanishing), while relu, which does not saturate, explodes;
- "xavier" (Glorot): s² = 2/(fan_in + fan_out), so √w · s ≈ 1: right for tanh (tanh' ≈ 1
  near 0), not for σ, whose σ' ≤ 1/4 still shrinks the gradient 4× per layer;
- "he": s² = 2/fan_in, so √w · s · √(1/2) = 1 for relu: the norm stays level.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.activations import ACTIVATIONS
from jaxcalc.losses import cross_entropy, cross_entropy_grad
from jaxcalc.validation import check_choice, check_positive_int

INITS = ("standard", "xavier", "he")
Layers = list[dict[str, jax.Array]]  # [{"W": (fan_in, fan_out), "b": (fan_out,)}, ...]


def init_deep(key: jax.Array, sizes: tuple[int, ...], *, init: str, dtype=jnp.float32) -> Layers:
    """Weights W_l ~ N(0, s²) with s from `init` (see the module docstring), biases 0."""
    check_choice("init", init, INITS)
    layers = []
    keys = jax.random.split(key, len(sizes) - 1)
    for k, fan_in, fan_out in zip(keys, sizes[:-1], sizes[1:], strict=True):
        var = {"standard": 1.0, "xavier": 2.0 / (fan_in + fan_out), "he": 2.0 / fan_in}[init]
        w = jnp.sqrt(var).astype(dtype) * jax.random.normal(k, (fan_in, fan_out), dtype)
        layers.append({"W": w, "b": jnp.zeros((fan_out,), dtype)})
    return layers


def forward(layers: Layers, x: jax.Array, *, activation: str) -> list[jax.Array]:
    """[a_0 = x, a_1, …, a_(depth−1), z_depth]: every layer's output, the logits last."""
    outputs = [x]
    for l, layer in enumerate(layers):
        z = outputs[-1] @ layer["W"] + layer["b"][None, :]
        outputs.append(z if l == len(layers) - 1 else ACTIVATIONS[activation].f(z))
    return outputs


def loss(layers: Layers, x: jax.Array, labels: jax.Array, *, activation: str) -> jax.Array:
    """Cross-entropy of the logits: what `backward` differentiates."""
    return cross_entropy(forward(layers, x, activation=activation)[-1], labels)


def backward(layers: Layers, x: jax.Array, labels: jax.Array, *, activation: str) -> Layers:
    """∂L/∂W_l and ∂L/∂b_l of every layer, by the recursion of the module docstring."""
    outputs = forward(layers, x, activation=activation)
    delta = cross_entropy_grad(outputs[-1], labels)  # δ_depth = (softmax(z) − y)/n
    grads = []
    for l in reversed(range(len(layers))):
        grads.append({"W": outputs[l].T @ delta, "b": jnp.sum(delta, axis=0)})
        if l > 0:  # δ_(l−1) = (δ_l W_lᵀ) ⊙ f'(z_(l−1)), f' from the output a_(l−1)
            delta = (delta @ layers[l]["W"].T) * ACTIVATIONS[activation].grad_from_output(
                outputs[l]
            )
    return grads[::-1]


def weight_gradient_norms(
    layers: Layers, x: jax.Array, labels: jax.Array, *, activation: str
) -> np.ndarray:
    """‖∂L/∂W_l‖ (Frobenius) for l = 1 … depth, input layer first."""
    grads = backward(layers, x, labels, activation=activation)
    return np.array([float(jnp.linalg.norm(g["W"])) for g in grads])


class Flow(NamedTuple):
    """The gradient norm per layer of one deep network at initialisation."""

    activation: str
    init: str
    norms: np.ndarray  # (depth,), input layer first

    @property
    def first_over_last(self) -> float:
        """‖∂L/∂W_1‖ / ‖∂L/∂W_depth‖: ≪ 1 vanishing, ≫ 1 exploding."""
        return float(self.norms[0] / self.norms[-1])


#: The cases the figure shows: each activation with the standard-normal init and with its own.
CASES = (
    ("sigmoid", "standard"),
    ("sigmoid", "xavier"),
    ("tanh", "standard"),
    ("tanh", "xavier"),
    ("relu", "standard"),
    ("relu", "he"),
)


def gradient_flow_study(
    *,
    depth: int = 15,
    width: int = 64,
    batch: int = 128,
    classes: int = 10,
    cases=CASES,
    seed: int = 0,
) -> list[Flow]:
    """Per-layer gradient norms of a `depth`-layer network of `width` units, at initialisation,
    on a batch of standard-normal inputs with random labels, for each (activation, init)."""
    check_positive_int("depth", depth)
    check_positive_int("width", width)
    check_positive_int("batch", batch)
    key = jax.random.key(seed)
    kx, ky, kw = jax.random.split(key, 3)
    x = jax.random.normal(kx, (batch, width))
    labels = jax.random.randint(ky, (batch,), 0, classes)
    sizes = (width,) * depth + (classes,)
    flows = []
    for activation, init in cases:
        check_choice("activation", activation, ("sigmoid", "tanh", "relu"))
        layers = init_deep(kw, sizes, init=init)
        flows.append(
            Flow(activation, init, weight_gradient_norms(layers, x, labels, activation=activation))
        )
    return flows
