"""The trace of a symmetric map from its products: Hutchinson's estimator.

tr A = E[zᵀ A z] for any random z with E[zzᵀ] = I; with Rademacher z (±1 entries) the
variance of one sample is 2 Σ_{i≠j} A_ij², the least of any such z, and zero for a diagonal A.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.tree_util import Partial

from jaxcalc.curvature.operator import (
    Matvec,
    Params,
    as_partial,
    check_finite_result,
    check_key,
    check_operator,
    flat_matvec,
)
from jaxcalc.validation import InputError, check_positive_int


@partial(jax.jit, static_argnames=("samples",))
def _hutchinson(matvec: Partial, params: Params, key: jax.Array, samples: int) -> jax.Array:
    A, flat = flat_matvec(matvec, params)

    def quadratic_form(k: jax.Array) -> jax.Array:
        z = jax.random.rademacher(k, flat.shape, flat.dtype)
        return jnp.vdot(z, A(z))

    return jax.lax.map(quadratic_form, jax.random.split(key, samples))


def hutchinson_trace(
    matvec: Matvec, params: Params, *, key: jax.Array, samples: int = 100
) -> tuple[jax.Array, jax.Array]:
    """tr A ≈ (1/m) Σ_i z_iᵀ A z_i with Rademacher z_i: (estimate, standard error).

    E[zzᵀ] = I makes each zᵀAz unbiased; its variance is 2 Σ_{i≠j} A_ij², so the estimate is
    exact for a diagonal A. Standard error: the samples' standard deviation over √m (m ≥ 2).
    """
    matvec = as_partial(matvec)
    check_operator(matvec, params)
    check_positive_int("samples", samples)
    if samples < 2:
        raise InputError("samples must be at least 2 for a standard error")
    values = _hutchinson(matvec, params, check_key(key), samples)
    check_finite_result("hutchinson_trace", values)
    return jnp.mean(values), jnp.std(values, ddof=1) / jnp.sqrt(samples)
