"""Figures of Project 2: loss curves, a classifier's decision boundary, a fitted curve."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from jaxcalc import mlp


def loss_curves(losses: dict[str, jax.Array]) -> plt.Figure:
    """Training loss per step, one line per problem, log scale."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in losses.items():
        ax.plot(np.asarray(values), label=name)
    ax.set(xlabel="step", ylabel="loss", yscale="log", title="Training loss (hand-written grads)")
    ax.legend()
    return fig


def decision_boundary(
    params: mlp.Params, x: jax.Array, y: jax.Array, *, activation: str, title: str = ""
) -> plt.Figure:
    """Predicted class over a grid around the 2-D points x, with the points on top."""
    lo, hi = np.asarray(x.min(0)) - 0.2, np.asarray(x.max(0)) + 0.2
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = jnp.asarray(np.stack([g0.ravel(), g1.ravel()], axis=1), dtype=x.dtype)
    classes = np.asarray(mlp.predict(params, grid, activation=activation)).reshape(g0.shape)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(g0, g1, classes, alpha=0.3, cmap="coolwarm")
    ax.scatter(*np.asarray(x).T, c=np.asarray(y), s=10, cmap="coolwarm", edgecolors="k", lw=0.3)
    ax.set(xlabel="x₁", ylabel="x₂", title=title, aspect="equal")
    return fig


def fitted_curve(
    params: mlp.Params, x: jax.Array, y: jax.Array, *, activation: str, output: str
) -> plt.Figure:
    """The 1-D samples (x, y) and the network's a2(x) on a fine grid."""
    grid = jnp.linspace(x.min(), x.max(), 400, dtype=x.dtype)[:, None]
    a2, _ = mlp.forward(params, grid, activation=activation, loss="mse", output=output)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(np.asarray(x), np.asarray(y), s=8, alpha=0.6, label="data")
    ax.plot(np.asarray(grid), np.asarray(a2), color="C3", lw=2, label="network")
    ax.set(xlabel="x", ylabel="y", title="1-D regression with MSE")
    ax.legend()
    return fig
