"""Figures of a training run: curves, confusion matrix, misclassified digits, first-layer weights.

Each `*_figure` function takes plain arrays and returns a matplotlib Figure;
`save_training_figures` writes all four as PNGs into a folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from jaxcalc.plots import PlainLogFormatter, save

FIGURES = ("curves.png", "confusion.png", "misclassified.png", "weights.png")


#: The accuracies of an epoch's record drawn beside each other, and their legends.
ACCURACIES = (
    ("train_running_accuracy", "train (running, on the epoch's distorted batches)"),
    ("val_accuracy", "validation"),
)


def curves_figure(history: Sequence[dict]) -> plt.Figure:
    """Mean training loss per epoch (left) and the running train accuracy (the steps' own
    predictions during the epoch) and validation accuracy (after it) as error rates (right)."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [h["loss"] for h in history], "o-", ms=3)
    ax_loss.set_yscale("log")
    ax_loss.set_title("training loss (mean over the epoch)")
    for key, label in ACCURACIES:
        values = [h.get(key) for h in history]
        if all(v is not None for v in values):
            ax_acc.plot(epochs, [100 * (1 - v) for v in values], "o-", ms=3, label=label)
    ax_acc.set_yscale("log")
    ax_acc.set_title("error rate (%)")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(PlainLogFormatter())
        ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def confusion_figure(
    labels: np.ndarray, predictions: np.ndarray, classes: Sequence[str]
) -> plt.Figure:
    """Confusion matrix of the test set: row = true class, column = predicted class."""
    k = len(classes)
    counts = np.bincount(labels * k + predictions, minlength=k * k).reshape(k, k)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    # Log colours, so the few errors off the diagonal show next to the thousands on it.
    image = ax.imshow(np.log1p(counts), cmap="Blues")
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                dark = image.norm(np.log1p(counts[i, j])) > 0.6
                ax.text(
                    j,
                    i,
                    counts[i, j],
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
    ax.set_xticks(range(k), classes, rotation=45 if max(map(len, classes)) > 2 else 0)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / counts.sum()
    ax.set_title(
        f"test confusion matrix: {counts.sum() - np.trace(counts)} errors, "
        f"accuracy {100 * accuracy:.2f}%"
    )
    fig.tight_layout()
    return fig


def _mosaic(tiles: np.ndarray, cols: int, *, gap: int = 1, top: int = 0) -> np.ndarray:
    """Tiles (n, h, w) laid out in a grid of `cols` columns, NaN between them.

    `top` adds that many blank rows above each tile (room for a caption). One image is far
    faster to draw than one axes per tile.
    """
    n, h, w = tiles.shape
    rows = max(1, math.ceil(n / cols))
    cell_h, cell_w = top + h + gap, w + gap
    grid = np.full((rows * cell_h, cols * cell_w), np.nan)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * cell_h + top : r * cell_h + top + h, c * cell_w : c * cell_w + w] = tile
    return grid


def misclassified_figure(
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    classes: Sequence[str],
    *,
    n: int = 40,
    cols: int = 10,
) -> plt.Figure:
    """The first `n` misclassified test images, captioned `true→predicted`."""
    wrong = np.flatnonzero(labels != predictions)[:n]
    h, w = images.shape[1:]
    top = h // 3
    grid = _mosaic(images[wrong].astype(float), cols, gap=2, top=top)
    fig, ax = plt.subplots(figsize=(cols * 1.0, grid.shape[0] / (top + h) * 1.25 + 0.4))
    ax.imshow(grid, cmap="gray_r", interpolation="nearest")
    long = max(map(len, classes)) > 2
    for k, i in enumerate(wrong):
        r, c = divmod(k, cols)
        ax.text(
            c * (w + 2) + w / 2,
            r * (top + h + 2) + top - 1,
            f"{classes[labels[i]]}→{classes[predictions[i]]}",
            ha="center",
            va="bottom",
            color="C3",
            fontsize=5 if long else 8,
        )
    ax.axis("off")
    ax.set_title(f"misclassified test images (true→predicted), {len(wrong)} shown")
    return fig


def weights_figure(W1: np.ndarray, *, n: int = 64, side: int = 28) -> plt.Figure:
    """The input weights of the first `n` hidden units, each a `side`×`side` tile.

    Each tile is scaled by its own largest |weight| (red positive, blue negative): the
    pattern a hidden unit responds to.
    """
    W1 = np.asarray(W1, float)
    tiles = W1[:, :n].T.reshape(-1, side, side)
    tiles = tiles / np.maximum(np.abs(tiles).max(axis=(1, 2), keepdims=True), 1e-12)
    grid = _mosaic(tiles, 8, gap=2)
    fig, ax = plt.subplots(figsize=(8, 8 * grid.shape[0] / grid.shape[1] + 0.4))
    ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.axis("off")
    ax.set_title(f"first-layer weights W1 of {len(tiles)} hidden units, as {side}×{side} images")
    return fig


def save_training_figures(
    out_dir: str | os.PathLike,
    history: Sequence[dict],
    test_images: np.ndarray,
    test_labels: np.ndarray,
    test_predictions: np.ndarray,
    W1: np.ndarray,
    classes: Sequence[str],
) -> list[Path]:
    """Write `FIGURES` (curves, confusion, misclassified, weights) into `out_dir`.

    `test_predictions` may be a JAX array still being computed: the figures that need none
    (curves, weights) are drawn first, and it is waited for only then.
    """
    out_dir = Path(out_dir)
    paths = {
        "curves.png": save(curves_figure(history), out_dir / "curves.png"),
        "weights.png": save(weights_figure(W1, side=test_images.shape[1]), out_dir / "weights.png"),
    }
    labels, predictions = np.asarray(test_labels, int), np.asarray(test_predictions, int)
    paths["confusion.png"] = save(
        confusion_figure(labels, predictions, classes), out_dir / "confusion.png"
    )
    paths["misclassified.png"] = save(
        misclassified_figure(test_images, labels, predictions, classes),
        out_dir / "misclassified.png",
    )
    return [paths[name] for name in FIGURES]
