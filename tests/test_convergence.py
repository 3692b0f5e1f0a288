"""Optimisers told honestly: measured rates on quadratic bowls against theory, Adam's axes,
and the small-multiples paths figure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxcalc import convergence as cv
from jaxcalc import descent
from jaxcalc.plots.convergence import axes_figure, rates_figure
from jaxcalc.plots.descent import paths_figure
from jaxcalc.validation import InputError


def test_theory_formulas():
    assert cv.heavy_ball_rate(1000.0) == pytest.approx(0.9386931399365689, rel=1e-15)
    alpha, beta = cv.heavy_ball_parameters(25.0)
    assert (alpha, beta) == pytest.approx((4 / 36, (4 / 6) ** 2), rel=1e-15)
    # at the optimum both extremes sit at a double root of modulus √β = (√κ − 1)/(√κ + 1)
    for kappa in (4.0, 25.0, 1000.0):
        a, b = cv.heavy_ball_parameters(kappa)
        assert cv.momentum_rate(kappa, a, b) == pytest.approx(cv.heavy_ball_rate(kappa), rel=1e-6)
        s = descent.bowl_step(kappa)
        assert cv.gd_rate(kappa, s) == pytest.approx(descent.bowl_rate(kappa), rel=1e-15)
    # with β = 0.9 and a small step every root is complex: the rate is √0.9 whatever α
    assert cv.momentum_rate(25.0, 1 / 26, 0.9) == pytest.approx(math.sqrt(0.9), rel=1e-12)


def test_kappa_1000_measured_rates_match_theory():
    runs = {r.method.split(",")[0]: r for r in cv.rate_study(1000.0, steps=600)}
    gd, hb, mom = runs["gradient descent"], runs["heavy ball"], runs["momentum β = 0.9"]
    assert gd.measured == pytest.approx((1000 - 1) / (1000 + 1), abs=1e-9)
    assert hb.asymptotic == pytest.approx((math.sqrt(1000) - 1) / (math.sqrt(1000) + 1))
    assert hb.measured == pytest.approx(hb.theory, abs=1e-5)  # r · 2^(1/300), the t-factor
    assert hb.measured - hb.asymptotic == pytest.approx(
        hb.asymptotic * (2 ** (1 / 300) - 1), rel=0.01
    )
    assert mom.measured == pytest.approx(mom.theory, abs=1e-6)
    assert hb.errors[-1] < 1e-10 * gd.errors[-1]  # after 600 steps: 1e-13 against 1.6


def test_rates_against_kappa_follow_both_laws():
    for kappa, gd, hb in cv.rates_against_kappa((10.0, 100.0, 1000.0)):
        assert 1 - gd == pytest.approx(2 / (kappa + 1), rel=1e-9)
        assert 1 - hb == pytest.approx(1 - cv.heavy_ball_rate(kappa), rel=0.01)


def test_why_gradient_descent_wins_the_kappa_25_race():
    """The κ = 25 figure: GD at its optimal step beats momentum with β = 0.9, because √0.9 >
    (κ − 1)/(κ + 1); tuned, heavy ball would beat both."""
    surf = descent.surface("bowl")
    lr = surf.learning_rates
    gd_theory = cv.gd_rate(25.0, lr["gd"])
    mom_theory = cv.momentum_rate(25.0, lr["momentum"], 0.9)
    assert cv.heavy_ball_rate(25.0) < gd_theory < mom_theory
    results = descent.compare(surf)  # the figure's 100 steps
    assert results["gradient descent"].values[-1] < results["momentum"].values[-1]
    longer = descent.compare(surf, steps=1000)
    for name, theory in (("gradient descent", gd_theory), ("momentum", mom_theory)):
        errors = np.linalg.norm(longer[name].trajectory, axis=1)
        # complex roots make momentum's error oscillate under its envelope √0.9^t: a long
        # window averages the oscillation out
        assert cv.window_rate(errors, 100, 1000) == pytest.approx(theory, abs=1e-3)


def test_adam_removes_kappa_only_on_axis_aligned_bowls():
    runs = cv.axes_study(kappas=(10.0, 100.0, 1000.0), steps=2400)
    aligned = [r for r in runs if r.angle == 0]
    turned = [r for r in runs if r.angle != 0]
    adam_aligned = {r.steps_to_1pct["adam"] for r in aligned}
    assert len(adam_aligned) == 1  # the same steps whatever κ: per-coordinate scaling
    for a, t in zip(aligned, turned, strict=True):
        gd_a, gd_t = a.steps_to_1pct["gradient descent"], t.steps_to_1pct["gradient descent"]
        assert gd_a == gd_t == math.ceil(math.log(0.01) / math.log(descent.bowl_rate(a.kappa)))
        reach = t.steps_to_1pct["adam"]
        assert reach is None or reach > 3 * a.steps_to_1pct["adam"]
    assert turned[-1].steps_to_1pct["adam"] is None  # κ = 1000 turned: not in 2400 steps
    assert aligned[-1].steps_to_1pct["adam"] < aligned[-1].steps_to_1pct["gradient descent"] / 10


def test_figures_show_the_measurements():
    runs = cv.rate_study(100.0, steps=200)
    fig = rates_figure(runs, 100.0, cv.rates_against_kappa((10.0, 100.0)))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(legend) == 3 and all("measured" in s and "theory" in s for s in legend)
    axes = cv.axes_study(kappas=(10.0, 100.0), steps=300)
    fig = axes_figure(axes, 100.0)
    titles = [ax.get_title() for ax in fig.axes]
    assert sum("1% of the distance" in t for t in titles) == 4


def test_paths_figure_is_small_multiples():
    surf = descent.surface("bowl")
    results = descent.compare(surf, steps=20)
    fig = paths_figure([(surf, results)])
    assert len(fig.axes) == len(results) == 5
    for ax, (name, res) in zip(fig.axes, results.items(), strict=True):
        assert ax.get_title().startswith(name)
        assert len(ax.get_lines()[0].get_xdata()) == len(res.trajectory)  # one path per panel
        assert ax.texts[0].get_text().startswith("f = ")


def test_bad_input():
    with pytest.raises(InputError, match="kappa"):
        cv.heavy_ball_parameters(0.5)
    with pytest.raises(InputError, match="beta"):
        cv.momentum_rate(10.0, 0.1, 1.0)
    with pytest.raises(InputError, match="start < stop"):
        cv.window_rate(np.ones(5), 3, 3)
