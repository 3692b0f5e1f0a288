"""The network to second order: H v, G v and ∂z2/∂x by hand against autodiff, finite
differences and the dense `jax.hessian`."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

from jaxcalc import gradcheck, mlp
from jaxcalc.cli.gradcheck import table
from jaxcalc.losses import cross_entropy, mse
from jaxcalc.validation import InputError

COMBOS = [(a, loss, gradcheck.mlp_output(o)) for a, loss, o in gradcheck.COMBOS]
STATIC = ("activation", "loss", "output")


def _problem(seed, sizes=(5, 4, 3), batch=6, loss="cross_entropy", dtype=jnp.float64):
    params, x, y = gradcheck.problem(seed, sizes, batch, loss, jnp.dtype(dtype))
    return params, x, y, gradcheck.direction((seed, 1), params)


def _mask(seed, shape, dtype=jnp.float64, keep=0.6):
    rng = np.random.default_rng(seed)
    return jnp.asarray((rng.uniform(size=shape) < keep) / keep, dtype)


@pytest.mark.parametrize("activation,loss,output", gradcheck.COMBOS)
def test_hvp_and_ggn_match_autodiff_and_finite_differences(activation, loss, output):
    """jaxcalc.check of H v and G v against autodiff (exact) and differences, every entry."""
    checks = [
        c
        for q in ("H v", "G v")
        for c in gradcheck.check_quantity(q, activation, loss, output, seed=3)
    ]
    assert [(c.quantity, c.reference) for c in checks] == [
        (q, r) for q in ("H v", "G v") for r in ("autodiff", "finite diff")
    ]
    assert all(c.verdict == "ok" for c in checks), table(checks)
    assert all(c.max_error < 1e-13 for c in checks if c.reference == "autodiff"), table(checks)


@partial(jax.jit, static_argnames=STATIC)
def _dense(params, x, y, mask, *, activation, loss, output):
    """H by jax.hessian, G = Jᵀ H_ℓ J by jax.jacfwd and jax.hessian, and both column by
    column from the hand-written products, all with the dropout mask."""
    kw = {"activation": activation, "loss": loss, "output": output, "hidden_mask": mask}
    flat, unravel = ravel_pytree(params)
    H_auto = jax.hessian(lambda f: mlp.loss_fn(unravel(f), x, y, **kw))(flat)

    def out(f):  # the output where the loss is convex: z2, or a2 = g(z2) for MSE
        a2, cache = mlp.forward(unravel(f), x, **kw)
        return (cache.z2 if loss == "cross_entropy" else a2).ravel()

    o = out(flat)
    n = x.shape[0]
    of_out = (
        (lambda o: cross_entropy(o.reshape(n, -1), y))
        if loss == "cross_entropy"
        else (lambda o: mse(o.reshape(n, -1), y))
    )
    J = jax.jacfwd(out)(flat)
    G_auto = J.T @ jax.hessian(of_out)(o) @ J

    def columns(product):
        col = lambda e: ravel_pytree(product(params, x, y, unravel(e), **kw))[0]  # noqa: E731
        return jax.vmap(col)(jnp.eye(flat.shape[0], dtype=flat.dtype)).T

    return H_auto, G_auto, columns(mlp.hvp), columns(mlp.ggn_vp)


@pytest.mark.parametrize("activation,loss,output", COMBOS)
def test_dense_hessian_of_a_5_4_3_network_with_dropout(activation, loss, output, x64):
    """Every column of H and G by hand against the dense autodiff matrices, mask and all."""
    params, x, y, _ = _problem(4, loss=loss)
    mask = _mask(2, (x.shape[0], params["b1"].shape[0]))
    kw = {"activation": activation, "loss": loss, "output": output}
    H_auto, G_auto, H, G = _dense(params, x, y, mask, **kw)
    assert H.shape == (39, 39)  # 5·4 + 4 + 4·3 + 3 parameters
    scale = float(jnp.max(jnp.abs(H_auto)))
    assert gradcheck.relative_error(H, H_auto, floor=scale) <= 1e-12  # measured < 1e-15
    assert gradcheck.relative_error(G, G_auto, floor=scale) <= 1e-12
    assert gradcheck.relative_error(H, H.T, floor=scale) <= 1e-12  # symmetric
    eig_g = np.linalg.eigvalsh(np.asarray(G))
    assert eig_g.min() >= -1e-12 * eig_g.max()  # G is positive semi-definite
    assert float(jnp.max(jnp.abs(H - G))) > 1e-6 * scale  # H is not: the network adds to it
    unmasked = _dense(params, x, y, jnp.ones_like(mask), **kw)[2]
    assert float(jnp.max(jnp.abs(unmasked - H))) > 1e-3 * scale  # the mask acts


@pytest.mark.parametrize("output", ["identity", "sigmoid"])
def test_gauss_newton_is_the_hessian_where_the_residual_vanishes(output, x64):
    """MSE at targets equal to the network's outputs: dL/da2 = 0, so every term of H − G
    (all multiply the residual) vanishes and H v = G v."""
    params, x, _, v = _problem(5, loss="mse")
    kw = {"activation": "tanh", "loss": "mse", "output": output}
    y = mlp.forward(params, x, **kw)[0]
    hv, gv = mlp.hvp(params, x, y, v, **kw), mlp.ggn_vp(params, x, y, v, **kw)
    assert max(gradcheck.gradient_errors(hv, gv).values()) <= 1e-12


def test_relu_has_no_second_derivative_term(monkeypatch, x64):
    """Dropping f''(z1) changes nothing for relu (f'' = 0 off the kink), everything for tanh."""
    params, x, y, v = _problem(6)
    before = {a: mlp.hvp(params, x, y, v, activation=a) for a in ("relu", "tanh")}
    monkeypatch.setattr(mlp.second_order, "_activation_grad2", lambda a, h: jnp.zeros_like(h))
    after = {a: mlp.hvp(params, x, y, v, activation=a) for a in ("relu", "tanh")}
    assert max(gradcheck.gradient_errors(after["relu"], before["relu"]).values()) == 0.0
    assert max(gradcheck.gradient_errors(after["tanh"], before["tanh"]).values()) > 1e-3


@pytest.mark.parametrize("activation", mlp.HIDDEN_ACTIVATIONS)
def test_input_jacobian_matches_jacrev_and_jacfwd(activation):
    checks = gradcheck.check_quantity("dz2/dx", activation, "mse", "identity", seed=8)
    assert [c.reference for c in checks] == ["autodiff", "finite diff"]
    assert all(c.verdict == "ok" for c in checks), table(checks)
    modes = {r.mode for c in checks for r in c.report.rows}
    assert modes == {"fwd", "rev"}  # jacfwd's JVPs and jacrev's VJPs of the hand-written rule
    params, x, _, _ = _problem(8, sizes=(7, 4, 3), batch=2, dtype=jnp.float32)
    assert mlp.input_jacobian(params, x, activation=activation).shape == (2, 3, 7)


@settings(max_examples=2, deadline=None, derandomize=True)
@given(
    combo=st.sampled_from(COMBOS),
    sizes=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(2, 4)),
    batch=st.integers(1, 9),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_shapes_and_seeds(combo, sizes, batch, seed):
    checks = [
        c
        for q in ("H v", "G v")
        for c in gradcheck.check_quantity(q, *combo, seed=seed, sizes=sizes, batch=batch)
    ]
    assert all(c.verdict == "ok" for c in checks), table(checks)


@pytest.mark.parametrize(
    "change",
    [
        lambda v: {k: v[k] for k in ("W1", "b1", "W2")},  # a key missing
        lambda v: {**v, "W1": v["W1"][:, :2]},  # a wrong shape
        lambda v: {**v, "b2": v["b2"].astype(jnp.int32)},  # a wrong dtype
        lambda v: [v["W1"], v["b1"], v["W2"], v["b2"]],  # not a dict
    ],
)
@pytest.mark.parametrize("product", [mlp.hvp, mlp.hvp_autodiff, mlp.ggn_vp, mlp.ggn_vp_autodiff])
def test_v_not_shaped_like_params_is_refused(change, product):
    params, x, y, v = _problem(9, dtype=jnp.float32)
    with pytest.raises(InputError, match="v must be shaped like params"):
        product(params, x, y, change(v))


def test_every_public_name_is_still_offered():
    names = "Cache HIDDEN_ACTIVATIONS LOSSES OUTPUTS INITS PARAM_NAMES Params init_params forward "
    names += "backward loss_and_grad loss_fn loss_and_grad_autodiff predict accuracy"
    for name in names.split():
        assert getattr(mlp, name) is getattr(mlp.network, name)
    for name in ("hvp", "hvp_autodiff", "ggn_vp", "ggn_vp_autodiff", "input_jacobian"):
        assert getattr(mlp, name) is getattr(mlp.second_order, name)
    assert not hasattr(mlp, "activation_grad")  # patch mlp.network's: a stale patch fails
