"""What every method here starts from: a symmetric map known through its products, checked.

`matvec: Params -> Params` is passed to the jitted programs as a `jax.tree_util.Partial`
(data, not a constant), so the arrays it holds are not baked into a program and equal ones
reuse a compilation. `check_operator` checks it against `params` before any work; inside
the programs it acts on flat vectors (`flat_matvec`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.tree_util import Partial

from jaxcalc.validation import InputError, check_callable

Params = Any  # any pytree of float arrays
Matvec = Callable[[Params], Params]


def as_partial(matvec: Matvec) -> Partial:
    """`matvec` as a pytree that jit takes as an argument (a `Partial` passes as it is)."""
    check_callable("matvec", matvec)
    return matvec if isinstance(matvec, Partial) else Partial(matvec)


def check_operator(matvec: Matvec, params: Params) -> tuple[int, int]:
    """(the number of entries n ≥ 1 of params, the bytes of one entry of their common dtype),
    after checking that matvec maps params to its shape (`InputError` otherwise)."""
    leaves = jax.tree.leaves(params)
    if not leaves or not all(jnp.issubdtype(jnp.result_type(a), jnp.floating) for a in leaves):
        raise InputError("params must be a non-empty pytree of float arrays")
    n = sum(int(jnp.size(a)) for a in leaves)
    if n == 0:
        shapes = [tuple(jnp.shape(a)) for a in leaves]
        raise InputError(f"params have no entries (shapes {shapes}): there is no matrix")
    want = jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), params)
    try:
        got = jax.eval_shape(matvec, params)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - a user's function: report what it did, in a line
        raise InputError(f"matvec(params) failed: {type(e).__name__}: {e}".splitlines()[0]) from e
    if jax.tree.structure(got) != jax.tree.structure(want) or any(
        (g.shape, g.dtype) != (w.shape, w.dtype)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True)
    ):
        raise InputError("matvec must return an array tree shaped like params")
    return n, jnp.dtype(jnp.result_type(*leaves)).itemsize


def check_key(key: Any) -> jax.Array:
    """`key` if it is a JAX random key (`jax.random.key(seed)` or a legacy `PRNGKey`)."""
    if key is None:
        raise InputError("key is required: pass jax.random.key(seed)")
    dtype = getattr(key, "dtype", None)
    typed = dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)
    legacy = dtype == jnp.uint32 and jnp.shape(key) == (2,)
    if not ((typed and jnp.ndim(key) == 0) or legacy):
        got = f"{jnp.shape(key)} {dtype}" if dtype is not None else type(key).__name__
        raise InputError(f"key must be one random key, jax.random.key(seed); got {got}")
    return key


def check_finite_result(name: str, values: jax.Array) -> jax.Array:
    """`values` if they are finite; else `InputError`: the matvec produced NaN or infinity.
    Inside `jit` (traced values) nothing is checked."""
    if isinstance(values, jax.core.Tracer):
        return values
    if not bool(jnp.all(jnp.isfinite(values))):
        raise InputError(
            f"{name}: the matvec's products hold NaN or infinity (at these params or data); "
            "nothing to report"
        )
    return values


def flat_matvec(matvec: Partial, params: Params) -> tuple[Callable, jax.Array]:
    """(q ↦ A q on flat vectors, the flat params)."""
    flat, unravel = ravel_pytree(params)
    return (lambda q: ravel_pytree(matvec(unravel(q)))[0]), flat


def unit(key: jax.Array, n: int, dtype, *, rademacher: bool = False) -> jax.Array:
    """A random unit vector of length n (Gaussian, or ±1/√n)."""
    if rademacher:
        return jax.random.rademacher(key, (n,), dtype) / jnp.sqrt(jnp.asarray(n, dtype))
    q = jax.random.normal(key, (n,), dtype)
    return q / jnp.linalg.norm(q)
