"""Small data sets generated on the spot with `jax.random` (no download), for Project 2.

Classification sets return `(x, y)` with x (n, 2) float and y (n,) integer labels;
the regression set returns x (n, 1) and y (n, 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcalc.validation import check_positive_int


def spirals(key: jax.Array, n: int = 400, *, turns: float = 1.5, noise: float = 0.08):
    """Two interleaved spirals, n/2 points each: r = t, angle = 2π·turns·t (+π for class 1)."""
    check_positive_int("n", n)
    kt, ke = jax.random.split(key)
    labels = jnp.arange(n) % 2
    t = jax.random.uniform(kt, (n,), minval=0.05, maxval=1.0)
    angle = 2 * jnp.pi * turns * t + jnp.pi * labels
    x = jnp.stack([t * jnp.cos(angle), t * jnp.sin(angle)], axis=1)
    return x + noise * jax.random.normal(ke, x.shape), labels


def moons(key: jax.Array, n: int = 400, *, noise: float = 0.1):
    """Two interleaving half circles (scikit-learn's `make_moons`), centred near 0."""
    check_positive_int("n", n)
    kt, ke = jax.random.split(key)
    labels = jnp.arange(n) % 2
    t = jax.random.uniform(kt, (n,), maxval=jnp.pi)
    upper = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    lower = jnp.stack([1 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=1)
    x = jnp.where(labels[:, None] == 0, upper, lower) - jnp.array([0.5, 0.25])
    return x + noise * jax.random.normal(ke, x.shape), labels


def curve(key: jax.Array, n: int = 200, *, noise: float = 0.05):
    """Noisy samples of y = sin(2πx)/2 + x/2 on x ∈ [−1, 1], sorted by x."""
    check_positive_int("n", n)
    kx, ke = jax.random.split(key)
    x = jnp.sort(jax.random.uniform(kx, (n, 1), minval=-1.0, maxval=1.0), axis=0)
    y = 0.5 * jnp.sin(2 * jnp.pi * x) + 0.5 * x
    return x, y + noise * jax.random.normal(ke, y.shape)
