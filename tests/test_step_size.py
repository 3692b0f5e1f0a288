"""The step-size study: the V of finite-difference error against h, against the theory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxcalc.plots import save
from jaxcalc.plots.calculus import step_size_at_figure, step_size_figure
from jaxcalc.step_size import step_size_study

EPS32, EPS64 = float(np.finfo(np.float32).eps), float(np.finfo(np.float64).eps)


@pytest.fixture(scope="module")
def sin_study():
    return step_size_study("sin", 1.0)


def test_study_optimal_steps_match_theory(sin_study):
    s = sin_study
    assert s.steps[0] == pytest.approx(1e-1) and s.steps[-1] == pytest.approx(1e-15)
    for dtype, eps in (("float32", EPS32), ("float64", EPS64)):
        for method, root in (("forward", 2), ("central", 3)):
            best = s.best_step[dtype][method]
            assert eps ** (1 / root) / 10 <= best <= eps ** (1 / root) * 10, (dtype, method, best)
            assert s.default_step[dtype][method] == pytest.approx(eps ** (1 / root), rel=1e-6)
    # central beats forward, float64 beats float32, at their best
    e = {d: {m: v.min() for m, v in s.errors[d].items()} for d in s.errors}
    assert e["float64"]["central"] < e["float64"]["forward"] < e["float32"]["forward"]
    assert e["float32"]["central"] < e["float32"]["forward"]


def test_study_v_shape_and_slopes(sin_study):
    s = sin_study
    big = (s.steps >= 1e-3) & (s.steps <= 1e-1)
    for method, slope in (("forward", 1), ("central", 2)):
        err = s.errors["float64"][method]
        fitted = np.polyfit(np.log10(s.steps[big]), np.log10(err[big]), 1)[0]
        assert fitted == pytest.approx(slope, abs=0.1)
        k = np.argmin(err)
        assert err[0] > 100 * err[k] and err[-1] > 100 * err[k]  # both arms of the V
    # below eps · x, x + h == x in float32: the quotient is 0, the error |f'(x)|
    assert s.errors["float32"]["forward"][-1] == pytest.approx(math.cos(1.0), rel=0.02)


def test_study_figure(tmp_path, sin_study):
    path = save(step_size_figure(sin_study), tmp_path / "study.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_at_one_step_marks_the_nearest_step_and_its_errors(sin_study):
    s = sin_study
    fig = step_size_at_figure(s, 1.3e-4)  # between the study's steps: the nearest is 1e-4
    k = int(np.argmin(np.abs(s.steps - 1e-4)))
    ax = fig.axes[0]
    assert ax.get_title().startswith("sin'(1) with h = 1.0e-04")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        f"{m}, {d}: error {s.errors[d][m][k]:.1e} at this h"
        for d in ("float32", "float64")
        for m in ("forward", "central")
    ]
    assert ax.lines[-1].get_xdata()[0] == pytest.approx(s.steps[k])  # the vertical line
    markers = [line for line in ax.lines if line.get_marker() == "o"]
    assert [m.get_ydata()[0] for m in markers] == [
        s.errors[d][m][k] for d in ("float32", "float64") for m in ("forward", "central")
    ]
    # Nearest on the log axis: 7.6e-5 lies above the geometric mean of its neighbours 1e-4 and
    # 5.6e-5 (7.5e-5), below their arithmetic mean (7.8e-5): on the log axis it is 1e-4.
    title = step_size_at_figure(s, 7.6e-5).axes[0].get_title()
    assert title.startswith("sin'(1) with h = 1.0e-04")


def test_bad_input():
    with pytest.raises(ValueError, match="unknown function"):
        step_size_study("cos")
    with pytest.raises(ValueError, match="overflows exp in float32"):
        step_size_study("exp", 200.0)
    with pytest.raises(ValueError, match="steps must be"):
        step_size_study("sin", 1.0, steps=np.array([1e-3, 0.0]))
