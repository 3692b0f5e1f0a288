"""Figures of the second order: the Hessian's spectral density, sharpness at the edge of
stability, and the input Jacobian as saliency maps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

NAMES = {"H": "Hessian H", "G": "Gauss-Newton G"}


def density_figure(spectra: dict[str, dict[str, Any]], *, title: str = "") -> plt.Figure:
    """Each operator's density (log scale) side by side, its top eigenvalues marked.

    `spectra`: `hessian.spectrum`'s result ({"H": ..., "G": ...} with "density" and "top").
    """
    names = [n for n in ("H", "G") if n in spectra and "density" in spectra[n]]
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    lo = min(min(spectra[n]["density"]["grid"]) for n in names)
    hi = max(max(spectra[n]["density"]["grid"]) for n in names)
    for ax, name in zip(axes[0], names, strict=True):
        d = spectra[name]["density"]
        values = np.asarray(d["values"])
        floor = max(values.max() * 1e-7, 1e-12)
        ax.semilogy(d["grid"], np.maximum(values, floor), color="C0", lw=1.2)
        for i, lam in enumerate(spectra[name]["top"]):
            label = "top eigenvalues (Lanczos)" if i == 0 else None
            ax.axvline(lam, color="C3", ls="--", lw=0.8, label=label)
        ax.set(xlim=(lo, hi), ylim=(floor, None), xlabel="eigenvalue λ", ylabel="density")
        ax.set_title(f"{NAMES[name]}: λ_max = {spectra[name]['top'][0]:.3g}")
        ax.legend(loc="upper right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def sharpness_figure(runs: Sequence[dict[str, Any]], *, title: str = "") -> plt.Figure:
    """λ_max against the step with the line 2/η for each η, and the training loss beneath."""
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    for i, run in enumerate(runs):
        color = f"C{i}"
        top.plot(
            run["steps"], run["sharpness"], "o-", ms=3, color=color, label=f"η = {run['lr']:g}"
        )
        top.axhline(run["threshold"], color=color, ls="--", lw=1)
        top.annotate(
            f"2/η = {run['threshold']:.3g}",
            (0, run["threshold"]),
            textcoords="offset points",
            xytext=(4, 3),
            color=color,
            fontsize=8,
        )
        bottom.plot(np.arange(len(run["loss"])), run["loss"], color=color, lw=1)
    top.set(
        ylabel="sharpness λ_max of H", title=title or "Gradient descent at the edge of stability"
    )
    top.legend(fontsize=8)
    bottom.set(xlabel="gradient descent step", ylabel="training loss", yscale="log")
    fig.tight_layout()
    return fig


def saliency_figure(
    images: np.ndarray, maps: np.ndarray, labels: np.ndarray, predictions: np.ndarray
) -> plt.Figure:
    """Each digit (as the network saw it) above its saliency map ∂z_c/∂x for the predicted
    class c (red: more ink there raises the class's logit, blue: lowers it)."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 4.0), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(images[i], cmap="gray_r")
        axes[0, i].set_title(f"label {labels[i]}", fontsize=8)
        m = np.asarray(maps[i])
        bound = float(np.max(np.abs(m))) or 1.0
        axes[1, i].imshow(m, cmap="bwr", vmin=-bound, vmax=bound)
        axes[1, i].set_title(f"∂z_{predictions[i]}/∂x", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    title = "Input Jacobian ∂z_c/∂x of the predicted class c (red: ink there raises z_c)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(h_pad=1.5)
    return fig
