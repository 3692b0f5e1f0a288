"""The top eigenvalues of a symmetric map, by Lanczos and by power iteration, each with a
bound on its error.

Lanczos with full re-orthogonalisation: m steps build an orthonormal basis Q of the Krylov
space {q, Aq, …, A^(m−1) q} and the tridiagonal T = Qᵀ A Q, so that

    A Q = Q T + β_m q_(m+1) e_mᵀ.

The eigenvalues θ_i of T (Ritz values) converge to A's extreme eigenvalues first. For an
eigenpair (θ_i, s_i) of T, the Ritz vector y = Q s_i has the residual

    ‖A y − θ_i y‖ = |β_m| |s_(m,i)|,

free once T is diagonalised, and for a symmetric A the residual theorem (Bauer-Fike for a
normal matrix) puts an eigenvalue λ of A within it: |θ_i − λ| ≤ ‖A y − θ_i y‖ (‖y‖ = 1).
Power iteration (q ← Aq/‖Aq‖, θ = qᵀAq) has the same bound, ‖Aq − θq‖, at one product.

Each reported bound is that residual, plus what a restart of Lanczos dropped (see
`_extend`), plus an allowance for the rounding of the steps' own sums (a dot product of n
terms, summed pairwise), (log₂ n + 2) · ε · ‖T‖ for Lanczos (ε of the dtype) and
(log₂ n + 2) · ε · ‖Aq‖ for power iteration. The bound says how far θ is from *an*
eigenvalue of A, not that it is the i-th: a start vector with no component along an
eigenvector never sees it (in exact arithmetic; rounding usually brings it in), and a matvec
less accurate than its dtype (a float32 sum over many rows) adds an error no bound from the
products can see.

`tol=`: steps continue, `ROUND` at a time, until every bound is ≤ tol (absolute, in the
eigenvalues' units), up to `steps` (the cap); when the cap is reached first,
`NotConverged` says so and carries what was found.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

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
    unit,
)
from jaxcalc.validation import InputError, RunError, check_positive_finite, check_positive_int

#: Lanczos keeps all its vectors (steps x n entries): refuse more than this many bytes.
MAX_BASIS_BYTES = 2**32
ROUND = 10  # with tol: Lanczos steps between two looks at the bounds
TOL_STEPS = 200  # with tol: the default cap on the steps (then at most n)


class Ritz(NamedTuple):
    """Eigenvalue estimates and how sure they are.

    `values`: (k,) largest first (power iteration: one value, shape ()); `bounds`: the same
    shape, an eigenvalue of A lies within each, |θ_i − λ| ≤ bound_i; `steps`: the products
    of A taken (Lanczos steps; power iteration: iterations + 1); `converged`: with `tol`,
    whether every bound is ≤ tol, else None.
    """

    values: jax.Array
    bounds: jax.Array
    steps: int
    converged: bool | None


class NotConverged(RunError):
    """`tol` was not reached within the cap on the steps; `.result` holds the `Ritz` found."""

    def __init__(self, message: str, result: Ritz):
        super().__init__(message)
        self.result = result


# --------------------------------------------------------------------------- Lanczos


class Krylov(NamedTuple):
    """Lanczos after some steps, in buffers of `cap` rows (rows beyond the steps taken: 0)."""

    basis: jax.Array  # Q (cap, n): row j is q_j
    alpha: jax.Array  # (cap,) diagonal of T
    beta: jax.Array  # (cap,) beta[j] couples q_j and q_(j+1); 0 at a restart
    lost: jax.Array  # (cap,) ‖w‖ dropped by a restart after step j, else 0
    q: jax.Array  # (n,) the next vector
    scale: jax.Array  # max_j |alpha_j| + ‖w_j‖, the scale of A seen so far


def _start(q: jax.Array, cap: int) -> Krylov:
    zeros = jnp.zeros(cap, q.dtype)
    return Krylov(jnp.zeros((cap, q.shape[0]), q.dtype), zeros, zeros, zeros, q, zeros[0])


def _extend(A: Any, kry: Krylov, start: Any, stop: Any, key: jax.Array) -> Krylov:
    """Lanczos steps start .. stop − 1 (`start`, `stop` may be traced).

    Each new vector is orthogonalised against all earlier ones, twice (classical
    Gram-Schmidt twice is as good as modified). On breakdown (A's Krylov space exhausted,
    ‖w‖ ≈ 0) the next vector is a fresh random one orthogonal to Q, beta = 0 there, and
    the dropped ‖w‖ is kept in `lost`: T splits into blocks and still holds eigenvalues of
    A, and the relation A Q = Q T + … gains the dropped w in column j and its component
    along q_(j+1) in column j + 1, both at most ‖w‖ (counted in the bounds).
    """
    n, dtype = kry.q.shape[0], kry.q.dtype
    tol = jnp.sqrt(jnp.finfo(dtype).eps)

    def orthogonalise(Q: jax.Array, w: jax.Array) -> jax.Array:
        w = w - Q.T @ (Q @ w)
        return w - Q.T @ (Q @ w)

    def body(j, kry: Krylov) -> Krylov:
        Q = kry.basis.at[j].set(kry.q)
        w = A(kry.q)
        a = jnp.vdot(kry.q, w)
        w = orthogonalise(Q, w)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(kry.scale, jnp.abs(a) + b)
        ok = b > tol * scale

        def restart() -> jax.Array:
            fresh = orthogonalise(Q, unit(jax.random.fold_in(key, j), n, dtype))
            return fresh / jnp.linalg.norm(fresh)

        q = jax.lax.cond(ok, lambda: w / b, restart)
        beta = kry.beta.at[j].set(jnp.where(ok, b, 0))
        lost = kry.lost.at[j].set(jnp.where(ok, 0, b))
        return Krylov(Q, kry.alpha.at[j].set(a), beta, lost, q, scale)

    return jax.lax.fori_loop(start, stop, body, kry)


def lanczos(A: Any, q: jax.Array, steps: int, key: jax.Array) -> Krylov:
    """`steps` Lanczos steps of the flat map `A` from the unit vector `q` (`key`: restarts)."""
    return _extend(A, _start(q, steps), 0, steps, key)


def tridiagonal(alpha: jax.Array, beta: jax.Array) -> jax.Array:
    """T with diagonal `alpha` and off-diagonal `beta[:-1]`."""
    return jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)


@partial(jax.jit, static_argnames=("cap",))
def _begin(matvec: Partial, params: Params, key: jax.Array, cap: int) -> Krylov:
    _, flat = flat_matvec(matvec, params)
    return _start(unit(key, flat.shape[0], flat.dtype), cap)


@partial(jax.jit, donate_argnums=2)
def _continue(matvec: Partial, params: Params, kry: Krylov, start, stop, key) -> Krylov:
    A, _ = flat_matvec(matvec, params)
    return _extend(A, kry, start, stop, key)


@partial(jax.jit, static_argnames=("k",))
def _top_ritz(kry: Krylov, m: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """The k largest Ritz values after m steps (m traced, k ≤ m) and their bounds.

    T_m is diagonalised inside the (cap, cap) buffers as blockdiag(T_m, c I) with c below
    every eigenvalue of T_m (|θ| ≤ ‖T_m‖ ≤ 2 · scale), so one program serves every m.
    """
    cap, dtype = kry.alpha.shape[0], kry.alpha.dtype
    inside = jnp.arange(cap) < m
    below = -3 * kry.scale - 1
    beta = jnp.where(jnp.arange(cap) < m - 1, kry.beta, 0)
    theta, S = jnp.linalg.eigh(tridiagonal(jnp.where(inside, kry.alpha, below), beta))
    norm = jnp.maximum(theta[-1], -theta[cap - m])  # ‖T_m‖: its largest and least eigenvalue
    top, s = theta[::-1][:k], jnp.abs(jnp.where(inside[:, None], S[:, ::-1][:, :k], 0))
    lost = jnp.where(inside, kry.lost, 0)
    residual = kry.beta[m - 1] * s[m - 1] + lost @ s + lost[:-1] @ s[1:]
    rounding = (jnp.log2(kry.q.shape[0]) + 2) * jnp.finfo(dtype).eps * norm
    return top, residual + rounding


def default_steps(k: int) -> int:
    """The Lanczos steps for k eigenvalues when none are given: max(20, 2k + 10)."""
    return max(20, 2 * k + 10)


def lanczos_steps(
    n: int, k: int, steps: int | None, itemsize: int = 4, *, tol: bool = False
) -> int:
    """The Lanczos steps (with `tol`: the cap on them) for k eigenvalues of an n x n matrix:
    `steps` (at least k), default `default_steps(k)` (with `tol`: max(`TOL_STEPS`, that)),
    never more than n; `InputError` for a bad k or steps, or a basis of more than
    `MAX_BASIS_BYTES` (steps · n · itemsize)."""
    check_positive_int("k", k)
    if k > n:
        raise InputError(f"k = {k} exceeds the {n} parameters (the matrix is {n} x {n})")
    if steps is None:
        steps = max(TOL_STEPS, default_steps(k)) if tol else default_steps(k)
    check_positive_int("steps", steps)
    if steps < k:
        raise InputError(f"steps = {steps} is fewer than k = {k}: Lanczos finds at most steps")
    steps = min(steps, n)
    if steps * n * itemsize > MAX_BASIS_BYTES:
        raise InputError(
            f"{steps} Lanczos steps would keep {steps} vectors of {n} entries "
            f"({steps * n * itemsize / 2**30:.1f} GiB); ask for fewer steps or eigenvalues"
        )
    return steps


def _check_tol(tol: Any, params: Params) -> float | None:
    """`tol` checked; it needs concrete values (deciding when to stop), so not inside `jit`."""
    if tol is None:
        return None
    if any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(params)):
        raise InputError("tol decides on the host when to stop: call without jit, or give steps")
    return check_positive_finite("tol", tol)


def _not_converged(what: str, result: Ritz, tol: float, cap: str) -> NotConverged:
    worst = float(jnp.max(result.bounds))
    return NotConverged(
        f"{what}: after {result.steps} steps (the cap) the bounds reach {worst:.2g} > tol "
        f"{tol:g}; {cap}, or loosen tol",
        result,
    )


def top_eigenvalues(
    matvec: Matvec,
    params: Params,
    k: int = 1,
    *,
    key: jax.Array,
    steps: int | None = None,
    tol: float | None = None,
    with_bounds: bool = False,
) -> jax.Array | Ritz:
    """The k largest eigenvalues of the symmetric map `matvec`, descending, by Lanczos.

    Args:
      matvec: v ↦ A v on pytrees shaped like `params` (e.g. `partial(mlp.hvp, θ, x, y)`).
      params: the shape of v (its values are not used: the point θ is inside matvec).
      k: how many; 1 ≤ k ≤ n (the number of entries of params).
      key: a `jax.random.key` for the starting vector.
      steps: Lanczos steps m (each one product), k ≤ m; default max(20, 2k + 10), capped at
        n. With `tol`: the cap on the steps (default max(200, 2k + 10), at most n).
      tol: continue until every bound is ≤ tol (absolute); `NotConverged` (a `RunError`
        carrying the result) if the cap comes first.
      with_bounds: return a `Ritz` (values, bounds, steps, converged) instead of the values.
    Returns:
      (k,) Ritz values, largest first: exact to rounding when m = n; for m ≪ n the extreme
      eigenvalues converge first, at a rate set by their gap to the rest. With
      `with_bounds`, each with its bound: an eigenvalue of A lies within it.
    Example:
      >>> top_eigenvalues(lambda v: 2.0 * v, jnp.ones(3), 1, key=jax.random.key(0))  # [2.]
    """
    matvec = as_partial(matvec)
    n, itemsize = check_operator(matvec, params)
    key, tol = check_key(key), _check_tol(tol, params)
    cap = lanczos_steps(n, k, steps, itemsize, tol=tol is not None)
    k_start, k_restart = jax.random.split(key)
    kry = _begin(matvec, params, k_start, cap)
    done, m = 0, cap if tol is None else min(cap, default_steps(k))
    while True:
        kry = _continue(matvec, params, kry, done, m, k_restart)
        values, bounds = _top_ritz(kry, m, k)
        if tol is None or m == cap or bool(jnp.all(bounds <= tol)):
            break
        done, m = m, min(cap, m + ROUND)
    check_finite_result("top_eigenvalues", values + bounds)
    result = Ritz(values, bounds, m, None if tol is None else bool(jnp.all(bounds <= tol)))
    if result.converged is False:
        raise _not_converged(f"top {k} eigenvalues", result, tol, "raise steps (the cap)")
    return result if with_bounds else values


# --------------------------------------------------------------------------- power iteration


@partial(jax.jit, static_argnames=("steps",))
def _power(matvec: Partial, params: Params, key: jax.Array, steps: int, tol: jax.Array):
    """(θ, bound, iterations) of power iteration: at most `steps` iterations, fewer once the
    bound is ≤ tol (tol = −1: all of them)."""
    A, flat = flat_matvec(matvec, params)
    rounding = (jnp.log2(flat.shape[0]) + 2) * jnp.finfo(flat.dtype).eps

    def estimate(q: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
        theta = jnp.vdot(q, w)
        return theta, jnp.linalg.norm(w - theta * q) + rounding * jnp.linalg.norm(w)

    def more(carry) -> jax.Array:
        q, w, i = carry
        return (i < steps) & (estimate(q, w)[1] > tol)

    def body(carry):
        _, w, i = carry
        q = w / jnp.linalg.norm(w)
        return q, A(q), i + 1

    q = unit(key, flat.shape[0], flat.dtype)
    q, w, i = jax.lax.while_loop(more, body, (q, A(q), jnp.zeros([], jnp.int32)))
    return *estimate(q, w), i


def power_iteration(
    matvec: Matvec,
    params: Params,
    *,
    key: jax.Array,
    steps: int = 100,
    tol: float | None = None,
    with_bounds: bool = False,
) -> jax.Array | Ritz:
    """The eigenvalue of largest magnitude by power iteration: q ← Aq / ‖Aq‖, then θ = qᵀAq.

    Lanczos's textbook twin: converges like (λ₂/λ₁)^steps, so slowly when the top two are
    close, and to the most negative eigenvalue when it is the largest in magnitude. Its
    bound is the residual ‖Aq − θq‖ (and rounding's allowance): an eigenvalue of A lies
    within it. `steps`:
    the iterations (with `tol`, the most of them: it stops once the bound is ≤ tol, else
    raises `NotConverged`); `with_bounds`: return a `Ritz` (value, bound, products, converged).
    """
    matvec = as_partial(matvec)
    check_operator(matvec, params)
    check_positive_int("steps", steps)
    key, tol = check_key(key), _check_tol(tol, params)
    theta, bound, i = _power(matvec, params, key, steps, jnp.asarray(-1.0 if tol is None else tol))
    check_finite_result("power_iteration", theta + bound)
    converged = None if tol is None else bool(bound <= tol)
    taken = i + 1 if isinstance(i, jax.core.Tracer) else int(i) + 1  # inside jit: traced
    result = Ritz(theta, bound, taken, converged)
    if converged is False:
        raise _not_converged("power iteration", result, tol, "raise steps")
    return result if with_bounds else theta
