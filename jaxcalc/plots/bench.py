"""Figures of `jaxcalc bench`: throughput per implementation, scaling over devices, and what a
gradient costs."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

from jaxcalc.bench.gradient_cost import CostPoint
from jaxcalc.bench.report import caveat
from jaxcalc.bench.scaling import ScalingResult
from jaxcalc.bench.training import BASELINE, BenchResult


def throughput_figure(result: BenchResult) -> plt.Figure:
    """Horizontal bars of samples/s per implementation (log scale), labelled with the ratio.

    Extrapolated results are hatched; skipped and failed ones are named without a bar.
    """
    rows = result.rows[::-1]  # first row on top
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.6))
    for i, r in enumerate(rows):
        if r.samples_per_second is None:
            ax.text(
                1, i, f"  {r.status}", va="center", color="grey", transform=ax.get_yaxis_transform()
            )
            continue
        color = "tab:orange" if r.impl == BASELINE else "tab:blue"
        ax.barh(i, r.samples_per_second, color=color, hatch="//" if r.extrapolated else None)
        label = f" {r.samples_per_second:,.0f}"
        if r.vs_baseline is not None:
            label += f"  ({r.vs_baseline:.2f}x)"
        ax.text(r.samples_per_second, i, label, va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [r.label for r in rows])
    ax.set_xscale("log")
    ax.set_xlabel("training samples per second (log scale; hatched: extrapolated)")
    ax.set_title(
        f"784-{result.config['hidden']}-10, Adam, batch {result.config['batch_size']} on "
        f"{result.machine['jax_device']}  (ratio to {BASELINE})",
        fontsize=10,
    )
    ax.margins(x=0.25)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return fig


def gradient_cost_figure(points: Sequence[CostPoint]) -> plt.Figure:
    """Seconds per gradient against n (log-log): finite differences, reverse mode, and f."""
    n = [p.n for p in points]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    measured = [p for p in points if p.finite_difference_measured]
    guessed = [p for p in points if not p.finite_difference_measured]
    ax.plot(
        [p.n for p in measured],
        [p.finite_difference_seconds for p in measured],
        "o-",
        color="tab:red",
        label="finite differences (n + 1 evaluations of f)",
    )
    if guessed:
        tail = measured[-1:] + guessed
        ax.plot(
            [p.n for p in tail],
            [p.finite_difference_seconds for p in tail],
            "o--",
            color="tab:red",
            mfc="none",
            label="finite differences, extrapolated",
        )
    ax.plot(n, [p.reverse_seconds for p in points], "s-", color="tab:blue", label="reverse mode")
    ax.plot(n, [p.function_seconds for p in points], ".:", color="grey", label="f itself")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n, the number of inputs of f")
    ax.set_ylabel("seconds per gradient")
    ax.set_title("What a gradient costs: O(n) evaluations vs about one", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def scaling_figure(result: ScalingResult) -> plt.Figure:
    """Samples/s against the number of devices per implementation, beside its ideal line.

    Each point is labelled with its speed-up and efficiency; the caveat of virtual devices
    is in the title.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    n = result.devices
    for impl in dict.fromkeys(r.impl for r in result.rows):
        rows = [r for r in result.rows if r.impl == impl and r.speedup is not None]
        if not rows:
            continue
        (line,) = ax.plot([r.devices for r in rows], [r.samples_per_second for r in rows], "o-")
        line.set_label(impl)
        base = rows[0].samples_per_second / rows[0].devices
        ax.plot(n, [base * d for d in n], "--", color=line.get_color(), alpha=0.5)
        for r in rows[1:]:
            ax.annotate(
                f"{r.speedup:.2f}x ({r.efficiency:.0%})",
                (r.devices, r.samples_per_second),
                textcoords="offset points",
                xytext=(-6, 6),
                ha="right",
                fontsize=8,
            )
    ax.plot([], [], "--", color="grey", label="ideal (linear in devices)")
    ax.set_xticks(n)
    ax.set_xlabel("devices (the global batch split over them)")
    ax.set_ylabel("training samples per second")
    ax.set_ylim(bottom=0)
    ax.margins(x=0.1)
    title = (
        f"784-{result.config['hidden']}-10, Adam, global batch {result.config['batch_size']} "
        f"on {result.machine['jax_device']}  (speed-up, efficiency)"
    )
    note = caveat(result)
    if note:
        title += "\n" + note.removeprefix("caveat: ").replace(": ", ":\n", 1)
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig
