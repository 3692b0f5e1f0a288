"""The chapter's network, trained as the chapter trains it: a sigmoid hidden layer, MSE or
cross-entropy, plain gradient descent on mini-batches, the backward pass written out.

It reads top to bottom, like Nielsen's `network.py`. Rows are samples (so the chapter's
z₁ = W₁x + b₁ is `z1 = x @ W1 + b1`), targets y are one-hot rows (n, 10):

    z1 = x @ W1 + b1     a1 = σ(z1)
    z2 = a1 @ W2 + b2    a2 = σ(z2)         L = 1/(2n) Σ ‖a2 − y‖²    (loss="mse")
                         a2 = softmax(z2)   L = −1/n Σ y · log a2     (loss="cross_entropy")

The derivatives come from `jaxcalc.activations` and `jaxcalc.losses` (σ' from the output,
h(1 − h); ∂L/∂a2 = (a2 − y)/n; ∂L/∂z2 = (softmax(z2) − y)/n), never a second copy. The
same network with dropout, every activation and loss, and checks on every argument is
`jaxcalc.mlp`; `tests/test_chapter_network.py` checks that both give the same gradient.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import mlp, optim
from jaxcalc.activations import ACTIVATIONS, softmax
from jaxcalc.losses import cross_entropy, cross_entropy_grad, mse, mse_grad
from jaxcalc.validation import InputError, check_choice, check_positive_int, check_rows

Params = dict[str, jax.Array]


def init(key: jax.Array, sizes=(784, 30, 10), *, activation: str = "sigmoid") -> Params:
    """W ~ N(0, 2/(fan_in + fan_out)) (Xavier; He for relu), b = 0: `mlp.init_params`."""
    return mlp.init_params(key, sizes, activation=activation)


def forward(params: Params, x: jax.Array, *, loss: str = "mse", activation: str = "sigmoid"):
    """z1, a1, z2, a2 of the equations above."""
    z1 = x @ params["W1"] + params["b1"][None, :]  # b1 added to every row
    a1 = ACTIVATIONS[activation].f(z1)
    z2 = a1 @ params["W2"] + params["b2"][None, :]
    a2 = ACTIVATIONS["sigmoid"].f(z2) if loss == "mse" else softmax(z2)
    return z1, a1, z2, a2


def loss_and_grad(
    params: Params, x: jax.Array, y: jax.Array, *, loss: str = "mse", activation: str = "sigmoid"
) -> tuple[jax.Array, Params]:
    """The loss and its gradient by the chain rule, one line per step (shapes on the right,
    for the default sizes 784-30-10 and a batch of n)."""
    z1, a1, z2, a2 = forward(params, x, loss=loss, activation=activation)
    if loss == "mse":
        value = mse(a2, y)
        dz2 = mse_grad(a2, y) * ACTIVATIONS["sigmoid"].grad_from_output(a2)  # (n, 10)
    else:
        value = cross_entropy(z2, y)
        dz2 = cross_entropy_grad(z2, y)  # (softmax(z2) − y)/n          (n, 10)
    dW2 = a1.T @ dz2  # dL/dW2 = a1ᵀ dL/dz2                   (30, 10)
    db2 = jnp.sum(dz2, axis=0)  # dL/db2 = Σ over the batch    (10,)
    da1 = dz2 @ params["W2"].T  # dL/da1 = dL/dz2 W2ᵀ          (n, 30)
    dz1 = da1 * ACTIVATIONS[activation].grad_from_output(a1)  # ⊙ σ'(z1)  (n, 30)
    dW1 = x.T @ dz1  # dL/dW1 = xᵀ dL/dz1                      (784, 30)
    db1 = jnp.sum(dz1, axis=0)  # dL/db1 = Σ over the batch    (30,)
    return value, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


@partial(jax.jit, static_argnames=("loss", "activation", "optimizer"))
def step(params, state, x, y, learning_rate, *, loss, activation="sigmoid", optimizer=None):
    """One mini-batch: θ ← θ − α ∇L(θ) (the chapter), or an update of `optimizer`."""
    value, grads = loss_and_grad(params, x, y, loss=loss, activation=activation)
    if optimizer is None:
        return {k: params[k] - learning_rate * grads[k] for k in params}, state, value
    updates, state = optimizer.update(grads, state, params)
    return optim.apply_updates(params, updates), state, value


@partial(jax.jit, static_argnames="activation")
def accuracy(params: Params, x: jax.Array, labels: jax.Array, *, activation="sigmoid"):
    """Fraction of rows whose largest output is the label (the same for σ and softmax)."""
    check_rows("x", x.shape, what="example")
    _, _, z2, _ = forward(params, x, activation=activation)
    return jnp.mean(jnp.argmax(z2, axis=1) == labels)


class Epoch(NamedTuple):
    """One epoch of `train`: its mean loss and the accuracies after it."""

    epoch: int
    loss: float  # mean of the mini-batch losses
    train_accuracy: float
    val_accuracy: float


def train(
    params: Params,
    train_set: tuple[np.ndarray, np.ndarray],
    val_set: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float | None = None,
    loss: str = "mse",
    activation: str = "sigmoid",
    optimizer: optim.GradientTransformation | None = None,
    seed: int = 0,
) -> tuple[Params, list[Epoch]]:
    """Mini-batch training: each epoch shuffles the training set and takes one step per batch.

    `train_set` and `val_set` are (x, labels) from `prepare`; `optimizer=None` is plain
    gradient descent at `learning_rate`; an optimizer of `jaxcalc.optim` brings its own rate.
    Returns the trained parameters and one `Epoch` per epoch.
    """
    if (optimizer is None) == (learning_rate is None):
        raise InputError("give exactly one of learning_rate (gradient descent) and optimizer")
    check_choice("loss", loss, ("mse", "cross_entropy"))
    check_choice("activation", activation, mlp.HIDDEN_ACTIVATIONS)
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    x, labels = train_set
    check_rows("val_set's x", np.shape(val_set[0]), what="example")
    if batch_size > len(x):
        raise InputError(f"batch_size must be at most the {len(x)} training examples")
    targets = np.eye(params["W2"].shape[1], dtype=x.dtype)[labels]  # one-hot rows
    state = optimizer.init(params) if optimizer is not None else None
    rng = np.random.default_rng(seed)
    n = len(x) - len(x) % batch_size  # whole batches only
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x))[:n].reshape(-1, batch_size)
        losses = []
        for batch in order:
            params, state, value = step(
                params, state, x[batch], targets[batch], learning_rate,
                loss=loss, activation=activation, optimizer=optimizer,
            )  # fmt: skip
            losses.append(value)
        history.append(
            Epoch(
                epoch,
                float(jnp.mean(jnp.stack(losses))),
                float(accuracy(params, x, labels, activation=activation)),
                float(accuracy(params, *val_set, activation=activation)),
            )
        )
    return params, history


#: The chapter's settings (Nielsen's for MSE: 30 hidden units, α = 3, batch 10) and the
#: ReLU/Adam recipe on the same network (Adam at its usual α = 1e-3). On 10,000 MNIST images
#: for 10 epochs, the sweep of `scripts/course_figures.py` puts every rate tried (MSE α = 1,
#: 3, 6; cross-entropy 0.1, 0.3, 1; Adam 3e-4, 1e-3, 3e-3) within 0.7% of the others on the
#: validation split: a network this small is limited by its size and data, not its optimiser.
RECIPES = {
    "sigmoid + MSE, gradient descent α = 3": dict(loss="mse", learning_rate=3.0),
    "sigmoid + cross-entropy, gradient descent α = 0.3": dict(
        loss="cross_entropy", learning_rate=0.3
    ),
    "ReLU + cross-entropy, Adam α = 1e-3": dict(
        loss="cross_entropy", activation="relu", optimizer=optim.adam(1e-3)
    ),
}


def prepare(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 28, 28) to float32 rows (n, 784) in [0, 1]; labels to int32."""
    return images.reshape(len(images), -1).astype(np.float32) / 255, labels.astype(np.int32)
