"""Project 2: train the 2-layer network on a toy problem.

Full-batch Adam (`jaxcalc.optim.adam`) with the hand-written gradients
(`mlp.loss_and_grad`), all steps in one jitted `lax.scan`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from jaxcalc import mlp, optim
from jaxcalc.validation import check_rows


@partial(jax.jit, static_argnames=("steps", "activation", "loss", "output", "learning_rate"))
def _fit(params, x, y, *, steps, activation, loss, output, learning_rate):
    opt = optim.adam(learning_rate)

    def step(carry, _):
        params, state = carry
        value, grads = mlp.loss_and_grad(
            params, x, y, activation=activation, loss=loss, output=output
        )
        updates, state = opt.update(grads, state, params)
        return (optim.apply_updates(params, updates), state), value

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params, losses


def fit(
    key: jax.Array,
    x: jax.Array,
    y: jax.Array,
    *,
    hidden: int = 32,
    activation: str = "tanh",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    steps: int = 2000,
    learning_rate: float = 0.01,
) -> tuple[mlp.Params, jax.Array]:
    """Train from `init_params(key)`; returns the params and the loss before each step (steps,).

    Classification: y integer labels (n,), n_out = max label + 1. Regression: y (n, n_out).
    """
    check_rows("x", jnp.shape(x), what="example")
    check_rows("y", jnp.shape(y), what="example")
    n_out = int(jnp.max(y)) + 1 if y.ndim == 1 else y.shape[1]
    params = mlp.init_params(key, (x.shape[1], hidden, n_out), activation=activation, dtype=x.dtype)
    mlp.loss_and_grad(params, x, y, activation=activation, loss=loss, output=output)  # checks
    return _fit(
        params,
        x,
        y,
        steps=steps,
        activation=activation,
        loss=loss,
        output=output,
        learning_rate=learning_rate,
    )
