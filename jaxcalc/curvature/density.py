"""The spectral density of a symmetric map: stochastic Lanczos quadrature.

For a random unit q (Rademacher), the eigenvalues θ_j of the Lanczos T and the squared first
components τ_j of its eigenvectors are a Gauss quadrature of the measure Σ_i (qᵀu_i)² δ(λ − λ_i),
whose expectation is the spectral density (1/n) Σ_i δ(λ − λ_i) (Ghorbani et al. 2019, PyHessian's
ESD); each node is smoothed by a Gaussian of width σ.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax.tree_util import Partial

from jaxcalc.curvature.lanczos import lanczos, lanczos_steps, tridiagonal
from jaxcalc.curvature.operator import (
    Matvec,
    Params,
    as_partial,
    check_finite_result,
    check_key,
    check_operator,
    flat_matvec,
    unit,
)
from jaxcalc.validation import InputError, check_positive_finite, check_positive_int


@partial(jax.jit, static_argnames=("runs", "steps"))
def _quadrature(matvec: Partial, params: Params, key: jax.Array, runs: int, steps: int):
    A, flat = flat_matvec(matvec, params)

    def run(k: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_start, k_restart = jax.random.split(k)
        q = unit(k_start, flat.shape[0], flat.dtype, rademacher=True)
        kry = lanczos(A, q, steps, k_restart)
        nodes, vectors = jnp.linalg.eigh(tridiagonal(kry.alpha, kry.beta))
        return nodes, vectors[0] ** 2

    return jax.lax.map(run, jax.random.split(key, runs))


def lanczos_quadrature(
    matvec: Matvec, params: Params, *, key: jax.Array, runs: int = 5, steps: int = 30
) -> tuple[jax.Array, jax.Array]:
    """Nodes θ (runs, steps) and weights τ (runs, steps), each run's weights summing to 1:
    the Gauss quadrature of the spectral measure seen from a random unit vector."""
    matvec = as_partial(matvec)
    n, itemsize = check_operator(matvec, params)
    check_positive_int("runs", runs)
    steps = lanczos_steps(n, 1, steps, itemsize)
    nodes, weights = _quadrature(matvec, params, check_key(key), runs, steps)
    check_finite_result("lanczos_quadrature", nodes)
    return nodes, weights


def _check_grid(grid: Any) -> jax.Array:
    """`grid` as a 1-D array of at least one finite point (`InputError` otherwise)."""
    grid = jnp.asarray(grid)
    if grid.ndim != 1 or grid.size == 0:
        raise InputError(f"grid must be a 1-D array of at least one point, got shape {grid.shape}")
    if not jnp.issubdtype(grid.dtype, jnp.floating) or not bool(jnp.all(jnp.isfinite(grid))):
        raise InputError(f"grid must hold finite floats, got {grid.dtype} with NaN or infinity")
    return grid


def density_on_grid(
    nodes: jax.Array, weights: jax.Array, *, grid: jax.Array | None = None, sigma=None
) -> tuple[jax.Array, jax.Array]:
    """(grid, Σ_runs,j τ_j N(t; θ_j, σ²) / runs): quadrature nodes smoothed by Gaussians.

    Defaults: σ = 1/200 of the nodes' range (or 1e-3 · max(1, |θ|) for a single point), and
    2001 points from the least node − 6σ to the largest + 6σ, so it integrates to 1. `nodes`
    and `weights` (runs, steps) as `lanczos_quadrature` gives them; σ > 0 finite; a `grid`
    1-D and finite.
    """
    nodes, weights = jnp.asarray(nodes), jnp.asarray(weights)
    if nodes.ndim != 2 or nodes.size == 0 or weights.shape != nodes.shape:
        raise InputError(
            f"nodes and weights must be two (runs, steps) arrays of one shape with entries, "
            f"got {nodes.shape} and {weights.shape}"
        )
    check_finite_result("density_on_grid", nodes + weights)
    lo, hi = jnp.min(nodes), jnp.max(nodes)
    if sigma is None:
        sigma = jnp.where(hi > lo, (hi - lo) / 200, 1e-3 * jnp.maximum(1.0, jnp.abs(hi)))
    else:
        sigma = check_positive_finite("sigma", sigma)
    if grid is None:
        grid = jnp.linspace(lo - 6 * sigma, hi + 6 * sigma, 2001, dtype=nodes.dtype)
    grid = _check_grid(grid)
    t = grid[:, None, None]
    gauss = jnp.exp(-0.5 * ((t - nodes[None]) / sigma) ** 2) / (sigma * jnp.sqrt(2 * jnp.pi))
    return grid, jnp.sum(gauss * weights[None], axis=(1, 2)) / nodes.shape[0]


def spectral_density(
    matvec: Matvec,
    params: Params,
    *,
    key: jax.Array,
    runs: int = 5,
    steps: int = 30,
    grid: jax.Array | None = None,
    sigma: float | None = None,
) -> tuple[jax.Array, jax.Array]:
    """The spectral density of `matvec` by stochastic Lanczos quadrature: (grid, density).

    `runs` random starts of `steps` Lanczos steps each (runs · steps products); each node
    smoothed by a Gaussian of width `sigma` (see `density_on_grid` for the defaults). Bad
    `grid` or `sigma` is refused before any product is taken.
    """
    if sigma is not None:
        check_positive_finite("sigma", sigma)
    if grid is not None:
        _check_grid(grid)
    nodes, weights = lanczos_quadrature(matvec, params, key=key, runs=runs, steps=steps)
    return density_on_grid(nodes, weights, grid=grid, sigma=sigma)
