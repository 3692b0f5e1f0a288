"""Figures of `jaxcalc.convergence`: measured rates against theory, and Adam on turned bowls."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from jaxcalc.convergence import X0, AxesRun, RateRun, heavy_ball_rate
from jaxcalc.descent import bowl_rate


def rates_figure(
    runs: list[RateRun], kappa: float, by_kappa: list[tuple[float, float, float]]
) -> plt.Figure:
    """Left: ‖x_t − x*‖ on `bowl(κ)` per method, measured (solid) and theory (dashed), with
    the measured and predicted rate in the legend. Right: 1 − rate against κ, theory lines
    2/(κ + 1) and 2/(√κ + 1), measured points (`rates_against_kappa`)."""
    fig, (ax, ax_k) = plt.subplots(1, 2, figsize=(13, 4.8))
    for i, run in enumerate(runs):
        t = np.arange(len(run.errors))
        t1 = run.window[0]
        if run.theory != run.asymptotic:  # a double root: e_t ∝ t rᵗ, drawn through e_t1
            curve = run.errors[t1] * np.maximum(t, 1) / t1 * run.asymptotic ** (t - t1)
        else:
            curve = run.errors[t1] * run.asymptotic ** (t - t1)
        note = "" if run.theory == run.asymptotic else f" (r = {run.asymptotic:.5f} × t-factor)"
        label = f"{run.method}: measured {run.measured:.5f}, theory {run.theory:.5f}{note}"
        ax.semilogy(t, run.errors, color=f"C{i}", lw=2, label=label)
        late = t >= t1 // 4  # the theory of the late steps, drawn back a little way
        ax.semilogy(t[late], curve[late], "--", color="k", lw=0.8)
    ax.axvspan(*runs[0].window, color="grey", alpha=0.1, lw=0)
    ax.set(xlabel="step t", ylabel="‖x_t − x*‖", ylim=(1e-14, 20))
    ax.set_title(f"κ = {kappa:g}: rate per step over the shaded steps (theory dashed)")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, which="both", alpha=0.3)

    ks = np.geomspace(2, max(k for k, *_ in by_kappa) * 2, 200)
    ax_k.loglog(ks, 1 - bowl_rate(ks), color="C0", label="gradient descent: 1 − (κ−1)/(κ+1)")
    hb_line = 1 - np.array([heavy_ball_rate(k) for k in ks])
    ax_k.loglog(ks, hb_line, color="C1", label="heavy ball: 1 − (√κ−1)/(√κ+1)")
    kappas, gd, hb = (np.array(c) for c in zip(*by_kappa, strict=True))
    ax_k.loglog(
        kappas, 1 - gd, "o", color="C0", ms=7, mfc="white", label="gradient descent, measured"
    )
    ax_k.loglog(kappas, 1 - hb, "o", color="C1", ms=7, mfc="white", label="heavy ball, measured")
    ax_k.set(xlabel="condition number κ", ylabel="1 − rate per step (larger is faster)",
             title="steps per factor e: κ/2 for gradient descent, √κ/2 for heavy ball")  # fmt: skip
    ax_k.legend(fontsize=8)
    ax_k.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def _bowl_contours(ax: plt.Axes, kappa: float, angle: float, extent: float = 5.0) -> None:
    g = np.linspace(-extent, extent, 161)
    xs, ys = np.meshgrid(g, g)
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * xs + s * ys, -s * xs + c * ys  # coordinates along the bowl's own axes
    z = 0.5 * (u**2 + kappa * v**2)
    ax.contour(xs, ys, z, levels=np.geomspace(z.max() * 1e-5, z.max(), 14), cmap="viridis",
               linewidths=0.6, alpha=0.6)  # fmt: skip


def axes_figure(runs: list[AxesRun], kappa: float, *, show: int = 300) -> plt.Figure:
    """Left: paths of gradient descent and Adam on `bowl(κ)` with its axes along the
    coordinates (top) and turned (bottom), the first `show` steps. Right: steps to 1% of
    the start's distance against κ, for both bowls."""
    fig = plt.figure(figsize=(12, 6.5))
    grid = fig.add_gridspec(2, 3, width_ratios=(1, 1, 1.7))
    panels = [r for r in runs if r.kappa == kappa]
    for row, run in enumerate(panels[:2]):
        for col, (name, path) in enumerate(run.paths.items()):
            ax = fig.add_subplot(grid[row, col])
            _bowl_contours(ax, run.kappa, run.angle)
            p = path[: show + 1]
            ax.plot(p[:, 0], p[:, 1], ".-", ms=2, lw=0.8, color="C3" if col else "C0")
            ax.plot(*X0, "ko", ms=5)
            ax.plot(0, 0, "r*", ms=10)
            reach = run.steps_to_1pct[name]
            turned = "axes turned by 30°" if run.angle else "axes along x and y"
            ax.set_title(f"{name}, {turned}\n1% of the distance in "
                         f"{reach if reach is not None else f'> {len(path) - 1}'} steps",
                         fontsize=9)  # fmt: skip
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
    ax = fig.add_subplot(grid[:, 2])
    steps = len(runs[0].paths["adam"]) - 1
    for angle, marker in ((0.0, "o"), (max(r.angle for r in runs), "s")):
        rows = [r for r in runs if r.angle == angle]
        ks = [r.kappa for r in rows]
        for name, colour in (("gradient descent", "C0"), ("adam", "C3")):
            if name == "gradient descent" and angle:
                continue  # rotation changes nothing for gradient descent
            reach = [r.steps_to_1pct[name] or np.nan for r in rows]
            label = f"{name}, {'turned' if angle else 'aligned'}" + (
                "" if name == "adam" else " or turned (the same)"
            )
            ax.loglog(ks, reach, f"{marker}-", color=colour, mfc="white" if angle else colour,
                      label=label)  # fmt: skip
            for k, r in zip(ks, reach, strict=True):
                if np.isnan(r):
                    y = steps * (1.25 if name == "adam" else 1.1)
                    ax.annotate(f"> {steps}", (k, y), ha="center", color=colour, fontsize=8)
    ax.axhline(steps, color="grey", lw=0.6, ls=":")
    ax.set(
        xlabel="condition number κ",
        ylabel="steps to 1% of the start's distance",
        title="Adam's per-coordinate scaling removes κ only along the coordinate axes",
    )
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(
        f"gradient descent at its optimal step vs Adam (α = {runs[0].learning_rate:g}), "
        f"κ = {kappa:g} on the left"
    )
    fig.tight_layout()
    return fig
