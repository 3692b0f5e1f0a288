"""Each hand-written activation derivative against JAX's autodiff, in float32 and float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from jaxcalc import activations as A

# JAX's own tolerances (DESIGN.md): values, gradients
TOL = {"float32": (1e-6, 2e-3), "float64": (1e-15, 1e-5)}
# a grid with 0, both extremes, and where sigmoid/tanh saturate
GRID = np.concatenate([np.linspace(-10, 10, 41), [-1000, -100, -30, -1e-7, 0, 1e-7, 30, 100, 1000]])
REFERENCE = {
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "identity": lambda z: z,
}


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    with jax.enable_x64(request.param == "float64"):
        yield request.param


@pytest.mark.parametrize("name", A.ACTIVATIONS)
def test_elementwise_derivative_matches_autodiff(name, dtype):
    f, f_grad = A.ACTIVATIONS[name].f, A.ACTIVATIONS[name].grad
    z = jnp.asarray(GRID, dtype=dtype)
    auto = jax.jit(jax.vmap(jax.grad(f)))(z)
    mine = f_grad(z)
    assert mine.dtype == z.dtype
    tol = TOL[dtype][1]
    np.testing.assert_allclose(mine, auto, rtol=tol, atol=tol)
    assert np.all(np.isfinite(mine))


@pytest.mark.parametrize("name", A.ACTIVATIONS)
def test_derivative_from_the_output_matches_autodiff(name, dtype):
    """f'(z) from h = f(z) (what the backward pass keeps) equals jax.grad(f)(z) and f_grad(z)."""
    act = A.ACTIVATIONS[name]
    z = jnp.asarray(GRID, dtype=dtype)
    mine = act.grad_from_output(act.f(z))
    assert mine.dtype == z.dtype
    tol = TOL[dtype][1]
    np.testing.assert_allclose(mine, jax.jit(jax.vmap(jax.grad(act.f)))(z), rtol=tol, atol=tol)
    np.testing.assert_array_equal(mine, act.grad(z))  # one formula: f_grad goes through it


def test_derivatives_from_the_output_by_hand():
    h = jnp.array([0.0, 0.25, 0.5, 1.0])
    np.testing.assert_array_equal(A.sigmoid_grad_from_output(h), [0.0, 0.1875, 0.25, 0.0])
    np.testing.assert_array_equal(A.tanh_grad_from_output(h), [1.0, 0.9375, 0.75, 0.0])
    np.testing.assert_array_equal(A.relu_grad_from_output(h), [0.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(A.identity_grad_from_output(-h), [1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("name", A.ACTIVATIONS)
def test_values_match_jax_nn(name, dtype):
    f = A.ACTIVATIONS[name].f
    z = jnp.asarray(GRID, dtype=dtype)
    tol = TOL[dtype][0]
    np.testing.assert_allclose(f(z), REFERENCE[name](z), rtol=tol, atol=tol)


def test_relu_convention_at_zero():
    # relu'(0) = 0, as jax.grad(jax.nn.relu) and PyTorch take it
    assert float(A.relu_grad(jnp.float32(0.0))) == 0.0
    assert float(jax.jit(jax.grad(A.relu))(0.0)) == 0.0 == float(jax.grad(jax.nn.relu)(0.0))
    assert float(A.relu_grad(jnp.float32(1e-30))) == 1.0


def test_sigmoid_is_finite_at_plus_minus_1000_in_float32():
    z = jnp.array([-1000.0, 1000.0], dtype=jnp.float32)
    np.testing.assert_array_equal(A.sigmoid(z), [0.0, 1.0])
    np.testing.assert_array_equal(A.sigmoid_grad(z), [0.0, 0.0])
    assert np.all(np.isfinite(jax.jit(jax.vmap(jax.grad(A.sigmoid)))(z)))
    # and it keeps relative accuracy in the far tail (e^-80 is a normal float32)
    np.testing.assert_allclose(A.sigmoid(jnp.float32(-80.0)), np.exp(-80.0), rtol=1e-6)


def test_sigmoid_known_values():
    z = jnp.array([0.0, 2.0, -2.0])
    np.testing.assert_allclose(
        A.sigmoid(z), [0.5, 1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2))], rtol=1e-6
    )
    np.testing.assert_allclose(A.sigmoid_grad(jnp.float32(0.0)), 0.25)
    np.testing.assert_allclose(A.tanh_grad(jnp.float32(0.0)), 1.0)


def test_softmax_near_1e4_does_not_overflow():
    z = jnp.array([1e4, 1e4 + 1, 1e4 + 2], dtype=jnp.float32)
    s = A.softmax(z)
    small = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(s, small, rtol=1e-6)
    np.testing.assert_allclose(A.log_softmax(z), np.log(small), rtol=1e-6)
    assert np.all(np.isfinite(A.softmax_jacobian(z)))
    assert np.all(np.isfinite(jax.jit(jax.jacrev(A.softmax))(z)))
    neg = A.softmax(jnp.array([-1e4, 0.0], dtype=jnp.float32))
    np.testing.assert_array_equal(neg, [0.0, 1.0])


def _logits(dtype):
    rng = np.random.default_rng(1)
    return jnp.asarray(rng.normal(scale=3.0, size=(4, 5)), dtype=dtype)


def test_softmax_jacobian_and_vjp_match_jacrev(dtype):
    f, jac, vjp = A.softmax, A.softmax_jacobian, A.softmax_vjp
    z = _logits(dtype)
    tol = TOL[dtype][1]
    auto = jax.jit(jax.vmap(jax.jacrev(f)))(z)  # (4, 5, 5), one Jacobian per row
    np.testing.assert_allclose(jac(z), auto, rtol=tol, atol=tol)
    np.testing.assert_allclose(jac(z[0]), auto[0], rtol=tol, atol=tol)
    g = jnp.asarray(np.random.default_rng(2).normal(size=z.shape), dtype=dtype)
    auto_vjp = jax.jit(lambda z, g: jax.vjp(f, z)[1](g)[0])(z, g)
    np.testing.assert_allclose(vjp(z, g), auto_vjp, rtol=tol, atol=tol)
    np.testing.assert_allclose(f(z), jax.nn.softmax(z), rtol=TOL[dtype][0] * 10)


def test_log_softmax_matches_jax_nn(dtype):
    z = _logits(dtype)
    np.testing.assert_allclose(A.log_softmax(z), jax.nn.log_softmax(z), rtol=TOL[dtype][0] * 10)


def test_softmax_jacobian_rows_sum_to_zero():
    J = A.softmax_jacobian(_logits("float32"))
    np.testing.assert_allclose(J.sum(axis=-1), 0.0, atol=1e-6)


@jax.jit
def _softmax_pullbacks(z: jax.Array, g: jax.Array):
    _, pullback = jax.vjp(A.softmax, z)
    return A.softmax_vjp(z, g), A.softmax_jacobian(z).T @ g, pullback(g)[0]


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, 6, elements=st.floats(-50, 50)))
def test_softmax_vjp_property(z):
    with jax.enable_x64(True):
        g = jnp.cos(jnp.arange(6.0))
        mine, via_jacobian, auto = _softmax_pullbacks(jnp.asarray(z), g)
        np.testing.assert_allclose(mine, auto, rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(via_jacobian, auto, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("name", A.ACTIVATIONS)
def test_second_derivative_matches_autodiff(name, dtype):
    """f''(z) from z and from h = f(z) (what `mlp.hvp` keeps) against jax.grad of jax.grad."""
    act = A.ACTIVATIONS[name]
    z = jnp.asarray(GRID, dtype=dtype)
    auto = jax.jit(jax.vmap(jax.grad(jax.grad(act.f))))(z)
    tol = TOL[dtype][1]
    for mine in (act.grad2(z), act.grad2_from_output(act.f(z))):
        assert mine.dtype == z.dtype
        np.testing.assert_allclose(mine, auto, rtol=tol, atol=tol)
    np.testing.assert_array_equal(act.grad2(z), act.grad2_from_output(act.f(z)))
    assert (name in A.PIECEWISE_LINEAR) == (not np.any(np.asarray(auto)))


def test_second_derivatives_from_the_output_by_hand():
    h = jnp.array([0.0, 0.25, 0.5, 1.0])
    np.testing.assert_array_equal(A.sigmoid_grad2_from_output(h), [0.0, 0.09375, 0.0, 0.0])
    np.testing.assert_array_equal(A.tanh_grad2_from_output(h), [0.0, -0.46875, -0.75, 0.0])
    np.testing.assert_array_equal(A.relu_grad2_from_output(h), [0.0, 0.0, 0.0, 0.0])
