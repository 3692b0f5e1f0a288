"""The chapter's answers against numbers worked out by hand and evaluated with NumPy."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcalc import exercises as E


@pytest.fixture(scope="module")
def answers() -> dict[str, E.Answer]:
    return {a.name: a for section in E.SECTIONS for a in section()}


def _confirmed(answer: E.Answer, expected) -> None:
    """The closed form, autodiff and finite differences all equal the hand-worked numbers."""
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(answer.value, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(answer.autodiff, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(answer.finite_difference, expected, rtol=1e-6, atol=1e-8)
    assert answer.ok


def test_every_answer_is_confirmed(answers):
    assert len(answers) == 13
    assert [a.name for a in answers.values() if not a.ok] == []


def test_derivative_rules(answers):
    _confirmed(answers["Power rule"], [-1 * 2.0**-2, 0.5 * 2.0**-0.5, 3 * 2.0**2])
    _confirmed(answers["Product rule"], [2 * math.sin(1) + math.cos(1)])
    _confirmed(answers["Chain rule"], [2 * math.cos(1)])
    c, s = math.cos(1), math.sin(1)
    _confirmed(answers["Multivariable chain rule"], [-2 * c * s * s + c * c * c])


def test_worked_examples(answers):
    _confirmed(answers["Worked example 1"], [6.0, 6.0])
    _confirmed(answers["Worked example 2"], [2 * math.cos(5), 4 * math.cos(5)])
    # x = 1, W1 = 0.5, W2 = 2, target 1
    a1 = 1 / (1 + math.exp(-0.5))
    y = 2 * a1
    _confirmed(answers["Worked example 3"], [(y - 1) * 2 * a1 * (1 - a1) * 1.0, (y - 1) * a1])
    assert "L = 0.029993" in answers["Worked example 3"].note


def test_exercise_1(answers):
    x = np.array([-1.0, 0.5, 2.0])
    _confirmed(answers["Exercise 1a"], [-25.0, -4.0, 71.0])
    _confirmed(answers["Exercise 1b"], np.exp(x) * (np.sin(x) + np.cos(x)))
    _confirmed(answers["Exercise 1c"], [-1.0, 0.8, 0.8])


def test_exercise_2(answers):
    _confirmed(answers["Exercise 2a"], [1.0, -3.0])
    minimum = (2.0**0.2, -(2.0**0.6) / 3)
    _confirmed(answers["Exercise 2b"], [(0.0, 0.0), minimum])

    def grad(x, y):  # typed in by hand
        return np.array([3 * x**2 * y**2 + 2 * y, 2 * x**3 * y + 2 * x - 3 * y**2])

    for x, y in answers["Exercise 2b"].autodiff:
        assert np.linalg.norm(grad(x, y)) < 1e-12
    note = answers["Exercise 2b"].note
    assert "saddle point" in note and "local minimum" in note


def test_exercise_3(answers):
    _confirmed(answers["Exercise 3"], [10 * math.e**2])


def test_answer_not_ok_when_a_check_disagrees():
    good = E.Answer("t", "p", "c", np.array([1.0]), np.array([1.0]), np.array([1.0 + 1e-9]))
    assert good.ok
    bad_fd = E.Answer("t", "p", "c", np.array([1.0]), np.array([1.0]), np.array([1.001]))
    bad_ad = E.Answer("t", "p", "c", np.array([1.0]), np.array([1.0 + 1e-6]), np.array([1.0]))
    assert not bad_fd.ok and not bad_ad.ok


def test_newton_finds_all_critical_points_of_a_double_well():
    # f = x⁴/4 − x²/2 + y²/2: ∇f = (x³ − x, y) vanishes at x ∈ {−1, 0, 1}, y = 0
    def f(p):
        return p[0] ** 4 / 4 - p[0] ** 2 / 2 + p[1] ** 2 / 2

    g = jnp.linspace(-2.0, 2.0, 9)
    starts = jnp.stack(jnp.meshgrid(g, g), axis=-1).reshape(-1, 2) + 0.01
    found = E.newton_critical_points(f, starts)
    np.testing.assert_allclose(found, [[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]], atol=1e-6)


def test_classify():
    assert E.classify(np.diag([1.0, 2.0])) == "local minimum"
    assert E.classify(np.diag([-1.0, -2.0])) == "local maximum"
    assert E.classify(np.array([[0.0, 2.0], [2.0, 0.0]])) == "saddle point"
    assert E.classify(np.diag([1.0, 0.0])).startswith("degenerate")


def test_gradient_checks_of_the_chapter_functions():
    checks = E.gradient_checks()
    assert len(checks) == 5
    for name, report in checks.items():
        assert report.verdict == "ok", (name, report)
        assert report.max_error < 1e-9
