"""Losses and their hand-written gradients against NumPy and `jax.grad`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcalc import losses as L

TOL = {"float32": (1e-6, 2e-3), "float64": (1e-15, 1e-5)}  # DESIGN.md: values, gradients


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    with jax.enable_x64(request.param == "float64"):
        yield request.param


def _batch(dtype, n=6, k=4, scale=3.0):
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=scale, size=(n, k))
    labels = rng.integers(0, k, size=n)
    return jnp.asarray(logits, dtype=dtype), jnp.asarray(labels), logits, labels


def _np_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """−1/n Σ log softmax(z_i)[y_i] with a hand-rolled logsumexp, in float64."""
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return float(np.mean(lse - logits[np.arange(len(labels)), labels]))


def test_one_hot():
    oh = L.one_hot(jnp.array([2, 0, 1]), 3)
    np.testing.assert_array_equal(oh, np.eye(3)[[2, 0, 1]])
    assert oh.dtype == jnp.float32


def test_one_hot_targets_like_the_output():
    like = jnp.zeros((3, 4), jnp.float32)
    t = L.one_hot_targets(jnp.array([3, 0, 1]), like)
    np.testing.assert_array_equal(t, np.eye(4)[[3, 0, 1]])
    assert t.dtype == jnp.float32
    soft = jnp.full((3, 4), 0.25, jnp.float16)
    assert L.one_hot_targets(soft, like).dtype == jnp.float32  # (n, k) pass through, cast


def test_mse_value_and_gradient(dtype):
    rng = np.random.default_rng(3)
    yhat, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    expected = 0.5 * np.sum((y - yhat) ** 2) / 5
    a, b = jnp.asarray(yhat, dtype=dtype), jnp.asarray(y, dtype=dtype)
    vtol, gtol = TOL[dtype]
    np.testing.assert_allclose(L.mse(a, b), expected, rtol=max(vtol, 1e-14))
    np.testing.assert_allclose(L.mse_grad(a, b), (yhat - y) / 5, rtol=gtol, atol=vtol)
    np.testing.assert_allclose(
        L.mse_grad(a, b), jax.jit(jax.grad(L.mse))(a, b), rtol=gtol, atol=gtol
    )


def test_cross_entropy_int_and_one_hot_labels_agree(dtype):
    z, labels, z_np, labels_np = _batch(dtype)
    onehot = L.one_hot(labels, 4, z.dtype)
    vtol, gtol = TOL[dtype]
    expected = _np_cross_entropy(z_np, labels_np)
    rtol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(L.cross_entropy(z, labels), expected, rtol=rtol)
    np.testing.assert_allclose(L.cross_entropy(z, onehot), expected, rtol=rtol)
    np.testing.assert_allclose(L.cross_entropy_grad(z, labels), L.cross_entropy_grad(z, onehot))


@pytest.mark.parametrize("kind", ["int", "one-hot", "soft"])
def test_cross_entropy_grad_matches_autodiff(dtype, kind):
    z, labels, z_np, labels_np = _batch(dtype)
    if kind == "int":
        y = labels
    elif kind == "one-hot":
        y = L.one_hot(labels, 4, z.dtype)
    else:  # probability rows that are not one-hot
        y = jax.nn.softmax(jnp.asarray(np.random.default_rng(5).normal(size=(6, 4)), dtype=dtype))
    gtol = TOL[dtype][1]
    auto = jax.jit(jax.grad(L.cross_entropy))(z, y)
    np.testing.assert_allclose(L.cross_entropy_grad(z, y), auto, rtol=gtol, atol=gtol)


def test_cross_entropy_grad_is_softmax_minus_onehot_over_n(x64):
    z, labels, z_np, labels_np = _batch("float64")
    p = np.exp(z_np - z_np.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = (p - np.eye(4)[labels_np]) / 6
    np.testing.assert_allclose(L.cross_entropy_grad(z, labels), expected, rtol=1e-12, atol=1e-15)


def test_cross_entropy_is_stable_for_huge_logits():
    z = jnp.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], dtype=jnp.float32)
    labels = jnp.array([0, 0])  # right with certainty, then wrong by 1e4
    loss = L.cross_entropy(z, labels)
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, 1e4 / 2, rtol=1e-6)
    g = L.cross_entropy_grad(z, labels)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)
    assert np.all(np.isfinite(jax.jit(jax.grad(L.cross_entropy))(z, labels)))


@pytest.mark.parametrize("kind", ["int", "one-hot", "soft"])
def test_cross_entropy_hvp_matches_autodiff(dtype, kind):
    """∂²L/∂z² v against jax.jvp of jax.grad, and vᵀ ∂²L/∂z² v ≥ 0."""
    z, labels, _, _ = _batch(dtype)
    rng = np.random.default_rng(6)
    y = {
        "int": labels,
        "one-hot": L.one_hot(labels, 4, z.dtype),
        "soft": jnp.asarray(rng.uniform(size=(6, 4)), dtype=dtype),  # rows not summing to 1
    }[kind]
    v = jnp.asarray(rng.normal(size=z.shape), dtype=dtype)
    gtol = TOL[dtype][1]
    auto = jax.jit(lambda z, v: jax.jvp(lambda z: jax.grad(L.cross_entropy)(z, y), (z,), (v,))[1])
    np.testing.assert_allclose(L.cross_entropy_hvp(z, y, v), auto(z, v), rtol=gtol, atol=gtol)
    curvature = jnp.sum(v * L.cross_entropy_hvp(z, y, v), axis=-1)  # vᵀ H v per row
    assert float(curvature.min()) >= -1e-7  # positive semi-definite: convex in the logits


def test_mse_hessian_is_identity_over_n(dtype):
    rng = np.random.default_rng(7)
    yhat, y, v = (jnp.asarray(rng.normal(size=(5, 3)), dtype=dtype) for _ in range(3))
    auto = jax.jit(lambda a, v: jax.jvp(lambda a: jax.grad(L.mse)(a, y), (a,), (v,))[1])
    gtol = TOL[dtype][1]
    np.testing.assert_allclose(L.mse_hvp(yhat, v), auto(yhat, v), rtol=gtol, atol=gtol)
    np.testing.assert_allclose(L.mse_hvp(yhat, v), v / 5, rtol=1e-7)
