"""jaxcalc.descent against the closed-form theory, its divergence report, and `jaxcalc descent`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcalc import descent, optim
from jaxcalc.cli import main
from jaxcalc.validation import InputError

A, B, C, X0 = 1.5, -3.0, 2.0, 4.0  # x* = 1


@pytest.mark.parametrize("alpha", [0.05, 1 / 3, 0.5, 0.65])
def test_trajectory_matches_closed_form_float64(x64, alpha):
    f = descent.quadratic(A, B, C)
    xs = descent.gradient_descent(f, jnp.float64(X0), alpha, 40)
    assert xs.shape == (41,) and xs.dtype == jnp.float64
    x_star = descent.quadratic_minimum(A, B)  # x_t = x* + (1 − 2aα)^t (x_0 − x*)
    closed = x_star + descent.quadratic_factor(A, alpha) ** np.arange(41) * (X0 - x_star)
    np.testing.assert_allclose(np.asarray(xs), closed, rtol=0, atol=1e-10)


def test_trajectory_shape_follows_x0():
    xs = descent.gradient_descent(lambda x: jnp.sum(x**2), jnp.ones((2, 3)), 0.1, 5)
    assert xs.shape == (6, 2, 3)
    np.testing.assert_allclose(xs[1], 0.8 * np.ones((2, 3)), rtol=1e-6)


def test_stability_bound_and_optimal_step(x64):
    f = descent.quadratic(A, B, C)
    assert descent.stability_bound(A) == pytest.approx(1 / A)
    assert descent.optimal_step(A) == pytest.approx(1 / (2 * A))
    one = descent.gradient_descent(f, jnp.float64(X0), descent.optimal_step(A), 1)
    assert float(one[1]) == pytest.approx(1.0, abs=1e-15)  # x* in one step
    bound = descent.stability_bound(A)
    inside = descent.descend(f, jnp.float64(X0), 0.99 * bound, 500)
    outside = descent.descend(f, jnp.float64(X0), 1.01 * bound, 2000)
    assert inside.diverged_at is None and abs(inside.trajectory[-1] - 1) < 1e-2
    assert outside.diverged_at is not None


def test_divergence_is_reported_not_nan():
    f = descent.quadratic(1.0, 0.0, 0.0)
    res = descent.descend(f, 1.0, 1.5, 200)  # factor |1 − 3| = 2: |x| passes 1e6 at step 20
    assert res.diverged_at == 20
    assert np.isfinite(res.trajectory).all() and len(res.trajectory) == 20
    assert res.message.startswith("diverged at step 20: |x| exceeded 1e+06; try alpha < 1")
    adam_res = descent.descend(f, 1.0, optim.sgd(1.5), 200)
    assert adam_res.diverged_at == 20 and "smaller learning rate" in adam_res.message


def test_bowl_rate_at_optimal_step(x64):
    kappa = 10.0
    f = descent.bowl(kappa, angle=0.4)
    xs = descent.gradient_descent(f, jnp.array([1.0, 2.0]), descent.bowl_step(kappa), 60)
    measured = descent.measured_rate(np.linalg.norm(xs, axis=1))
    assert measured == pytest.approx(descent.bowl_rate(kappa), rel=1e-9)


def test_learning_rate_study_theory_equals_measurement():
    runs = descent.learning_rate_study(1.0, -2.0, 3.0, 4.0, [0.1, 0.4, 0.8, 1.05], 25)
    assert [r.regime for r in runs] == ["monotone", "monotone", "oscillating", "diverging"]
    for r in runs:
        assert r.measured == pytest.approx(r.theory, rel=1e-6)


def test_newton_on_quadratic_converges_in_one_step(x64):
    f = descent.bowl(1000.0, angle=0.3)
    xs = descent.newton(f, jnp.array([3.0, -2.0]), 1)
    np.testing.assert_allclose(xs[1], 0.0, atol=1e-12)


def test_newton_and_adam_reach_rosenbrock_minimum(x64):
    xs = descent.newton(descent.rosenbrock, jnp.array([-1.2, 1.0]), 10)
    np.testing.assert_allclose(xs[-1], [1.0, 1.0], atol=1e-10)
    xs = descent.optimize(descent.rosenbrock, jnp.array([-1.2, 1.0]), optim.adam(0.05), 2000)
    np.testing.assert_allclose(xs[-1], [1.0, 1.0], atol=1e-3)


def test_newton_takes_any_gradient_and_hessian(x64):
    """The finite-difference Newton steps of `exercises` are this same loop."""
    from jaxcalc.calculus import numerical_gradient, numerical_hessian

    f, x0 = descent.rosenbrock, jnp.array([-1.2, 1.0])
    auto = descent.newton(f, x0, 10)
    fd = descent.newton(
        f,
        x0,
        10,
        grad=lambda x: numerical_gradient(f, x),
        hessian=lambda x: numerical_hessian(f, x),
    )
    assert fd.shape == auto.shape == (11, 2)
    np.testing.assert_allclose(fd, auto, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(fd[-1], [1.0, 1.0], atol=1e-8)
    with pytest.raises(InputError, match="hessian must be callable"):
        descent.newton(f, x0, 1, hessian=np.eye(2))


@pytest.mark.parametrize(
    "call,argument",
    [
        (lambda: descent.gradient_descent(jnp.sin, 0.0, 0.0, 10), "learning_rate"),
        (lambda: descent.gradient_descent(jnp.sin, 0.0, float("nan"), 10), "learning_rate"),
        (lambda: descent.gradient_descent(jnp.sin, 0.0, 0.1, -1), "steps"),
        (lambda: descent.gradient_descent("sin", 0.0, 0.1, 1), "f"),
        (lambda: descent.quadratic(0.0, 1.0, 1.0), "a"),
        (lambda: descent.bowl(0.5), "kappa"),
        (lambda: descent.descend(jnp.sin, 0.0, 0.1, 5, bound=-1.0), "bound"),
        (lambda: descent.surface("saddle"), "surface"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(InputError, match=argument):
        call()


def test_cli_writes_figures_and_table(tmp_path, capsys):
    code = main(
        ["descent", "--out", str(tmp_path), "--surface", "bowl", "--surface-steps", "30",
         "--steps", "10"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "theory |1-2a alpha|" in out and "(kappa-1)/(kappa+1) = 0.923077" in out
    for name in ("learning_rates.png", "paths.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run_cli(args: list[str]) -> int:
    """`jaxcalc …` in-process: its exit status, whether it returns or argparse exits."""
    try:
        return main(args)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize(
    "args",
    [["--lr", "-0.1"], ["--lr", "nan"], ["--steps", "0"], ["--surface", "saddle"],
     ["--kappa", "0"], ["--kappa", "0.5"], ["--a", "-1"], ["--b", "inf"]],
)  # fmt: skip
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, args):
    assert run_cli(["descent", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("jaxcalc descent: error:")


def test_x64_not_left_on():
    descent.learning_rate_study(1.0, 0.0, 0.0, 1.0, [0.1], 3)
    assert jnp.zeros(()).dtype == jax.numpy.float32


@pytest.mark.parametrize(
    ("alpha", "regime"), [(0.3, "monotone"), (0.8, "oscillating"), (1.05, "diverging")]
)
def test_one_learning_rate_figure(alpha, regime):
    from jaxcalc.plots.descent import descent_at_figure

    [run] = descent.learning_rate_study(1.0, -2.0, 3.0, 4.0, [alpha], 25)
    fig = descent_at_figure(run, 1.0, -2.0, 3.0)
    ax, ax_gap = fig.axes
    assert ax.get_title() == f"α = {alpha:g}: {regime}"
    path = ax.lines[1].get_xdata()  # the iterates shown: those within the parabola's window
    assert path[0] == 4.0 and np.all(np.abs(path - 1.0) <= 3.0 * 1.3)
    assert (np.diff(np.sign(path - 1.0)) != 0).any() == (regime != "monotone")
    labels = [t.get_text() for t in ax_gap.get_legend().get_texts()]
    assert labels[1] == f"theory |1 − 2aα| = {abs(1 - 2 * alpha):.4f}"
    t = np.arange(len(run.gaps))  # the gap f(x_t) − f* falls as |1 − 2aα|^(2t)
    np.testing.assert_allclose(ax_gap.lines[1].get_ydata(), run.gaps[0] * run.theory ** (2 * t))
    np.testing.assert_allclose(ax_gap.lines[1].get_ydata(), run.gaps, rtol=1e-6)
