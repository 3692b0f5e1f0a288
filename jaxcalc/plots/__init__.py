"""Every matplotlib figure of jaxcalc, headless (Agg) and saved as PNG.

One sub-module per subject (`plots.calculus`, `plots.descent`, `plots.training`,
`plots.bench`); this module holds what they share.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogFormatterSciNotation  # noqa: E402

from jaxcalc.files import atomic_write  # noqa: E402


def save(fig: plt.Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Save `fig` as a PNG at `path` atomically and close it; returns the path."""
    path = atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
    plt.close(fig)
    return path


class PlainLogFormatter(LogFormatterSciNotation):
    """Log-axis labels as plain numbers (0.3, 5, 1e-05), not 3×10⁻¹, wherever matplotlib
    labels a tick (minor ticks too, when the axis spans less than a decade)."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""
