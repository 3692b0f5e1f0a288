"""Matrix-free spectra: of any symmetric matrix known only through its products v ↦ A v.

A Hessian of a network with 800,000 parameters has 6.4·10¹¹ entries; its product with a
vector costs about two gradients (`mlp.hvp`). Everything here needs only that product,
`matvec: Params -> Params` (H, the Gauss-Newton G, or any symmetric map on a pytree of
arrays), and runs jit-compiled (a `jax.tree_util.Partial` matvec is passed as data, so the
arrays it holds are not baked into the program, and equal ones reuse the compilation):

- `top_eigenvalues`: Lanczos with full re-orthogonalisation. m steps build an orthonormal
  basis Q of the Krylov space {q, Aq, …, A^(m−1) q} and the tridiagonal T = Qᵀ A Q; the
  eigenvalues of T (Ritz values) converge to A's extreme eigenvalues first, to machine
  precision once m reaches n. `power_iteration` is its textbook twin (q ← Aq/‖Aq‖).
- `hutchinson_trace`: tr A = E[zᵀ A z] for Rademacher z (±1 entries), averaged over samples,
  with the standard error of that mean.
- `spectral_density`: stochastic Lanczos quadrature (Ghorbani et al. 2019, PyHessian's
  ESD): for a random unit q, the eigenvalues θ_j of T and the squared first components τ_j
  of its eigenvectors are a Gauss quadrature of the measure Σ_i (qᵀu_i)² δ(λ − λ_i), whose
  expectation is the spectral density (1/n) Σ_i δ(λ − λ_i); each node is smoothed by a
  Gaussian of width σ.
- `data_matvec`: the product (e.g. `mlp.hvp`) of the mean loss over a whole data set,
  summed over chunks of rows in a `lax.scan`, so memory does not grow with the rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.tree_util import Partial

from jaxcalc.validation import InputError, check_callable, check_positive_int

Params = Any  # any pytree of float arrays
Matvec = Callable[[Params], Params]


# --------------------------------------------------------------------------- set-up


def _as_partial(matvec: Matvec) -> Partial:
    """`matvec` as a pytree that jit takes as an argument (a `Partial` passes as it is)."""
    check_callable("matvec", matvec)
    return matvec if isinstance(matvec, Partial) else Partial(matvec)


def _size(matvec: Matvec, params: Params) -> tuple[int, int]:
    """(the number of entries n of params, the bytes of one entry of their common dtype),
    after checking that matvec maps params to its shape."""
    leaves = jax.tree.leaves(params)
    if not leaves or not all(jnp.issubdtype(jnp.result_type(a), jnp.floating) for a in leaves):
        raise InputError("params must be a non-empty pytree of float arrays")
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
    itemsize = jnp.dtype(jnp.result_type(*leaves)).itemsize
    return sum(int(jnp.size(a)) for a in leaves), itemsize


def _flat_matvec(matvec: Partial, params: Params) -> tuple[Callable, jax.Array]:
    """(q ↦ A q on flat vectors, the flat params)."""
    flat, unravel = ravel_pytree(params)
    return (lambda q: ravel_pytree(matvec(unravel(q)))[0]), flat


def _unit(key: jax.Array, n: int, dtype, *, rademacher: bool = False) -> jax.Array:
    """A random unit vector of length n (Gaussian, or ±1/√n)."""
    if rademacher:
        return jax.random.rademacher(key, (n,), dtype) / jnp.sqrt(jnp.asarray(n, dtype))
    q = jax.random.normal(key, (n,), dtype)
    return q / jnp.linalg.norm(q)


def _key(key: Any) -> jax.Array:
    if key is None:
        raise InputError("key is required: pass jax.random.key(seed)")
    return key


# --------------------------------------------------------------------------- Lanczos


def _lanczos(A: Callable, q: jax.Array, steps: int, key: jax.Array):
    """`steps` Lanczos steps from the unit q: (alpha, beta) of T, and Q (steps, n).

    Each new vector is orthogonalised against all earlier ones, twice (classical
    Gram-Schmidt twice is as good as modified). On breakdown (A's Krylov space exhausted,
    ‖w‖ ≈ 0) the next vector is a fresh random one orthogonal to Q, and beta = 0 there:
    T splits into blocks, and still holds eigenvalues of A.
    """
    n, dtype = q.shape[0], q.dtype
    tol = jnp.sqrt(jnp.finfo(dtype).eps)

    def orthogonalise(Q: jax.Array, w: jax.Array) -> jax.Array:
        w = w - Q.T @ (Q @ w)
        return w - Q.T @ (Q @ w)

    def body(j, carry):
        Q, alpha, beta, q, scale = carry
        Q = Q.at[j].set(q)
        w = A(q)
        a = jnp.vdot(q, w)
        w = orthogonalise(Q, w)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.abs(a) + b)
        ok = b > tol * scale

        def restart() -> jax.Array:
            fresh = orthogonalise(Q, _unit(jax.random.fold_in(key, j), n, dtype))
            return fresh / jnp.linalg.norm(fresh)

        q = jax.lax.cond(ok, lambda: w / b, restart)
        return Q, alpha.at[j].set(a), beta.at[j].set(jnp.where(ok, b, 0)), q, scale

    init = (jnp.zeros((steps, n), dtype), jnp.zeros(steps, dtype), jnp.zeros(steps, dtype), q)
    Q, alpha, beta, _, _ = jax.lax.fori_loop(0, steps, body, (*init, jnp.zeros((), dtype)))
    return alpha, beta, Q


def _ritz(alpha: jax.Array, beta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eigenvalues (ascending) and eigenvectors of the tridiagonal T(alpha, beta[:-1])."""
    T = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    return jnp.linalg.eigh(T)


@partial(jax.jit, static_argnames=("k", "steps"))
def _top(matvec: Partial, params: Params, key: jax.Array, k: int, steps: int) -> jax.Array:
    A, flat = _flat_matvec(matvec, params)
    k_start, k_restart = jax.random.split(key)
    alpha, beta, _ = _lanczos(A, _unit(k_start, flat.shape[0], flat.dtype), steps, k_restart)
    return _ritz(alpha, beta)[0][::-1][:k]


#: Lanczos keeps all its vectors (steps x n entries): refuse more than this many bytes.
MAX_BASIS_BYTES = 2**32


def lanczos_steps(n: int, k: int, steps: int | None, itemsize: int = 4) -> int:
    """The Lanczos steps for k eigenvalues of an n x n matrix: `steps` (at least k), default
    max(20, 2k + 10), never more than n; `InputError` for a bad k or steps, or a basis of
    more than `MAX_BASIS_BYTES` (steps · n · itemsize)."""
    check_positive_int("k", k)
    if k > n:
        raise InputError(f"k = {k} exceeds the {n} parameters (the matrix is {n} x {n})")
    if steps is None:
        steps = max(20, 2 * k + 10)
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


def top_eigenvalues(
    matvec: Matvec, params: Params, k: int = 1, *, key: jax.Array, steps: int | None = None
) -> jax.Array:
    """The k largest eigenvalues of the symmetric map `matvec`, descending, by Lanczos.

    Args:
      matvec: v ↦ A v on pytrees shaped like `params` (e.g. `partial(mlp.hvp, θ, x, y)`).
      params: the shape of v (its values are not used: the point θ is inside matvec).
      k: how many; 1 ≤ k ≤ n (the number of entries of params).
      key: a `jax.random.key` for the starting vector.
      steps: Lanczos steps m (each one product), k ≤ m; default max(20, 2k + 10), capped at n.
    Returns:
      (k,) Ritz values, largest first: exact to rounding when m = n; for m ≪ n the extreme
      eigenvalues converge first, at a rate set by their gap to the rest.
    Example:
      >>> top_eigenvalues(lambda v: 2.0 * v, jnp.ones(3), 1, key=jax.random.key(0))  # [2.]
    """
    matvec = _as_partial(matvec)
    n, itemsize = _size(matvec, params)
    return _top(matvec, params, _key(key), k, lanczos_steps(n, k, steps, itemsize))


@partial(jax.jit, static_argnames=("steps",))
def _power(matvec: Partial, params: Params, key: jax.Array, steps: int) -> jax.Array:
    A, flat = _flat_matvec(matvec, params)

    def body(_, q):
        w = A(q)
        return w / jnp.linalg.norm(w)

    q = jax.lax.fori_loop(0, steps, body, _unit(key, flat.shape[0], flat.dtype))
    return jnp.vdot(q, A(q))


def power_iteration(
    matvec: Matvec, params: Params, *, key: jax.Array, steps: int = 100
) -> jax.Array:
    """The eigenvalue of largest magnitude by power iteration: q ← Aq / ‖Aq‖, then qᵀAq.

    Lanczos's textbook twin: converges like (λ₂/λ₁)^steps, so slowly when the top two are
    close, and to the most negative eigenvalue when it is the largest in magnitude.
    """
    matvec = _as_partial(matvec)
    _size(matvec, params)
    check_positive_int("steps", steps)
    return _power(matvec, params, _key(key), steps)


# --------------------------------------------------------------------------- trace


@partial(jax.jit, static_argnames=("samples",))
def _hutchinson(matvec: Partial, params: Params, key: jax.Array, samples: int) -> jax.Array:
    A, flat = _flat_matvec(matvec, params)

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
    matvec = _as_partial(matvec)
    _size(matvec, params)
    check_positive_int("samples", samples)
    if samples < 2:
        raise InputError("samples must be at least 2 for a standard error")
    values = _hutchinson(matvec, params, _key(key), samples)
    return jnp.mean(values), jnp.std(values, ddof=1) / jnp.sqrt(samples)


# --------------------------------------------------------------------------- density


@partial(jax.jit, static_argnames=("runs", "steps"))
def _quadrature(matvec: Partial, params: Params, key: jax.Array, runs: int, steps: int):
    A, flat = _flat_matvec(matvec, params)

    def run(k: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_start, k_restart = jax.random.split(k)
        q = _unit(k_start, flat.shape[0], flat.dtype, rademacher=True)
        alpha, beta, _ = _lanczos(A, q, steps, k_restart)
        nodes, vectors = _ritz(alpha, beta)
        return nodes, vectors[0] ** 2

    return jax.lax.map(run, jax.random.split(key, runs))


def lanczos_quadrature(
    matvec: Matvec, params: Params, *, key: jax.Array, runs: int = 5, steps: int = 30
) -> tuple[jax.Array, jax.Array]:
    """Nodes θ (runs, steps) and weights τ (runs, steps), each run's weights summing to 1:
    the Gauss quadrature of the spectral measure seen from a random unit vector."""
    matvec = _as_partial(matvec)
    n, itemsize = _size(matvec, params)
    check_positive_int("runs", runs)
    return _quadrature(matvec, params, _key(key), runs, lanczos_steps(n, 1, steps, itemsize))


def density_on_grid(
    nodes: jax.Array, weights: jax.Array, *, grid: jax.Array | None = None, sigma=None
) -> tuple[jax.Array, jax.Array]:
    """(grid, Σ_runs,j τ_j N(t; θ_j, σ²) / runs): quadrature nodes smoothed by Gaussians.

    Defaults: σ = 1/200 of the nodes' range (or 1e-3 · max(1, |θ|) for a single point), and
    2001 points from the least node − 6σ to the largest + 6σ, so it integrates to 1.
    """
    nodes, weights = jnp.asarray(nodes), jnp.asarray(weights)
    lo, hi = jnp.min(nodes), jnp.max(nodes)
    if sigma is None:
        sigma = jnp.where(hi > lo, (hi - lo) / 200, 1e-3 * jnp.maximum(1.0, jnp.abs(hi)))
    elif not float(sigma) > 0:
        raise InputError(f"sigma must be > 0, got {sigma}")
    if grid is None:
        grid = jnp.linspace(lo - 6 * sigma, hi + 6 * sigma, 2001, dtype=nodes.dtype)
    grid = jnp.asarray(grid)
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
    smoothed by a Gaussian of width `sigma` (see `density_on_grid` for the defaults).
    """
    nodes, weights = lanczos_quadrature(matvec, params, key=key, runs=runs, steps=steps)
    return density_on_grid(nodes, weights, grid=grid, sigma=sigma)


# --------------------------------------------------------------------------- data sets


@dataclasses.dataclass(frozen=True)
class _Chunked:
    """(params, x, y, v) ↦ the mean of `product` over the rows of x, chunk by chunk."""

    product: Callable
    batch_size: int | None
    kwargs: tuple[tuple[str, Any], ...]

    def __call__(self, params: Params, x: jax.Array, y: jax.Array, v: Params) -> Params:
        kw = dict(self.kwargs)
        n = x.shape[0]
        b = min(self.batch_size or n, n)
        m, rest = divmod(n, b)
        if m == 1 and not rest:  # one chunk: no loop
            return self.product(params, x, y, v, **kw)

        def body(total: Params, xy: tuple[jax.Array, jax.Array]) -> tuple[Params, None]:
            out = self.product(params, xy[0], xy[1], v, **kw)
            return jax.tree.map(lambda t, o: t + b * o, total, out), None

        chunks = (x[: m * b].reshape(m, b, *x.shape[1:]), y[: m * b].reshape(m, b, *y.shape[1:]))
        total, _ = jax.lax.scan(body, jax.tree.map(jnp.zeros_like, v), chunks)
        if rest:
            out = self.product(params, x[m * b :], y[m * b :], v, **kw)
            total = jax.tree.map(lambda t, o: t + rest * o, total, out)
        return jax.tree.map(lambda t: t / n, total)


def data_matvec(
    product: Callable,
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    batch_size: int | None = None,
    **kwargs: Any,
) -> Partial:
    """v ↦ `product(params, x, y, v, **kwargs)` for the mean loss over all rows of (x, y).

    The rows are taken `batch_size` at a time in a `lax.scan` and their products summed,
    weighted by rows (the mean loss is the row-weighted mean of the chunks' mean losses), so
    memory is that of one chunk. `product` has `mlp.hvp`'s signature (`mlp.ggn_vp` too);
    `kwargs` (activation, loss, output) are static. Equal arguments give an equal matvec,
    so a new θ of the same shape reuses the compiled Lanczos.
    """
    if batch_size is not None:
        check_positive_int("batch_size", batch_size)
    func = _Chunked(product, batch_size, tuple(sorted(kwargs.items())))
    return Partial(func, params, x, y)
