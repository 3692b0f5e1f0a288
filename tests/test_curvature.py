"""Matrix-free spectra on matrices whose spectrum is known in advance."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jax.tree_util import Partial

from jaxcalc import curvature, gradcheck, mlp
from jaxcalc.validation import InputError

KEY = jax.random.key(0)


def _symmetric(n: int, seed: int = 0) -> np.ndarray:
    m = np.random.default_rng(seed).normal(size=(n, n))
    return (m + m.T) / 2


def _relative(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def test_top_k_of_a_random_symmetric_matrix(x64):
    A = jnp.asarray(_symmetric(60))
    exact = np.linalg.eigvalsh(np.asarray(A))[::-1]
    top = curvature.top_eigenvalues(lambda v: A @ v, jnp.zeros(60), 5, key=KEY, steps=60)
    assert _relative(top, exact[:5]) <= 1e-6  # measured ~1e-15
    fewer = curvature.top_eigenvalues(lambda v: A @ v, jnp.zeros(60), 2, key=KEY, steps=45)
    assert _relative(fewer, exact[:2]) <= 1e-6


def test_top_k_of_a_diagonal_with_outliers_on_a_pytree(x64):
    """A diagonal operator on a dict: 40 eigenvalues in [1, 2] and outliers 5, 7, 10."""
    d = {"a": jnp.linspace(1.0, 2.0, 40).reshape(8, 5), "b": jnp.array([5.0, 7.0, 10.0])}
    matvec = lambda v: jax.tree.map(jnp.multiply, d, v)  # noqa: E731
    params = jax.tree.map(jnp.zeros_like, d)
    top = curvature.top_eigenvalues(matvec, params, 3, key=KEY, steps=20)
    assert _relative(top, [10.0, 7.0, 5.0]) <= 1e-6
    power = curvature.power_iteration(matvec, params, key=KEY, steps=200)  # (7/10)^200
    assert float(power) == pytest.approx(10.0, rel=1e-6)


def test_repeated_eigenvalues_are_found_by_restarting(x64):
    d = jnp.concatenate([jnp.ones(30), 3.0 * jnp.ones(3)])
    top = curvature.top_eigenvalues(lambda v: d * v, jnp.zeros(33), 4, key=KEY, steps=33)
    np.testing.assert_allclose(top, [3.0, 3.0, 3.0, 1.0], rtol=1e-12)


def test_dense_hessian_of_a_small_network(x64):
    """Lanczos on the hand-written H v against eigvalsh of jax.hessian (5-4-3, 39 parameters)."""
    params, x, y = gradcheck.problem(0, (5, 4, 3), 6, "cross_entropy", jnp.float64)
    flat, unravel = ravel_pytree(params)
    loss = lambda f: mlp.loss_fn(unravel(f), x, y, activation="tanh")  # noqa: E731
    dense = jax.jit(jax.hessian(loss))(flat)
    exact = np.linalg.eigvalsh(np.asarray(dense))[::-1]
    matvec = curvature.data_matvec(mlp.hvp, params, x, y, activation="tanh")
    top = curvature.top_eigenvalues(matvec, params, 3, key=KEY, steps=39)
    assert _relative(top, exact[:3]) <= 1e-6
    estimate, stderr = curvature.hutchinson_trace(matvec, params, key=KEY, samples=200)
    assert abs(float(estimate) - exact.sum()) <= 3 * float(stderr)


def test_hutchinson_within_three_standard_errors(x64):
    A = jnp.asarray(_symmetric(50, seed=1) + 3 * np.eye(50))
    exact = float(jnp.trace(A))
    estimate, stderr = curvature.hutchinson_trace(lambda v: A @ v, jnp.zeros(50), key=KEY)
    assert 0 < float(stderr) < 10 and abs(float(estimate) - exact) <= 3 * float(stderr)
    d = jnp.arange(1.0, 11.0)
    estimate, stderr = curvature.hutchinson_trace(lambda v: d * v, d, key=KEY, samples=5)
    assert float(estimate) == 55.0 and float(stderr) == 0.0  # z ⊙ d ⊙ z = d: exact


def test_density_integrates_to_one_where_the_eigenvalues_are(x64):
    """80% of the eigenvalues near 1, 20% near 10: the density's mass follows."""
    rng = np.random.default_rng(2)
    eig = np.concatenate([1 + 0.1 * rng.uniform(size=80), 10 + 0.1 * rng.uniform(size=20)])
    Q = np.linalg.qr(rng.normal(size=(100, 100)))[0]
    A = jnp.asarray(Q @ np.diag(eig) @ Q.T)
    grid, density = curvature.spectral_density(
        lambda v: A @ v, jnp.zeros(100), key=KEY, runs=20, steps=30
    )
    grid, density = np.asarray(grid), np.asarray(density)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)
    near = lambda c: np.trapezoid(density * (np.abs(grid - c) < 1), grid)  # noqa: E731
    assert near(1.05) == pytest.approx(0.8, abs=0.1)
    assert near(10.05) == pytest.approx(0.2, abs=0.1)
    assert near(5.5) < 1e-3  # nothing in the gap
    nodes, weights = curvature.lanczos_quadrature(
        lambda v: A @ v, jnp.zeros(100), key=KEY, runs=3, steps=30
    )
    np.testing.assert_allclose(np.sum(weights, axis=1), 1.0, rtol=1e-12)
    assert np.min(nodes) >= eig.min() - 1e-9 and np.max(nodes) <= eig.max() + 1e-9


def test_data_matvec_sums_chunks_like_one_batch(x64):
    params, x, y = gradcheck.problem(1, (5, 4, 3), 23, "mse", jnp.float64)
    v = gradcheck.direction(2, params)
    kw = {"activation": "sigmoid", "loss": "mse", "output": "identity"}
    whole = mlp.hvp(params, x, y, v, **kw)
    for batch_size in (5, 100):  # 4 chunks and a remainder of 3; more rows than there are
        chunked = curvature.data_matvec(mlp.hvp, params, x, y, batch_size=batch_size, **kw)(v)
        assert max(gradcheck.gradient_errors(chunked, whole).values()) <= 1e-14
    matvec = curvature.data_matvec(mlp.ggn_vp, params, x, y, batch_size=5, **kw)
    assert "scan" in str(jax.make_jaxpr(matvec)(v))  # chunks in a lax.scan
    again = curvature.data_matvec(mlp.ggn_vp, params, x, y, batch_size=5, **kw)
    assert jax.tree.structure(again) == jax.tree.structure(matvec)  # reuses the compilation


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, p: curvature.top_eigenvalues(m, p, 0, key=KEY), "k must be"),
        (lambda m, p: curvature.top_eigenvalues(m, p, 9, key=KEY), "exceeds the 8 parameters"),
        (lambda m, p: curvature.top_eigenvalues(m, p, 3, key=KEY, steps=2), "fewer than k"),
        (lambda m, p: curvature.top_eigenvalues(m, p, 1, key=None), "key is required"),
        (lambda m, p: curvature.top_eigenvalues(lambda v: v[:2], p, key=KEY), "shaped like"),
        (lambda m, p: curvature.top_eigenvalues(m, p.astype(int), key=KEY), "float arrays"),
        (lambda m, p: curvature.hutchinson_trace(m, p, key=KEY, samples=1), "at least 2"),
        (lambda m, p: curvature.spectral_density(m, p, key=KEY, runs=0), "runs must be"),
        (lambda m, p: curvature.spectral_density(m, p, key=KEY, sigma=-1.0), "sigma must be"),
        (lambda m, p: curvature.spectral_density(m, p, key=KEY, sigma=np.inf), "sigma must be"),
        (lambda m, p: curvature.spectral_density(m, p, key=KEY, sigma=np.nan), "sigma must be"),
        (lambda m, p: curvature.spectral_density(m, p, key=KEY, grid=[0.0, np.nan]), "finite"),
        (lambda m, p: curvature.spectral_density(m, p, key=KEY, grid=jnp.zeros(0)), "1-D"),
        (lambda m, p: curvature.spectral_density(m, p, key=KEY, grid=jnp.zeros((2, 2))), "1-D"),
        (lambda m, p: curvature.density_on_grid(jnp.zeros((2, 3)), jnp.zeros(3)), "one shape"),
        (lambda m, p: curvature.top_eigenvalues(m, p, key=KEY, tol=0.0), "tol must be"),
        (lambda m, p: curvature.top_eigenvalues(m, p, key=KEY, tol=np.inf), "tol must be"),
        (lambda m, p: curvature.power_iteration(m, p, key=KEY, tol=-1.0), "tol must be"),
        (lambda m, p: curvature.power_iteration(m, p, key=KEY, steps=0), "steps must be"),
        (lambda m, p: curvature.top_eigenvalues(m, p, key=0), "key must be one random key"),
        (lambda m, p: curvature.hutchinson_trace(m, p, key=jax.random.split(KEY)), "one random"),
        (lambda m, p: curvature.top_eigenvalues(m, jnp.zeros(0), key=KEY), "no entries"),
        (lambda m, p: curvature.hutchinson_trace(m, {"a": jnp.zeros((0, 3))}, key=KEY), "no ent"),
        (lambda m, p: curvature.top_eigenvalues(lambda v: v * jnp.nan, p, key=KEY), "NaN"),
        (lambda m, p: curvature.hutchinson_trace(lambda v: v / 0.0, p, key=KEY), "NaN"),
        (lambda m, p: curvature.data_matvec(mlp.hvp, {}, jnp.zeros((0, 4)), jnp.zeros(0)), "row"),
        (lambda m, p: curvature.data_matvec(mlp.hvp, {}, jnp.zeros((3, 4)), jnp.zeros(2)), "y"),
        (lambda m, p: curvature.data_matvec(mlp.hvp, {}, jnp.zeros(()), jnp.zeros(())), "row"),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(InputError, match=message):
        call(lambda v: 2.0 * v, jnp.zeros(8))


def test_a_basis_too_big_for_memory_is_refused():
    big = jnp.zeros(10**6)  # 2,000 steps would keep 8 GB of vectors
    with pytest.raises(InputError, match="would keep 2000 vectors"):
        curvature.top_eigenvalues(lambda v: v, big, 1, key=KEY, steps=2000)


# --------------------------------------------------------------------------- bounds


def _known_spectrum(n: int, seed: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(A = U diag(λ) Uᵀ for a random orthogonal U, its eigenvalues λ by float64 eigvalsh)."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        eig = rng.normal(size=n)
    elif kind == "clustered":  # a tight bulk near 1 and close outliers: slow convergence
        eig = np.concatenate([1 + 0.01 * rng.normal(size=n - 3), [5.0, 5.0001, 7.0]])
    else:  # six decades, both signs: power iteration chases the largest |λ|
        eig = np.logspace(-3, 3, n) * rng.choice([-1.0, 1.0], n)
    U = np.linalg.qr(rng.normal(size=(n, n)))[0]
    A = (U * eig) @ U.T
    return A, np.linalg.eigvalsh(A)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_bound_holds_the_true_error(dtype):
    """|θ − λ_nearest| ≤ bound for every Ritz value of Lanczos and for power iteration, on
    matrices of known spectrum, sizes 12 and 60, three spectra, 5 steps to the full size.
    The reference is float64 `eigvalsh` of the same matrix (accurate to 8 ε‖A‖, allowed)."""
    checks, tight = 0, 0.0
    with jax.enable_x64(dtype == "float64"):
        for n, seed, kind in itertools.product((12, 60), (0, 1), ("normal", "clustered", "wide")):
            A, exact = _known_spectrum(n, seed, kind)
            A = jnp.asarray(A, dtype)
            exact = np.linalg.eigvalsh(np.asarray(A, np.float64))
            reference = 8 * np.finfo(np.float64).eps * np.abs(exact).max()
            matvec = Partial(jnp.matmul, A)  # A as data: one compilation per shape
            zeros = jnp.zeros(n, dtype)
            for steps in sorted({5, 15, n}):
                k = min(3, steps)
                found = [
                    curvature.top_eigenvalues(
                        matvec, zeros, k, key=jax.random.key(seed), steps=steps, with_bounds=True
                    ),
                    curvature.power_iteration(
                        matvec, zeros, key=jax.random.key(seed), steps=steps, with_bounds=True
                    ),
                ]
                for r in found:
                    values = np.atleast_1d(np.asarray(r.values, np.float64))
                    bounds = np.atleast_1d(np.asarray(r.bounds, np.float64))
                    for theta, bound in zip(values, bounds, strict=True):
                        error = np.abs(exact - theta).min()
                        assert error <= bound + reference, (n, seed, kind, steps, theta, bound)
                        tight = max(tight, error / bound)
                        checks += 1
    assert checks == 12 * 3 * (3 + 1)  # 12 matrices x 3 step counts x (3 Ritz values + power)
    assert tight > 0.5  # the bounds are not loose by orders of magnitude (measured 0.97)


def test_tol_is_reached_and_the_cap_is_honest(x64):
    A, exact = _known_spectrum(150, 3, "normal")
    matvec, zeros = Partial(jnp.matmul, jnp.asarray(A)), jnp.zeros(150)
    plain = curvature.top_eigenvalues(matvec, zeros, 3, key=KEY, with_bounds=True)
    assert plain.steps == 20 and plain.converged is None and np.max(plain.bounds) > 1e-4
    r = curvature.top_eigenvalues(matvec, zeros, 3, key=KEY, tol=1e-9, with_bounds=True)
    assert r.converged is True and np.all(np.asarray(r.bounds) <= 1e-9)
    assert 20 < r.steps <= 150 and (r.steps - 20) % 10 == 0  # rounds of 10 after the first
    np.testing.assert_allclose(r.values, exact[::-1][:3], atol=1e-9)
    values = curvature.top_eigenvalues(matvec, zeros, 3, key=KEY, tol=1e-9)  # values only
    np.testing.assert_array_equal(values, r.values)
    with pytest.raises(curvature.NotConverged, match=r"after 30 steps \(the cap\).*> tol 1e-12"):
        curvature.top_eigenvalues(matvec, zeros, 3, key=KEY, tol=1e-12, steps=30)
    try:
        curvature.top_eigenvalues(matvec, zeros, 3, key=KEY, tol=1e-12, steps=30)
    except curvature.NotConverged as e:
        assert e.result.steps == 30 and e.result.converged is False
        assert np.max(np.asarray(e.result.bounds)) > 1e-12
    d = jnp.linspace(1.0, 2.0, 40).at[-1].set(4.0)  # power iteration: contraction 1/2 a step
    p = curvature.power_iteration(lambda v: d * v, d, key=KEY, steps=500, tol=1e-10,
                                  with_bounds=True)  # fmt: skip
    assert p.converged and float(p.bounds) <= 1e-10 and abs(float(p.values) - 4.0) <= 1e-10
    assert p.steps < 60  # stopped early: about 34 halvings of the other components
    with pytest.raises(curvature.NotConverged, match="power iteration: after 6 steps"):
        curvature.power_iteration(lambda v: d * v, d, key=KEY, steps=5, tol=1e-10)


def test_inside_jit_without_tol_and_refused_with_it():
    d = jnp.array([1.0, 2.0, 5.0])
    top = jax.jit(lambda p: curvature.top_eigenvalues(lambda v: d * v, p, 1, key=KEY, steps=3))
    assert float(top(d)[0]) == pytest.approx(5.0, rel=1e-5)
    r = jax.jit(lambda p: curvature.power_iteration(lambda v: d * v, p, key=KEY, with_bounds=True))
    assert float(r(d).values) == pytest.approx(5.0, rel=1e-5) and int(r(d).steps) == 101
    with pytest.raises(InputError, match="tol decides on the host"):
        jax.jit(lambda p: curvature.top_eigenvalues(lambda v: d * v, p, key=KEY, tol=1e-3))(d)
