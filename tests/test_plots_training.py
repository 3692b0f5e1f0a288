"""The training curves' axes: plain tick labels on a log scale, short runs included."""

from __future__ import annotations

import pytest

from jaxcalc.plots.training import curves_figure


def history(epochs: int) -> list[dict]:
    return [
        {"epoch": i, "loss": 0.7 * 0.43**i, "train_accuracy": 1 - 0.1 * 0.62**i,
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
