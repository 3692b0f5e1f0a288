"""Gradient flow through depth: the layer-by-layer backward pass against jax.grad, and the
vanishing / exploding claims of the figure as assertions."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxcalc import gradient_flow as gf
from jaxcalc.activations import sigmoid_grad
from jaxcalc.plots.activations import activations_figure, gradient_flow_figure
from jaxcalc.validation import InputError


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("init", gf.INITS)
def test_backward_matches_jax_grad(activation, init, x64):
    key = jax.random.key(1)
    layers = gf.init_deep(key, (6, 5, 5, 4, 3), init=init, dtype=np.float64)
    x = jax.random.normal(jax.random.fold_in(key, 1), (8, 6), np.float64)
    labels = jax.random.randint(jax.random.fold_in(key, 2), (8,), 0, 3)
    got = gf.backward(layers, x, labels, activation=activation)
    want = jax.grad(gf.loss)(layers, x, labels, activation=activation)
    assert len(got) == len(layers) == 4
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g["W"], w["W"], rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(g["b"], w["b"], rtol=1e-11, atol=1e-14)
    norms = gf.weight_gradient_norms(layers, x, labels, activation=activation)
    np.testing.assert_allclose(norms, [np.linalg.norm(w["W"]) for w in want], rtol=1e-11)


def test_init_variances():
    key = jax.random.key(0)
    for init, var in (("standard", 1.0), ("xavier", 2 / (400 + 200)), ("he", 2 / 400)):
        (layer,) = gf.init_deep(key, (400, 200), init=init)
        assert np.var(np.asarray(layer["W"])) == pytest.approx(var, rel=0.03)
        assert not np.any(np.asarray(layer["b"]))
    with pytest.raises(InputError, match="init"):
        gf.init_deep(key, (3, 3), init="glorot")


@pytest.fixture(scope="module")
def flows():
    """The figure's study, smaller: 10 layers of 32 units, a batch of 32 (about a second)."""
    return {(f.activation, f.init): f for f in gf.gradient_flow_study(depth=10, width=32, batch=32)}


def test_sigmoid_vanishes_even_with_xavier(flows):
    """σ' ≤ 1/4: with Xavier (the library's default for sigmoid) each layer shrinks the
    gradient by about 4×, so the first layer gets orders of magnitude less than the last."""
    norms = flows[("sigmoid", "xavier")].norms
    assert flows[("sigmoid", "xavier")].first_over_last < 1e-4
    assert np.all(norms[:-1] / norms[1:] < 0.5)  # every step back loses at least half
    assert float(sigmoid_grad(np.linspace(-10, 10, 2001)).max()) == 0.25


def test_the_matching_init_keeps_the_norm_level(flows):
    for case in (("tanh", "xavier"), ("relu", "he")):
        norms = flows[case].norms
        assert norms.max() / norms.min() < 10, case  # within one decade over ten layers


def test_standard_normal_init_explodes_tanh_and_relu(flows):
    assert flows[("tanh", "standard")].first_over_last > 10  # grows going back
    relu_standard, relu_he = flows[("relu", "standard")].norms, flows[("relu", "he")].norms
    assert relu_standard.min() > 1e4 * relu_he.max()  # every layer's gradient blown up


def test_figures():
    flows = gf.gradient_flow_study(depth=3, width=4, batch=4, cases=(("relu", "he"),))
    fig = gradient_flow_figure(flows)
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), flows[0].norms)
    assert "relu, he init" in fig.axes[0].get_legend().get_texts()[0].get_text()
    fig = activations_figure()
    assert [ax.get_title() for ax in fig.axes] == ["sigmoid", "tanh", "relu"]
    assert any("0.25" in t.get_text() for t in fig.axes[0].texts)  # σ' ≤ 1/4 marked


def test_study_refuses_nonsense():
    with pytest.raises(InputError, match="depth"):
        gf.gradient_flow_study(depth=0)
    with pytest.raises(InputError, match="activation"):
        gf.gradient_flow_study(depth=2, cases=(("softplus", "he"),))
