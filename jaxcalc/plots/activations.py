"""Figures of activations: each function beside its derivative, and gradient norms through depth."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from jaxcalc.activations import ACTIVATIONS
from jaxcalc.gradient_flow import Flow

#: f' below this fraction of its largest value counts as saturated (shaded).
SATURATED = 0.05


def activations_figure(*, z_max: float = 7.0) -> plt.Figure:
    """sigmoid, tanh and relu (solid) with their derivatives (dashed), from `jaxcalc.activations`.

    The saturated ranges, where f' < 5% of its peak, are shaded: a unit there passes almost
    no gradient back. σ' peaks at 1/4 (z = 0), tanh' at 1; relu' is 0 or 1 (0 at z = 0).
    """
    z = np.linspace(-z_max, z_max, 1201)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, name in zip(axes, ("sigmoid", "tanh", "relu"), strict=True):
        act = ACTIVATIONS[name]
        f, df = np.asarray(act.f(z)), np.asarray(act.grad(z))
        ax.plot(z, f, lw=2, label=f"{name}(z)")
        if name == "relu":  # the jump at 0, drawn as two pieces with relu'(0) = 0
            ax.plot(z[z < 0], df[z < 0], "--", color="C1", lw=2, label=f"{name}'(z)")
            ax.plot(z[z > 0], df[z > 0], "--", color="C1", lw=2)
            ax.plot([0], [0], "o", color="C1", ms=5)
            ax.plot([0], [1], "o", mfc="white", color="C1", ms=5)
            ax.set_ylim(-0.3, 2.0)
        else:
            ax.plot(z, df, "--", lw=2, label=f"{name}'(z)")
            peak = df.max()
            ax.axhline(peak, color="C1", lw=0.6, ls=":")
            ax.text(-z_max + 0.3, peak + 0.04, f"max {name}' = {peak:.2g}, at z = 0",
                    fontsize=8, color="C1")  # fmt: skip
            flat = df < SATURATED * peak
            ax.fill_between(z, -1.2, 1.2, where=flat, color="grey", alpha=0.15, lw=0,
                            label=f"saturated: {name}' < {SATURATED:g} · max")  # fmt: skip
            ax.set_ylim(-1.1 if name == "tanh" else -0.05, 1.25)
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.set(xlabel="z", title=name)
        ax.legend(
            fontsize=8,
            loc={"sigmoid": "center right", "tanh": "lower right"}.get(name, "upper left"),
        )
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def gradient_flow_figure(flows: list[Flow], *, title: str = "") -> plt.Figure:
    """‖∂L/∂W_l‖ against the layer l (log scale), one line per activation and initialisation:
    a line falling to the left is a vanishing gradient, a high one an exploding gradient."""
    fig, ax = plt.subplots(figsize=(8.5, 5))
    colours = {"sigmoid": "C0", "tanh": "C2", "relu": "C3"}
    for flow in flows:
        layers = np.arange(1, len(flow.norms) + 1)
        own = flow.init != "standard"
        ax.semilogy(
            layers, flow.norms, "o-" if own else "s--", ms=4, color=colours[flow.activation],
            label=f"{flow.activation}, {flow.init} init: first / last = {flow.first_over_last:.1e}",
        )  # fmt: skip
    ax.set(xlabel="layer l (1 = input side)", ylabel="‖∂L/∂W_l‖")
    ax.set_title(title or f"gradient norm per layer at initialisation, {len(layers)} layers")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig
