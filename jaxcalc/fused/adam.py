"""Adam / AdamW on one tile, inside a kernel: the same equations as `jaxcalc.optim.adamw`.

Per element, with t the update count from 1, α_t the learning rate, λ the decoupled weight
decay (adamw), ℓ the L2 coefficient (added to the gradient, as the XLA path does for adam
with weight decay) and ρ the decay of the weight average (`ema`):

    g ← g + ℓ θ
    m ← (1 − β₁) g + β₁ m              v ← (1 − β₂) g² + β₂ v
    θ ← θ − α_t ( (m / c₁) / (sqrt(v / c₂ + ε̄) + ε) + λ θ ),   c₁ = 1 − β₁ᵗ,  c₂ = 1 − β₂ᵗ
    a ← ρ a + (1 − ρ) θ                 (only with a weight average)

β₁, β₂, ε, ε̄, λ, ℓ, ρ are compile-time constants (`Hyper`); −α_t, c₁, c₂ change every
step: XLA computes them for a whole epoch at once, as `optim.adam` computes them, into a
table (`coefficient_table`) whose row i the kernels of step i read (`at`). A zero gradient
on a zero parameter with zero moments gives a zero update: padded entries stay zero.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxcalc import optim

N_COEFS = 3  # a row of the coefficient table: −α_t, c₁, c₂
_ADAM = inspect.signature(optim.adam).parameters  # optim's defaults, read, not copied


class Hyper(NamedTuple):
    """The constants of the update: β₁, β₂, ε, ε̄ (default: `optim.adam`'s), λ, ℓ, ρ."""

    b1: float = _ADAM["b1"].default
    b2: float = _ADAM["b2"].default
    eps: float = _ADAM["eps"].default
    eps_root: float = _ADAM["eps_root"].default
    weight_decay: float = 0.0  # λ, decoupled (adamw)
    l2: float = 0.0  # ℓ, added to the gradient
    ema: float = 0.0  # ρ, 0: no weight average


def coefficients(
    count: jax.Array, learning_rate: optim.ScalarOrSchedule, hyper: Hyper
) -> jax.Array:
    """[−α_t, c₁, c₂] for the update after `count` updates (t = count + 1)."""
    lr = learning_rate(count) if callable(learning_rate) else learning_rate
    t = optim.safe_increment(count)
    c1 = 1 - hyper.b1**t
    c2 = 1 - hyper.b2**t
    return jnp.stack([jnp.asarray(p, jnp.float32) for p in (-jnp.asarray(lr, jnp.float32), c1, c2)])


def coefficient_table(
    count: jax.Array, steps: int, learning_rate: optim.ScalarOrSchedule, hyper: Hyper
) -> jax.Array:
    """(steps, N_COEFS): row i the coefficients of the i-th update after `count` updates,
    computed by XLA once for a whole epoch (no scalar work left between the kernels)."""
    counts = advance(count, jnp.arange(steps, dtype=jnp.int32))
    return jax.vmap(lambda c: coefficients(c, learning_rate, hyper))(counts)


def advance(count: jax.Array, steps: int | jax.Array) -> jax.Array:
    """count + steps (elementwise for an array of steps), saturating at the int32 maximum
    as `steps` updates of `optim` do (`optim.safe_increment` each)."""
    top = jnp.iinfo(jnp.int32).max
    return jnp.where(count <= top - steps, count + steps, top).astype(count.dtype)


def at(coefs_ref, step: Any) -> tuple[Any, Any, Any]:
    """Inside a kernel: (−α_t, c₁, c₂) of step `step` from the table's ref."""
    return coefs_ref[step, 0], coefs_ref[step, 1], coefs_ref[step, 2]


class Group(NamedTuple):
    """One parameter and what its update touches: θ, Adam's m and v, the weight average a
    (None without one). Arrays, tiles, block specs or refs: a pytree, as `pallas_call`
    takes it."""

    theta: Any
    m: Any
    v: Any
    avg: Any = None


def load(refs: Group) -> Group:
    """Inside a kernel: the tiles behind a group of refs."""
    return jax.tree.map(lambda ref: ref[...], refs)


def store(refs: Group, tiles: Group) -> None:
    """Inside a kernel: write `tiles` through `refs` (in place where they are aliased)."""
    for ref, tile in zip(jax.tree.leaves(refs), jax.tree.leaves(tiles), strict=True):
        ref[...] = tile


def update(tile: Group, g: jax.Array, coefs: tuple, hyper: Hyper) -> Group:
    """One Adam(W) step of `tile` with gradient `g`; `coefs` = (−α_t, c₁, c₂) (`at`)."""
    neg_lr, c1, c2 = coefs
    theta = tile.theta
    if hyper.l2:
        g = g + hyper.l2 * theta
    m = (1 - hyper.b1) * g + hyper.b1 * tile.m
    v = (1 - hyper.b2) * (g * g) + hyper.b2 * tile.v
    direction = (m / c1) / (jnp.sqrt(v / c2 + hyper.eps_root) + hyper.eps)
    if hyper.weight_decay:
        direction = direction + hyper.weight_decay * theta
    theta = theta + neg_lr * direction
    avg = tile.avg
    if avg is not None:
        avg = hyper.ema * avg + (1.0 - hyper.ema) * theta
    return Group(theta, m, v, avg)
