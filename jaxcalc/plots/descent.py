"""Figures of gradient descent: learning rates on a parabola, optimiser paths on surfaces."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from jaxcalc.descent import DescentResult, RateRun, Surface


def learning_rate_figure(runs: list[RateRun], a: float) -> plt.Figure:
    """f(x_t) − f* against t (log scale), one curve per learning rate, theory dashed.

    The dashed line is (f(x_0) − f*)·(1 − 2aα)^(2t): the gap is a (x_t − x*)², so it shrinks
    (or grows) by the square of the per-step factor.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for run in runs:
        t = np.arange(len(run.gaps))
        gaps = np.where(run.gaps > 0, run.gaps, np.nan)  # an exact hit has no logarithm
        label = (
            f"α = {run.learning_rate:g} ({run.regime}): "
            f"measured {run.measured:.4f}, theory |1−2aα| = {run.theory:.4f}"
        )
        (line,) = ax.semilogy(t, gaps, "o", ms=3.5, label=label)
        ax.semilogy(t, run.gaps[0] * run.theory ** (2 * t), "--", lw=1, color=line.get_color())
    ax.set_xlabel("step t")
    ax.set_ylabel("f(x_t) − f*")
    ax.set_title(f"Gradient descent on a x² + b x + c, a = {a:g}: stable for α < 1/a = {1 / a:g}")
    ax.legend(fontsize=8, title="markers measured, dashed theory", title_fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def _contour(ax: plt.Axes, surf: Surface) -> None:
    x_lo, x_hi, y_lo, y_hi = surf.extent
    xs, ys = np.meshgrid(np.linspace(x_lo, x_hi, 200), np.linspace(y_lo, y_hi, 200))
    grid = jnp.asarray(np.stack([xs.ravel(), ys.ravel()], axis=1))
    z = np.asarray(jax.vmap(surf.f)(grid)).reshape(xs.shape)
    f_min = float(surf.f(jnp.asarray(surf.minimum)))
    levels = f_min + np.geomspace(1e-3, max(z.max() - f_min, 1e-2), 14)
    ax.contour(xs, ys, z, levels=levels, cmap="viridis", linewidths=0.6, alpha=0.5)


def paths_figure(panels: list[tuple[Surface, dict[str, DescentResult]]]) -> plt.Figure:
    """Small multiples: one row per surface, one panel per method, each with its own path
    from the same start (black dot) over the surface's contours, and where it ended."""
    n_methods = max(len(results) for _, results in panels)
    fig, axes = plt.subplots(
        len(panels), n_methods, figsize=(2.4 * n_methods, 2.6 * len(panels)), squeeze=False
    )
    for row, (surf, results) in zip(axes, panels, strict=True):
        for i, (ax, (name, res)) in enumerate(zip(row, results.items(), strict=False)):
            _contour(ax, surf)
            xy = res.trajectory
            ax.plot(xy[:, 0], xy[:, 1], "-", lw=1, color=f"C{i}")
            ax.plot(*surf.x0, "ko", ms=5)
            ax.plot(*surf.minimum, "r*", ms=11)
            ax.set_xlim(surf.extent[:2])
            ax.set_ylim(surf.extent[2:])
            ax.set_xticks([])
            ax.set_yticks([])
            lr = surf.learning_rates["gd" if name == "gradient descent" else name]
            ax.set_title(f"{name}, α = {lr:.3g}", fontsize=9)
            end = (
                f"diverged at step {res.diverged_at}"
                if res.diverged_at is not None
                else f"f = {res.values[-1]:.1e} after {len(xy) - 1} steps"
            )
            ax.text(0.03, 0.03, end, transform=ax.transAxes, fontsize=8,
                    bbox={"fc": "white", "ec": "none", "alpha": 0.8})  # fmt: skip
        row[0].set_ylabel(surf.name)
        for ax in row[len(results) :]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def descent_at_figure(run: RateRun, a: float, b: float, c: float) -> plt.Figure:
    """One learning rate on the parabola a x² + b x + c: the iterates on the curve (left,
    joined in order, so an oscillation zig-zags across the minimum) and f(x_t) − f* against
    t with the theory (a (x_0 − x*)² (1 − 2aα)^(2t), dashed). The figure a slider over α
    redraws."""
    xs = np.asarray(run.result.trajectory, np.float64)
    x_star = -b / (2 * a)
    reach = max(abs(xs[0] - x_star), 1e-12) * 1.3
    fig, (ax, ax_gap) = plt.subplots(1, 2, figsize=(11, 4))
    grid = np.linspace(x_star - reach, x_star + reach, 300)
    ax.plot(grid, a * grid**2 + b * grid + c, color="grey", lw=1.5)
    shown = xs[np.abs(xs - x_star) <= reach]
    ax.plot(shown, a * shown**2 + b * shown + c, "o-", ms=4, lw=0.8, color="C0")
    ax.plot(xs[0], a * xs[0] ** 2 + b * xs[0] + c, "ko", ms=6, label="x_0")
    ax.plot(x_star, a * x_star**2 + b * x_star + c, "r*", ms=12, label="minimum x*")
    ax.set(xlabel="x", ylabel="f(x)", title=f"α = {run.learning_rate:g}: {run.regime}")
    ax.legend(fontsize=8)
    t = np.arange(len(run.gaps))
    ax_gap.semilogy(t, np.where(run.gaps > 0, run.gaps, np.nan), "o", ms=3.5, color="C0",
                    label=f"measured: {run.measured:.4f} per step")  # fmt: skip
    ax_gap.semilogy(t, run.gaps[0] * run.theory ** (2 * t), "--", color="k", lw=1,
                    label=f"theory |1 − 2aα| = {run.theory:.4f}")  # fmt: skip
    ax_gap.set(xlabel="step t", ylabel="f(x_t) − f*", title="the gap to the minimum, per step")
    ax_gap.legend(fontsize=8)
    ax_gap.grid(True, which="both", alpha=0.3)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig
