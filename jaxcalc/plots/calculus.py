"""Figures of the calculus toolkit: the finite-difference error study and gradient fields."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from jaxcalc.step_size import StepStudy

_SLOPES = {"forward": (1, "slope 1: O(h)"), "central": (2, "slope 2: O(h²)")}


def step_size_figure(study: StepStudy) -> plt.Figure:
    """Log-log error of forward and central differences against h, one panel per float type.

    Each curve is a V: truncation error falls parallel to the dashed reference line (slope 1 for
    forward, 2 for central) until round-off error, rising as 1/h, takes over; a star marks
    the step of least error.
    """
    dtypes = list(study.errors)
    fig, axes = plt.subplots(1, len(dtypes), figsize=(6 * len(dtypes), 4.5), sharey=True)
    h = study.steps
    for ax, dtype in zip(np.atleast_1d(axes), dtypes, strict=True):
        for method, err in study.errors[dtype].items():
            err = np.where(err > 0, err, np.nan)  # an exact hit has no logarithm
            (line,) = ax.loglog(h, err, "o-", ms=3, label=f"{method} difference")
            best = study.best_step[dtype][method]
            k = int(np.argmin(np.abs(h - best)))
            ax.loglog([best], [err[k]], "*", ms=14, color=line.get_color(), mec="black")
            ax.annotate(
                f"h* = {best:.1e}",
                (best, err[k]),
                xytext=(8, -14),
                textcoords="offset points",
                color=line.get_color(),
                bbox={"fc": "white", "alpha": 0.8, "lw": 0},
            )
            slope, label = _SLOPES[method]
            upper = h >= best
            ax.loglog(  # drawn parallel to the truncation branch, a factor 5 above it
                h[upper],
                5 * err[0] * (h[upper] / h[0]) ** slope,
                "--",
                color=line.get_color(),
                lw=1,
                alpha=0.7,
                label=label,
            )
        ax.set_xlabel("step h")
        ax.set_title(f"{dtype}: {study.function}'(x) at x = {study.x:g}")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    np.atleast_1d(axes)[0].set_ylabel("|finite difference − exact derivative|")
    fig.suptitle("Finite differences: truncation error falls, round-off error rises")
    fig.tight_layout()
    return fig


def gradient_field(
    f: Callable[[jax.Array], jax.Array],
    xlim: tuple[float, float] = (-2.0, 2.0),
    ylim: tuple[float, float] = (-2.0, 2.0),
    *,
    arrows: int = 15,
    levels: int = 20,
    points: np.ndarray | None = None,
    title: str | None = None,
) -> plt.Figure:
    """Contours of f: R² → R with its gradient ∇f (from `jax.grad`) as arrows on a grid.

    The arrows point uphill, perpendicular to the contour lines; `points` (k, 2), such as
    critical points, are marked with crosses.
    """
    X, Y = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    Z = np.asarray(jax.jit(jax.vmap(f))(jnp.stack([X.ravel(), Y.ravel()], axis=-1)))
    Z = Z.reshape(X.shape)
    qx, qy = np.meshgrid(np.linspace(*xlim, arrows), np.linspace(*ylim, arrows))
    G = np.asarray(jax.jit(jax.vmap(jax.grad(f)))(jnp.stack([qx.ravel(), qy.ravel()], axis=-1)))

    fig, ax = plt.subplots(figsize=(6, 5))
    filled = ax.contourf(X, Y, Z, levels=levels, cmap="viridis")
    ax.contour(X, Y, Z, levels=levels, colors="white", linewidths=0.4, alpha=0.6)
    fig.colorbar(filled, ax=ax, label="f(x, y)")
    ax.quiver(qx.ravel(), qy.ravel(), G[:, 0], G[:, 1], color="white", angles="xy")
    if points is not None:
        pts = np.asarray(points).reshape(-1, 2)
        ax.plot(pts[:, 0], pts[:, 1], "rx", ms=10, mew=2, label="marked points")
        ax.legend(loc="upper right")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title or "f and its gradient ∇f")
    ax.set_aspect("equal")
    return fig


def step_size_at_figure(study: StepStudy, h: float) -> plt.Figure:
    """The study's error curves in one panel, with the step h marked: where h sits on each
    V, and each stencil's error there (the legend). The figure a slider over h redraws."""
    k = int(np.argmin(np.abs(np.log(study.steps) - np.log(h))))  # the study's step nearest h
    h = float(study.steps[k])
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for i, (dtype, by_method) in enumerate(study.errors.items()):
        for j, (method, err) in enumerate(by_method.items()):
            err = np.where(err > 0, err, np.nan)
            colour, style = f"C{j}", "-" if i else ":"
            label = f"{method}, {dtype}: error {by_method[method][k]:.1e} at this h"
            ax.loglog(study.steps, err, style, color=colour, lw=1.5, label=label)
            ax.loglog([h], [err[k]], "o", color=colour, ms=7, mec="black")
    ax.axvline(h, color="k", lw=0.8)
    ax.set(xlabel="step h", ylabel="|finite difference − exact derivative|")
    ax.set_title(
        f"{study.function}'({study.x:g}) with h = {h:.1e}: truncation right, round-off left"
    )
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, which="major", alpha=0.3)
    return fig
