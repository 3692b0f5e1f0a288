"""A figure with a slider where a widget frontend can move it, the static figure elsewhere.

    explore(draw, values, value=v0, description="h", show=show)

shows `draw(v0)`, a matplotlib figure, through `show(fig)`. In a live Jupyter session
(ipywidgets installed, a kernel running the cell, `JAXCALC_STATIC_FIGURES` unset) it shows
`slider` instead: a slider over `values`, each move redrawing the figure below it. Where no frontend
runs the widget (nbclient in CI, `scripts/run_notebooks.py`, a notebook read on a code
host), a widget would leave nothing to see: the static figure is stored, with a line that
says where the slider appears.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt

from jaxcalc.validation import InputError

#: Set (to anything but "" or "0") to draw the static figure even where widgets would run.
STATIC = "JAXCALC_STATIC_FIGURES"


def widgets_available() -> bool:
    """ipywidgets importable, a kernel running this code, and `STATIC` unset."""
    if os.environ.get(STATIC, "") not in ("", "0"):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def explore(
    draw: Callable[[float], plt.Figure],
    values: Sequence[float],
    *,
    value: float,
    description: str,
    show: Callable[[plt.Figure], None],
    fmt: str = "{:g}",
) -> None:
    """`show(draw(value))`, or where widgets run, `slider` displayed in its place.

    Args:
      draw: the figure for one value.
      values: the slider's stops, in order; `value` among them.
      value: the value drawn first (and the only one drawn without widgets).
      description: the slider's label.
      show: displays a figure (and closes it).
      fmt: how a stop is labelled.
    """
    values = [float(v) for v in values]
    if float(value) not in values:
        raise InputError(f"value {value!r} is not one of the slider's values")
    if not widgets_available():
        show(draw(value))
        print(f"(in Jupyter with ipywidgets, a slider over {description} redraws this figure)")
        return
    from IPython.display import display

    display(slider(draw, values, value=value, description=description, show=show, fmt=fmt))


def slider(draw, values, *, value, description, show, fmt="{:g}"):
    """An ipywidgets box: a slider over `values` and, below it, `show(draw(v))` for the
    value v it is set to, redrawn on every move (see `explore`)."""
    import ipywidgets as widgets

    stops = widgets.SelectionSlider(
        options=[(fmt.format(v), float(v)) for v in values],
        value=float(value),
        description=description,
        continuous_update=False,
        layout=widgets.Layout(width="60%"),
    )
    out = widgets.Output()

    def redraw(change=None) -> None:
        with out:
            out.clear_output(wait=True)
            show(draw(stops.value))

    stops.observe(redraw, names="value")
    redraw()
    return widgets.VBox([stops, out])
