"""The training curves' axes: plain tick labels on a log scale, short runs included."""

from __future__ import annotations

import pytest

from jaxcalc.plots.training import curves_figure


def history(epochs: int) -> list[dict]:
    return [
        {"epoch": i, "loss": 0.7 * 0.43**i, "train_running_accuracy": 1 - 0.1 * 0.62**i,
         "val_accuracy": 1 - 0.11 * 0.7**i}
        for i in range(1, epochs + 1)
    ]  # fmt: skip


@pytest.mark.parametrize("epochs", [2, 20])
def test_log_ticks_read_as_plain_numbers(epochs):
    fig = curves_figure(history(epochs))
    fig.canvas.draw()
    labels = [
        t.get_text() for ax in fig.axes for t in ax.get_yticklabels(which="both") if t.get_text()
    ]
    assert len(labels) >= 4
    assert not any("times" in s or "^" in s or "×" in s for s in labels), labels  # no 5.9×10⁰
    assert all(float(s) > 0 for s in labels)


def test_curves_name_the_running_train_accuracy():
    fig = curves_figure(history(3))
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend == ["train (running, on the epoch's distorted batches)", "validation"]


def test_figures_wait_for_the_predictions_only_when_they_need_them(tmp_path):
    """`save_training_figures` takes the test predictions as a JAX array still computing:
    the curves and weights are drawn before it is read (here: read once, after them)."""
    import numpy as np

    from jaxcalc.plots.training import FIGURES, save_training_figures

    order = []

    class Predictions:  # stands for a jax.Array in flight; np.asarray reads it
        def __array__(self, dtype=None, copy=None):
            order.append(sorted(p.name for p in tmp_path.iterdir()))
            return np.arange(20) % 3

    rng = np.random.default_rng(0)
    paths = save_training_figures(
        tmp_path, history(2), rng.integers(0, 255, (20, 28, 28)), np.arange(20) % 3 * 0,
        Predictions(), rng.normal(size=(784, 8)), ("a", "b", "c"),
    )  # fmt: skip
    assert order == [["curves.png", "weights.png"]]
    assert [p.name for p in paths] == list(FIGURES) and all(p.stat().st_size for p in paths)
