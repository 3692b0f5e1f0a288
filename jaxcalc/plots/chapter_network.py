"""Figures of the chapter's network in training: loss and accuracy per epoch, several runs."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from jaxcalc.chapter_network import Epoch
from jaxcalc.plots import PlainLogFormatter


def training_figure(runs: dict[str, list[Epoch]], *, title: str = "") -> plt.Figure:
    """Training loss (left, log scale: MSE and cross-entropy are different numbers) and
    validation accuracy (right, training accuracy dashed), one colour per run."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, history) in enumerate(runs.items()):
        epochs = [e.epoch for e in history]
        ax_loss.semilogy(epochs, [e.loss for e in history], "o-", ms=3, color=f"C{i}", label=name)
        ax_acc.plot(epochs, [100 * e.val_accuracy for e in history], "o-", ms=3, color=f"C{i}",
                    label=f"{name}: {100 * history[-1].val_accuracy:.1f}%")  # fmt: skip
        ax_acc.plot(epochs, [100 * e.train_accuracy for e in history], "--", lw=1, color=f"C{i}")
    ax_loss.set(title="training loss (mean over the epoch's mini-batches)", ylabel="loss")
    ax_acc.set(title="validation accuracy (training dashed)", ylabel="accuracy (%)")
    ax_loss.yaxis.set_major_formatter(PlainLogFormatter())
    ax_loss.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
    ax_loss.legend(fontsize=8)
    ax_acc.legend(fontsize=8, loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
