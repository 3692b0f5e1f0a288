"""Adam / AdamW on one tile, inside a kernel: the same equations as `jaxcalc.optim.adamw`.

Per element, with t the update count from 1, α_t the learning rate, λ the decoupled weight
decay (adamw), ℓ the L2 coefficient (adam with weight decay: added to the gradient, as the
XLA path does) and ρ the decay of the weight average (`ema`):

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

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxcalc import optim

N_COEFS = 4  # [−α_t, c₁, c₂, unused]: a power of 2, as Triton wants


class Hyper(NamedTuple):
    """The constants of the update (defaults: those of `optim.adam`)."""

    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    eps_root: float = 0.0
    weight_decay: float = 0.0  # λ, decoupled (adamw)
    l2: float = 0.0  # ℓ, added to the gradient (adam with --weight-decay)
    ema: float = 0.0  # ρ, 0: no weight average


def coefficients(
    count: jax.Array, learning_rate: optim.ScalarOrSchedule, hyper: Hyper
) -> jax.Array:
    """[−α_t, c₁, c₂, 0] for the update after `count` updates (t = count + 1)."""
    lr = learning_rate(count) if callable(learning_rate) else learning_rate
    t = optim.safe_increment(count)
    c1 = 1 - hyper.b1**t
    c2 = 1 - hyper.b2**t
    parts = [-jnp.asarray(lr, jnp.float32), c1, c2, jnp.zeros([], jnp.float32)]
    return jnp.stack([jnp.asarray(p, jnp.float32) for p in parts])


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


class Moments(NamedTuple):
    """One parameter tile with its optimiser state: θ, m, v and the average a (or None)."""

    theta: jax.Array
    m: jax.Array
    v: jax.Array
    avg: jax.Array | None


def load(refs: tuple) -> Moments:
    """The tiles behind the refs (θ, m, v[, a]) of a kernel."""
    return Moments(*(r[...] for r in refs), *([None] * (4 - len(refs))))


def store(refs: tuple, tile: Moments) -> None:
    """Write `tile` back through the refs it was loaded from (in place when aliased)."""
    for ref, value in zip(refs, tile, strict=False):
        ref[...] = value


def update(tile: Moments, g: jax.Array, coefs: tuple, hyper: Hyper) -> Moments:
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
    return Moments(theta, m, v, avg)
