"""The 2-layer MLP: hand-written gradients against jax.grad and finite differences."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcalc import gradcheck, mlp
from jaxcalc.cli.gradcheck import table
from jaxcalc.validation import InputError

COMBOS = [(a, loss, "sigmoid" if o == "softmax" else o) for a, loss, o in gradcheck.COMBOS]


def _problem(seed, sizes=(6, 5, 3), batch=8, loss="cross_entropy", dtype=jnp.float32):
    return gradcheck.problem(seed, sizes, batch, loss, jnp.dtype(dtype))


@pytest.mark.parametrize("activation,loss,output", gradcheck.COMBOS)
def test_hand_written_matches_jax_grad_and_finite_differences(activation, loss, output):
    checks = gradcheck.check_quantity("gradient", activation, loss, output, seed=7)
    assert [c.reference for c in checks] == list(gradcheck.REFERENCES)
    for c in checks:
        assert c.ok, table([c])


@settings(max_examples=5, deadline=None, derandomize=True)
@given(
    combo=st.sampled_from(gradcheck.COMBOS),
    sizes=st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(2, 4)),
    batch=st.integers(1, 12),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_shapes_and_seeds(combo, sizes, batch, seed):
    """Against jax.grad and float64 finite differences, on random small shapes."""
    checks = gradcheck.check_quantity("gradient", *combo, seed=seed, sizes=sizes, batch=batch)
    assert all(c.ok for c in checks), table(checks)


def test_loss_values_agree_and_grads_have_params_structure(x64):
    params, x, y = _problem(0, dtype=jnp.float64)
    loss, grads = mlp.loss_and_grad(params, x, y)
    loss_auto, _ = mlp.loss_and_grad_autodiff(params, x, y)
    assert loss == pytest.approx(float(loss_auto), rel=1e-15)
    assert loss == pytest.approx(float(mlp.loss_fn(params, x, y)), rel=1e-15)
    assert {k: (g.shape, g.dtype) for k, g in grads.items()} == {
        k: (p.shape, p.dtype) for k, p in params.items()
    }


@pytest.mark.parametrize(
    "activation,init,var",
    [
        ("sigmoid", None, "xavier"),
        ("tanh", None, "xavier"),
        ("relu", None, "he"),
        ("relu", "xavier", "xavier"),
    ],
)
def test_init_statistics(activation, init, var):
    sizes = (784, 512, 10)
    params = mlp.init_params(jax.random.key(0), sizes, activation=activation, init=init)
    for w, (fan_in, fan_out) in ((params["W1"], sizes[:2]), (params["W2"], sizes[1:])):
        want = 2 / fan_in if var == "he" else 2 / (fan_in + fan_out)
        assert float(jnp.var(w)) == pytest.approx(want, rel=0.05)
        assert abs(float(jnp.mean(w))) < 0.05 * want**0.5
    assert not jnp.any(params["b1"]) and not jnp.any(params["b2"])
    assert params["W1"].dtype == jnp.float32


def test_init_dtype_follows_request(x64):
    params = mlp.init_params(jax.random.key(0), (3, 4, 2), dtype=jnp.float64)
    assert all(p.dtype == jnp.float64 for p in params.values())


def test_hidden_mask_matches_autodiff_and_drops_units(x64):
    params, x, y = _problem(1, dtype=jnp.float64)
    keep = np.random.default_rng(2).random((8, 5)) < 0.6
    mask = jnp.asarray(keep / 0.6)
    for activation in mlp.HIDDEN_ACTIVATIONS:
        kw = {"activation": activation, "hidden_mask": mask}
        loss, g = mlp.loss_and_grad(params, x, y, **kw)
        loss_auto, g_auto = mlp.loss_and_grad_autodiff(params, x, y, **kw)
        assert float(loss) == pytest.approx(float(loss_auto), rel=1e-14)
        assert max(gradcheck.gradient_errors(g, g_auto).values()) <= 1e-12
    ones = jnp.ones((8, 5), jnp.float64)
    assert jnp.array_equal(
        mlp.loss_and_grad(params, x, y, hidden_mask=ones)[1]["W1"],
        mlp.loss_and_grad(params, x, y)[1]["W1"],
    )
    dead = ones.at[:, 2].set(0.0)
    g = mlp.loss_and_grad(params, x, y, hidden_mask=dead)[1]
    assert not jnp.any(g["W1"][:, 2]) and not jnp.any(g["W2"][2])


def test_soft_and_one_hot_targets(x64):
    params, x, labels = _problem(3, dtype=jnp.float64)
    one_hot = jax.nn.one_hot(labels, 3, dtype=jnp.float64)
    loss_int, g_int = mlp.loss_and_grad(params, x, labels)
    loss_oh, g_oh = mlp.loss_and_grad(params, x, one_hot)
    assert float(loss_int) == pytest.approx(float(loss_oh), rel=1e-15)
    for k in g_int:
        np.testing.assert_allclose(g_int[k], g_oh[k], rtol=1e-13, atol=1e-16)
    smooth = 0.9 * one_hot + 0.1 / 3  # label smoothing
    loss, g = mlp.loss_and_grad(params, x, smooth)
    loss_auto, g_auto = mlp.loss_and_grad_autodiff(params, x, smooth)
    assert float(loss) == pytest.approx(float(loss_auto), rel=1e-14)
    assert max(gradcheck.gradient_errors(g, g_auto).values()) <= 1e-12


def test_mse_takes_integer_labels_as_one_hot(x64):
    params, x, labels = _problem(4, dtype=jnp.float64)
    one_hot = jax.nn.one_hot(labels, 3, dtype=jnp.float64)
    a = mlp.loss_and_grad(params, x, labels, loss="mse")
    b = mlp.loss_and_grad(params, x, one_hot, loss="mse")
    assert jax.tree.all(jax.tree.map(jnp.array_equal, a, b))


def test_forward_cache_and_predict():
    params, x, y = _problem(5)
    a2, cache = mlp.forward(params, x, activation="relu")
    np.testing.assert_allclose(jnp.sum(a2, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        cache.a1, jax.nn.relu(x @ params["W1"] + params["b1"][None, :]), rtol=1e-6
    )
    assert jnp.array_equal(mlp.predict(params, x, activation="relu"), jnp.argmax(a2, axis=1))
    expected = jnp.mean(jnp.argmax(a2, axis=1) == y)
    assert float(mlp.accuracy(params, x, y, activation="relu")) == pytest.approx(float(expected))
    grads = mlp.backward(params, cache, y, activation="relu")
    assert jax.tree.all(
        jax.tree.map(jnp.array_equal, grads, mlp.loss_and_grad(params, x, y, activation="relu")[1])
    )


def test_the_configuration_is_one_frozen_checked_value():
    """`Net(activation, loss, output)`: checked when made, frozen, hashable (a static jit
    argument), and what the keyword functions run on."""
    net = mlp.Net("tanh", "mse", "identity")
    assert net == mlp.Net(activation="tanh", loss="mse", output="identity")
    assert hash(net) == hash(mlp.Net("tanh", "mse", "identity"))
    with pytest.raises(AttributeError):
        net.loss = "cross_entropy"
    for bad, word in ((dict(activation="gelu"), "activation"), (dict(loss="hinge"), "loss")):
        with pytest.raises(InputError, match=word):
            mlp.Net(**bad)
    params, x, y = _problem(1, loss="mse")
    params, x, y, _ = mlp.network.check_args(net, params, x, y)
    _, cache = mlp.network.forward_unchecked(net, params, x)
    grads = jax.jit(mlp.network.backward_unchecked, static_argnums=0)(net, params, cache, y, None)
    want = mlp.loss_and_grad(params, x, y, activation="tanh", loss="mse", output="identity")[1]
    for k in mlp.PARAM_NAMES:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-6, atol=1e-7)


def test_jit_does_not_recompile_on_new_data():
    step = jax.jit(partial(mlp.loss_and_grad, activation="tanh", loss="mse", output="identity"))
    for seed in range(3):
        params, x, y = _problem(seed, loss="mse")
        step(params, x, y)
    assert step._cache_size() == 1
    # jax.jit of the same function shares one cache (other tests may have filled it).
    jitted = jax.jit(mlp.loss_and_grad, static_argnames=("activation", "loss", "output"))
    params, x, y = _problem(0)
    jitted(params, x, y, activation="relu")
    compiled = jitted._cache_size()
    jitted(params, x + 1, (y + 1) % 3, activation="relu")
    assert jitted._cache_size() == compiled


def _bad(params, x, y):
    return {
        "x columns": (params, x[:, :4], y, {}, "x must have shape (n, 6)"),
        "x rank": (params, x[0], y, {}, "x must have shape"),
        "x dtype": (params, x.astype(jnp.int32), y, {}, "x has dtype int32"),
        "y rows": (params, x, y[:5], {}, "y must have one row per row of x (8)"),
        "targets shape": (params, x, jnp.ones((8, 4)), {}, "(8, 3)"),
        "label range": (params, x, y.at[0].set(3), {}, "labels y must lie in [0, 3)"),
        "negative label": (params, x, y.at[0].set(-1), {}, "labels y must lie in [0, 3)"),
        "params keys": ({"W1": params["W1"]}, x, y, {}, "keys W1, b1, W2, b2"),
        "params shapes": ({**params, "b1": params["b2"]}, x, y, {}, "params shapes disagree"),
        "activation": (params, x, y, {"activation": "gelu"}, "unknown activation 'gelu'"),
        "loss": (params, x, y, {"loss": "hinge"}, "unknown loss 'hinge'"),
        "output": (params, x, y, {"loss": "mse", "output": "softmax"}, "unknown output"),
        "mask shape": (params, x, y, {"hidden_mask": jnp.ones((8, 4))}, "hidden_mask"),
    }


@pytest.mark.parametrize("case", list(_bad(*_problem(0)).keys()))
@pytest.mark.parametrize("fn", [mlp.loss_and_grad, mlp.loss_and_grad_autodiff])
def test_bad_input_is_a_clear_error(case, fn):
    params, x, y, kw, message = _bad(*_problem(0))[case]
    with pytest.raises(InputError, match=None) as info:
        fn(params, x, y, **kw)
    assert message in str(info.value)


def test_init_bad_input():
    with pytest.raises(InputError, match="sizes"):
        mlp.init_params(jax.random.key(0), (3, 4))
    with pytest.raises(InputError, match="init"):
        mlp.init_params(jax.random.key(0), (3, 4, 2), init="lecun")
    with pytest.raises(InputError, match="activation"):
        mlp.init_params(jax.random.key(0), (3, 4, 2), activation="gelu")


def test_label_range_is_not_checked_under_jit():
    params, x, y = _problem(0)
    loss, _ = jax.jit(mlp.loss_and_grad)(params, x, y.at[0].set(3))
    assert loss.shape == ()
