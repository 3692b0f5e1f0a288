"""The chapter's network: its written-out backward pass against jax.grad and jaxcalc.mlp, its
plain gradient-descent step, and training on a real MNIST subset."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcalc import chapter_network as cn
from jaxcalc import data, mlp, optim
from jaxcalc.plots.chapter_network import training_figure
from jaxcalc.validation import InputError


def problem(activation="sigmoid", n=7, sizes=(5, 4, 3)):
    key = jax.random.key(3)
    params = cn.init(key, sizes, activation=activation)
    kx, ky = jax.random.split(jax.random.fold_in(key, 1))
    x = jax.random.normal(kx, (n, sizes[0]))
    y = jax.nn.one_hot(jax.random.randint(ky, (n,), 0, sizes[2]), sizes[2])
    return params, x, y


def loss_only(params, x, y, *, loss, activation):
    return cn.loss_and_grad(params, x, y, loss=loss, activation=activation)[0]


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_backward_pass_matches_jax_grad_and_mlp(loss, activation, x64):
    params, x, y = problem(activation)
    value, grads = cn.loss_and_grad(params, x, y, loss=loss, activation=activation)
    want = jax.grad(loss_only)(params, x, y, loss=loss, activation=activation)
    mlp_value, mlp_grads = mlp.loss_and_grad(
        params, x, y, activation=activation, loss=loss, output="sigmoid"
    )
    assert value == pytest.approx(float(mlp_value), rel=1e-14)
    for k in mlp.PARAM_NAMES:
        assert grads[k].shape == params[k].shape
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(grads[k], mlp_grads[k], rtol=1e-12, atol=1e-15)


def test_mse_loss_is_half_the_mean_squared_norm(x64):
    params, x, y = problem()
    *_, a2 = cn.forward(params, x, loss="mse")
    want = 0.5 * np.mean(np.sum((np.asarray(a2) - np.asarray(y)) ** 2, axis=1))
    assert float(cn.loss_and_grad(params, x, y, loss="mse")[0]) == pytest.approx(want, rel=1e-14)
    assert np.all((np.asarray(a2) > 0) & (np.asarray(a2) < 1))  # a sigmoid output


def test_step_is_plain_gradient_descent_or_the_optimizer(x64):
    params, x, y = problem()
    _, grads = cn.loss_and_grad(params, x, y, loss="mse")
    new, state, _ = cn.step(params, None, x, y, 0.5, loss="mse")
    assert state is None
    for k in params:
        np.testing.assert_allclose(new[k], params[k] - 0.5 * grads[k], rtol=1e-15, atol=1e-16)
    adam = optim.adam(1e-2)
    new, state, _ = cn.step(params, adam.init(params), x, y, 0.0, loss="mse", optimizer=adam)
    updates, _ = adam.update(grads, adam.init(params), params)
    for k in params:
        np.testing.assert_allclose(new[k], params[k] + updates[k], rtol=1e-14, atol=1e-16)


def synthetic(n=400, seed=0):
    """Ten classes told apart by which block of the 784 inputs is bright."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.int32)
    x = rng.uniform(0, 0.3, (n, 784)).astype(np.float32)
    for i, label in enumerate(labels):
        x[i, 78 * label : 78 * label + 78] += 0.7
    return x, labels


@pytest.mark.parametrize("recipe", list(cn.RECIPES))
def test_every_recipe_learns_a_separable_problem(recipe):
    train_set, val_set = synthetic(), synthetic(seed=1)
    params = cn.init(jax.random.key(0), activation=cn.RECIPES[recipe].get("activation", "sigmoid"))
    kwargs = {"epochs": 3, "batch_size": 10, **cn.RECIPES[recipe]}
    params, history = cn.train(params, train_set, val_set, **kwargs)
    assert [e.epoch for e in history] == [1, 2, 3]
    assert history[-1].loss < history[0].loss
    assert history[-1].val_accuracy > 0.95
    _, again = cn.train(
        cn.init(jax.random.key(0), activation=kwargs.get("activation", "sigmoid")),
        train_set, val_set, **kwargs,
    )  # fmt: skip
    assert again == history  # same seed, same run


def test_train_refuses_bad_settings():
    params = cn.init(jax.random.key(0))
    sets = synthetic(20), synthetic(20)
    with pytest.raises(InputError, match="exactly one"):
        cn.train(params, *sets, epochs=1, batch_size=10)
    with pytest.raises(InputError, match="exactly one"):
        cn.train(params, *sets, epochs=1, batch_size=10, learning_rate=1.0, optimizer=optim.sgd(1))
    with pytest.raises(InputError, match="batch_size"):
        cn.train(params, *sets, epochs=1, batch_size=21, learning_rate=1.0)
    with pytest.raises(InputError, match="loss"):
        cn.train(params, *sets, epochs=1, batch_size=10, learning_rate=1.0, loss="hinge")
    with pytest.raises(InputError, match="epochs"):
        cn.train(params, *sets, epochs=0, batch_size=10, learning_rate=1.0)


def test_the_chapter_network_learns_real_mnist(mnist_dir):
    """2,000 images, 3 epochs of batch 10 at Nielsen's α = 3 (about a second)."""
    d = data.load("mnist", data_dir=mnist_dir)
    train_set = cn.prepare(d.train_images[:2000], d.train_labels[:2000])
    val_set = cn.prepare(d.val_images[:2000], d.val_labels[:2000])
    params = cn.init(jax.random.key(0))
    params, history = cn.train(
        params, train_set, val_set, epochs=3, batch_size=10, **cn.RECIPES[next(iter(cn.RECIPES))]
    )
    assert history[-1].val_accuracy > 0.85
    assert history[-1].loss < history[0].loss
    fig = training_figure({"sigmoid + MSE": history})
    assert len(fig.axes) == 2 and fig.axes[1].get_legend().get_texts()[0].get_text().endswith("%")


def test_prepare_scales_and_flattens():
    images = np.array([[[0, 255], [51, 102]]], np.uint8)
    x, labels = cn.prepare(images, np.array([7], np.uint8))
    assert x.dtype == np.float32 and x.shape == (1, 4) and labels.dtype == np.int32
    np.testing.assert_allclose(x, [[0.0, 1.0, 0.2, 0.4]])
    assert jnp.asarray(labels)[0] == 7
