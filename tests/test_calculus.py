"""The calculus toolkit against closed forms, autodiff and the theory of step sizes.

The step-size study (the V of error against h) is tested in `test_step_size.py`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcalc import calculus as C
from jaxcalc.plots import save
from jaxcalc.plots.calculus import gradient_field

EPS32, EPS64 = float(np.finfo(np.float32).eps), float(np.finfo(np.float64).eps)


def quartic(x: jax.Array) -> jax.Array:
    """A smooth scalar function of an array of any shape, with cross terms."""
    return jnp.sum(x**4) / 4 + jnp.sum(jnp.sin(x)) * jnp.sum(x**2) + x.ravel()[0] * x.ravel()[-1]


# --- derivative -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "bound"),
    [("forward", 1e-7), ("backward", 1e-7), ("central", 1e-9), ("five-point", 1e-11)],
)
def test_derivative_float64_default_step_accuracy(x64, method, bound):
    for x in (-2.0, 0.0, 0.7, 3.0):
        for f, fprime in ((jnp.sin, math.cos), (jnp.exp, math.exp)):
            d = C.derivative(f, x, method=method)
            assert d.dtype == jnp.float64
            exact = fprime(x)
            assert abs(float(d) - exact) <= bound * max(1.0, abs(exact))


@pytest.mark.parametrize(
    ("method", "bound"),
    [("forward", 1e-3), ("backward", 1e-3), ("central", 1e-4), ("five-point", 1e-5)],
)
def test_derivative_float32(method, bound):
    d = C.derivative(jnp.sin, 1.0, method=method)
    assert d.dtype == jnp.float32
    assert abs(float(d) - math.cos(1.0)) <= bound


def test_stencils_on_polynomials_with_given_step(x64):
    # forward/backward of x² are 2x ± h exactly; central is exact for cubics (error h² f'''/6
    # = h² for x³); five-point is exact for quartics
    sq = lambda x: x**2  # noqa: E731
    assert float(C.derivative(sq, 1.0, h=0.5, method="forward")) == pytest.approx(2.5, abs=1e-14)
    assert float(C.derivative(sq, 1.0, h=0.5, method="backward")) == pytest.approx(1.5, abs=1e-14)
    cube = lambda x: x**3  # noqa: E731
    assert float(C.derivative(cube, 2.0, h=0.1, method="central")) == pytest.approx(
        12.0 + 0.1**2, abs=1e-12
    )
    assert float(C.derivative(lambda x: x**4, 1.5, h=0.3, method="five-point")) == pytest.approx(
        4 * 1.5**3, abs=1e-12
    )


def test_default_step_rule():
    x32 = jnp.array([0.0, 0.5, -4.0], dtype=jnp.float32)
    scale = np.array([1.0, 1.0, 4.0])  # max(1, |x|)
    for order, derivative, root in ((1, 1, 2), (2, 1, 3), (4, 1, 5), (2, 2, 4)):
        h = C.default_step(x32, order, derivative=derivative)
        assert h.dtype == jnp.float32
        np.testing.assert_allclose(h, EPS32 ** (1 / root) * scale, rtol=1e-6)
    with jax.enable_x64(True):
        h = C.default_step(jnp.array(10.0, dtype=jnp.float64), 2)
        assert float(h) == pytest.approx(EPS64 ** (1 / 3) * 10)


@settings(max_examples=20, deadline=None)
@given(
    st.lists(st.floats(-3, 3), min_size=1, max_size=5),
    st.floats(-2, 2),
)
def test_derivative_of_random_polynomials(coefs, x):
    with jax.enable_x64(True):
        poly = np.polynomial.Polynomial(coefs)
        d = C.derivative(lambda t: jnp.polyval(jnp.array(coefs[::-1]), t), x, method="five-point")
        exact = poly.deriv()(x)
        assert abs(float(d) - exact) <= 1e-9 * max(1.0, abs(exact), float(np.abs(coefs).sum()))


# --- gradient, Jacobian, Hessian -------------------------------------------------------


def test_numerical_gradient_matches_autodiff_any_shape(x64):
    x = jnp.linspace(-1.0, 1.2, 6).reshape(2, 3)
    g = C.numerical_gradient(quartic, x)
    assert g.shape == (2, 3)
    np.testing.assert_allclose(g, C.gradient(quartic, x), rtol=1e-8, atol=1e-9)


def test_numerical_gradient_float32_within_jax_tolerance():
    x = jnp.linspace(-1.0, 1.2, 5)
    g = C.numerical_gradient(quartic, x)
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(g, jax.jit(jax.grad(quartic))(x), rtol=2e-3, atol=2e-3)


def test_numerical_gradient_of_quadratic_form(x64):
    # f(x) = ½ xᵀ A x + bᵀ x has ∇f = ½ (A + Aᵀ) x + b, typed in by hand
    rng = np.random.default_rng(0)
    A, b, x = rng.normal(size=(7, 7)), rng.normal(size=7), rng.normal(size=7)
    f = lambda v: 0.5 * v @ (jnp.asarray(A) @ v) + jnp.asarray(b) @ v  # noqa: E731
    expected = 0.5 * (A + A.T) @ x + b
    np.testing.assert_allclose(C.numerical_gradient(f, x), expected, rtol=1e-8, atol=1e-9)


def test_numerical_jacobian_shapes_and_values(x64):
    def f(x):  # R^(2, 3) -> R^(4,)
        return jnp.stack([jnp.sum(x**2), jnp.prod(x), jnp.sin(x[0, 0]) * x[1, 2], x[1, 1]])

    x = jnp.arange(1.0, 7.0).reshape(2, 3) / 3
    J = C.numerical_jacobian(f, x)
    assert J.shape == (4, 2, 3)
    np.testing.assert_allclose(J, jax.jit(jax.jacrev(f))(x), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(C.jacobian(f, x, mode="forward"), C.jacobian(f, x), rtol=1e-14)


def test_numerical_jacobian_of_linear_map_is_the_matrix(x64):
    M = np.arange(12.0).reshape(3, 4) - 5
    J = C.numerical_jacobian(lambda v: jnp.asarray(M) @ v, np.ones(4))
    np.testing.assert_allclose(J, M, atol=1e-9)


def test_numerical_hessian(x64):
    x = jnp.array([[0.3, -0.8], [1.1, 0.5]])
    H = C.numerical_hessian(quartic, x)
    assert H.shape == (2, 2, 2, 2)
    Hm = np.asarray(H).reshape(4, 4)
    np.testing.assert_array_equal(Hm, Hm.T)
    np.testing.assert_allclose(H, C.hessian(quartic, x), rtol=1e-6, atol=1e-6)


def test_hessian_of_known_function(x64):
    # f = x² y + y³ has H = [[2y, 2x], [2x, 6y]]
    f = lambda p: p[0] ** 2 * p[1] + p[1] ** 3  # noqa: E731
    expected = np.array([[2 * 2.0, 2 * 1.0], [2 * 1.0, 6 * 2.0]])
    np.testing.assert_allclose(C.hessian(f, [1.0, 2.0]), expected, rtol=1e-14)
    np.testing.assert_allclose(C.numerical_hessian(f, [1.0, 2.0]), expected, rtol=1e-6)


def test_hvp_without_forming_the_hessian(x64):
    # f = Σ x⁴/4 has H = diag(3x²): H v = 3 x² v, checked for n = 100 000
    x = jnp.linspace(-2.0, 2.0, 100_000)
    v = jnp.cos(x)
    np.testing.assert_allclose(C.hvp(lambda z: jnp.sum(z**4) / 4, x, v), 3 * x**2 * v, rtol=1e-12)
    small = jnp.array([0.2, -0.4, 0.9])
    w = jnp.array([1.0, 2.0, -1.0])
    np.testing.assert_allclose(C.hvp(quartic, small, w), C.hessian(quartic, small) @ w, rtol=1e-12)


# --- check_grad ------------------------------------------------------------------------


CHAPTER_FUNCTIONS = {
    "x^2 + 2xy + y^2": (lambda p: p[0] ** 2 + 2 * p[0] * p[1] + p[1] ** 2, [1.0, 2.0]),
    "sin(x^2 + y^2)": (lambda p: jnp.sin(p[0] ** 2 + p[1] ** 2), [1.0, 2.0]),
    "x^3 y^2 + 2xy - y^3": (
        lambda p: p[0] ** 3 * p[1] ** 2 + 2 * p[0] * p[1] - p[1] ** 3,
        [1.0, -1.0],
    ),
    "e^(x^2 + y^2)": (lambda p: jnp.exp(p[0] ** 2 + p[1] ** 2), [1.0, 1.0]),
}


@pytest.mark.parametrize("name", CHAPTER_FUNCTIONS)
def test_check_grad_passes_autodiff(name):
    f, x = CHAPTER_FUNCTIONS[name]
    report = C.check_grad(f, jnp.asarray(x))
    assert report.verdict == "ok", report
    assert report.max_error < 1e-8
    assert report.analytic.dtype == jnp.float64
    assert jnp.zeros(1).dtype == jnp.float32  # x64 was enabled only inside


def test_check_grad_catches_a_gradient_off_by_one_percent():
    f, x = CHAPTER_FUNCTIONS["sin(x^2 + y^2)"]
    wrong = C.check_grad(f, jnp.asarray(x), jax.jit(lambda p: 1.01 * jax.grad(f)(p)))
    assert wrong.verdict == "fail"
    assert wrong.max_error == pytest.approx(0.01 / 1.01, rel=1e-6)
    one = C.check_grad(
        f, jnp.asarray(x), jax.jit(lambda p: jax.grad(f)(p) * jnp.array([1.0, 1.01]))
    )
    assert one.verdict == "fail"


def test_check_grad_pytree_names_each_array():
    params = {"W": jnp.arange(6.0).reshape(2, 3) / 7, "b": jnp.array([0.1, -0.2, 0.3])}

    def loss(p):
        return jnp.sum(jnp.tanh(jnp.ones(2) @ p["W"] + p["b"]) ** 2)

    good = C.check_grad(loss, params)
    assert set(good.errors) == {"W", "b"}
    assert good.verdict == "ok"
    assert good.numerical["W"].shape == (2, 3)

    @jax.jit
    def bad_grad(p):
        g = jax.grad(loss)(p)
        return {"W": g["W"], "b": g["b"].at[1].multiply(1.01)}

    bad = C.check_grad(loss, params, bad_grad)
    assert bad.verdict == "fail"
    assert bad.errors["W"] < 1e-7 < 1e-3 < bad.errors["b"]


def test_check_grad_flags_a_float32_gradient():
    # a gradient computed in float32 carries relative errors of ~1e-6: "warn", not "ok"
    def f(p):
        return jnp.sum(jnp.sin(10 * p) * jnp.exp(p))

    report = C.check_grad(
        f, jnp.linspace(-1.0, 1.0, 20), jax.jit(lambda p: jax.grad(f)(p.astype(jnp.float32)))
    )
    assert report.verdict == "warn"
    assert 1e-7 <= report.max_error < 1e-4


def test_relative_error_and_verdict():
    assert float(C.relative_error(jnp.array([0.0, 2.0]), jnp.array([0.0, 2.0]))) == 0.0
    assert float(C.relative_error(jnp.array([1.0, 0.0]), jnp.array([1.0, 1e-3]))) == 1.0
    assert float(C.relative_error(jnp.array([1.0]), jnp.array([1.1]))) == pytest.approx(0.1 / 1.1)
    assert [C.verdict(e) for e in (0.0, 9e-8, 1e-7, 9e-5, 1e-4, 0.5)] == [
        "ok",
        "ok",
        "warn",
        "warn",
        "fail",
        "fail",
    ]


def test_gradient_field(tmp_path):
    fig = gradient_field(lambda p: p[0] ** 2 - p[1] ** 2, points=np.zeros((1, 2)), arrows=5)
    assert save(fig, tmp_path / "field.png").stat().st_size > 1000


# --- bad input -------------------------------------------------------------------------

NUMERICAL = [C.derivative, C.numerical_gradient, C.numerical_jacobian, C.numerical_hessian]


@pytest.mark.parametrize("fn", NUMERICAL + [C.gradient, C.hessian, C.check_grad])
def test_non_callable_f_is_a_type_error(fn):
    with pytest.raises(TypeError, match="f must be callable"):
        fn(3.0, 1.0)


@pytest.mark.parametrize("fn", NUMERICAL + [C.gradient, C.check_grad])
@pytest.mark.parametrize("x", [float("nan"), float("inf"), [1.0, -math.inf]])
def test_non_finite_x_is_a_value_error(fn, x):
    with pytest.raises(ValueError, match="x must be finite"):
        fn(lambda v: jnp.sum(v**2), x)


@pytest.mark.parametrize("fn", NUMERICAL)
@pytest.mark.parametrize("h", [0.0, -1e-3, float("nan"), float("inf"), "big"])
def test_bad_step_is_a_value_error(fn, h):
    with pytest.raises(ValueError, match="h must be a positive finite number"):
        fn(lambda v: jnp.sum(v**2), 1.0, h=h)


def test_unknown_method_and_mode_are_value_errors():
    with pytest.raises(ValueError, match="unknown method 'sideways'"):
        C.derivative(jnp.sin, 1.0, method="sideways")
    with pytest.raises(ValueError, match="unknown mode"):
        C.jacobian(jnp.sin, 1.0, mode="both")


def test_other_bad_input():
    with pytest.raises(ValueError, match="f must return a scalar"):
        C.numerical_gradient(lambda v: v * 2, jnp.ones(3))
    with pytest.raises(ValueError, match="v must have the shape of x"):
        C.hvp(quartic, jnp.ones(3), jnp.ones(2))
    with pytest.raises(TypeError, match="grad_fn must be callable"):
        C.check_grad(quartic, jnp.ones(3), grad_fn="jax.grad")
    with pytest.raises(TypeError, match="x must be real"):
        C.derivative(jnp.sin, 1j)
    with pytest.raises(ValueError, match="grad_fn must return the same structure"):
        C.check_grad(lambda p: p["a"] ** 2, {"a": 1.0}, lambda p: [2 * p["a"]])
