"""The course's exercise checks: the solutions pass, stubs say "not written yet", a typical
mistake planted in each exercise is named, bad answers get one line, never a traceback."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO

from jaxcalc import course
from jaxcalc.activations import sigmoid, softmax
from jaxcalc.course import solutions as sol
from jaxcalc.course.diagnosis import diagnose

BY_KEY = {ex.key: ex for ex in course.EXERCISES}


@pytest.mark.parametrize("key", BY_KEY)
def test_the_reference_solutions_pass(key):
    ex = BY_KEY[key]
    feedback = ex.check(*ex.solutions)
    assert feedback.ok, feedback.message
    assert str(feedback).startswith("✓ ")


@pytest.mark.parametrize("key", BY_KEY)
def test_an_empty_stub_is_not_written_yet(key):
    ex = BY_KEY[key]
    namespace: dict = {}
    exec(course.stub(ex), namespace)
    feedback = ex.check(*(namespace[fn.__name__] for fn in ex.solutions))
    assert not feedback.ok and not feedback.written
    assert feedback.message.endswith("not written yet")
    assert "\n" not in str(feedback)

    def returns_none(*args, **kwargs):
        pass  # a stub with `...` or `pass` for a body

    feedback = ex.check(*(returns_none for _ in ex.solutions))
    assert not feedback.written and "not written yet" in feedback.message


# --- a typical mistake in each exercise, and the phrase its hint must contain ----------------


def forward_difference(f, x, h):
    return (f(x + h) - f(x)) / h


def over_h(f, x, h):
    return (f(x + h) - f(x - h)) / h


def flipped_difference(f, x, h):
    return (f(x - h) - f(x + h)) / (2 * h)


def swapped_gradient(p):
    return sol.gradient_f(p)[::-1]


def gradient_missing_term(p):
    x, y = p[0], p[1]
    return jnp.array([3 * x**2 * y**2 + 2 * y, 2 * x**3 * y - 3 * y**2])  # 2x dropped


def gradient_as_tuple(p):
    return tuple(sol.gradient_f(p))


def chain_without_sigma_prime(x, w1, w2, target):
    a1 = sigmoid(w1 * x)
    dL_dy = w2 * a1 - target
    return dL_dy * w2 * x, dL_dy * a1


def chain_with_sigma_for_sigma_prime(x, w1, w2, target):
    a1 = sigmoid(w1 * x)
    dL_dy = w2 * a1 - target
    return dL_dy * w2 * a1 * x, dL_dy * a1


def chain_flipped(x, w1, w2, target):
    a, b = sol.backprop_example(x, w1, w2, target)
    return -a, -b


def jacobian_transposed(f, x, h):
    return sol.jacobian(f, x, h).T


def jacobian_forward(f, x, h):
    return jnp.stack([(f(x + h * e) - f(x)) / h for e in jnp.eye(x.shape[0])], axis=1)


def jacobian_as_list(f, x, h):
    return [list(row) for row in sol.jacobian(f, x, h)]


def descent_without_x0(grad, x0, learning_rate, steps):
    return sol.gradient_descent(grad, x0, learning_rate, steps)[1:]


def descent_uphill(grad, x0, learning_rate, steps):
    return sol.gradient_descent(lambda x: -grad(x), x0, learning_rate, steps)


def descent_last_point(grad, x0, learning_rate, steps):
    return sol.gradient_descent(grad, x0, learning_rate, steps)[-1]


def descent_without_rate(grad, x0, learning_rate, steps):
    return sol.gradient_descent(grad, x0, 1.0, steps)


def sigmoid_itself(z):
    return sigmoid(z)


def tanh_unsquared(z):
    return 1 - jnp.tanh(z)


def relu_one_at_zero(z):
    return jnp.where(z >= 0, 1.0, 0.0)


def relu_with_python_if(z):
    return 1.0 if z > 0 else 0.0


def backward_with(mistake: str):
    """`solutions.backward` with one line changed."""

    def backward(params, x, y):
        a1 = sigmoid(x @ params["W1"] + params["b1"])
        a2 = softmax(a1 @ params["W2"] + params["b2"])
        n = x.shape[0]
        dz2 = (a2 - y) if mistake == "no 1/n" else (a2 - y) / n
        dW2 = a1.T @ dz2
        db2 = dz2.mean(axis=0) if mistake == "mean" else dz2.sum(axis=0)
        da1 = dz2 @ params["W2"].T
        dz1 = da1 if mistake == "no sigma'" else da1 * a1 * (1 - a1)
        dW1 = {"sign": -(x.T @ dz1), "transpose": dz1.T @ x}.get(mistake, x.T @ dz1)
        db1 = {"axis": dz1.sum(axis=1), "keepdims": dz1.sum(axis=0, keepdims=True)}.get(
            mistake, dz1.sum(axis=0)
        )
        if mistake == "tuple":
            return dW1, db1, dW2, db2
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    return backward


def adam_with(mistake: str):
    """`solutions.adam_step` with one line changed."""

    def adam_step(params, grads, m, v, t, learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        m = b1 * m + (1 - b1) * grads
        v = b2 * v + (1 - b2) * (grads if mistake == "no square" else grads**2)
        k = t - 1 if mistake == "t from 0" else t
        m_hat, v_hat = (
            (m, v) if mistake == "no bias correction" else (m / (1 - b1**k), v / (1 - b2**k))
        )
        root = jnp.sqrt(v_hat + eps) if mistake == "eps inside" else jnp.sqrt(v_hat) + eps
        step = learning_rate * m_hat / root
        return (params + step if mistake == "uphill" else params - step), m, v

    return adam_step


def dense_with(mistake: str):
    """`solutions.dense_bwd` with one line changed."""

    def dense_bwd(res, g):
        x, W, y = res
        dz = {"no tanh'": g, "1 - y": g * (1 - y)}.get(mistake, g * (1 - y**2))
        dx = -(dz @ W.T) if mistake == "sign" else dz @ W.T
        dW = {"transpose": dz.T @ x, "factor": 2 * x.T @ dz}.get(mistake, x.T @ dz)
        db = dz.sum(axis=1) if mistake == "axis" else dz.sum(axis=0)
        return (dx, dW) if mistake == "pair" else (dx, dW, db)

    return dense_bwd


def backward_one_entry_off(params, x, y):
    grads = sol.backward(params, x, y)
    return {**grads, "W2": grads["W2"].at[1, 0].add(0.5)}


MISTAKES = [
    ("stencil", [forward_difference], "is the forward difference"),
    ("stencil", [over_h], "divides by h, not 2h"),
    ("stencil", [flipped_difference], "has the wrong sign"),
    ("gradient", [swapped_gradient], "∂f/∂x and ∂f/∂y swapped"),
    ("gradient", [gradient_missing_term], "∂f/∂y (entry 1) at (1, -1) is wrong"),
    ("gradient", [gradient_as_tuple], "is a Python tuple"),
    (
        "chain_rule",
        [chain_without_sigma_prime],
        "dL/dw1 at x = 1, w1 = 0.5, w2 = 2, target = 1 misses the factor σ'",
    ),
    ("chain_rule", [chain_with_sigma_for_sigma_prime], "uses σ(z1) where σ'(z1)"),
    ("chain_rule", [chain_flipped], "dL/dw2 at x = 1, w1 = 0.5, w2 = 2, target = 1 has the wrong"),
    (
        "chain_rule",
        [lambda x, w1, w2, t: sol.backprop_example(x, w1, w2, t)[0]],
        "must return the pair",
    ),
    ("jacobian", [jacobian_transposed], "has shape (3, 2) where (2, 3) is expected: transposed?"),
    ("jacobian", [jacobian_forward], "uses forward differences"),
    ("jacobian", [jacobian_as_list], "is a Python list"),
    ("descent", [descent_without_x0], "20 points where 21 are expected: put x0 first"),
    ("descent", [descent_uphill], "moves uphill"),
    ("descent", [descent_last_point], "only the last point"),
    ("descent", [descent_without_rate], "ignores the learning rate"),
    (
        "activations",
        [sigmoid_itself, sol.tanh_prime, sol.relu_prime],
        "sigmoid_prime returns sigmoid(z) itself",
    ),
    (
        "activations",
        [sol.sigmoid_prime, tanh_unsquared, sol.relu_prime],
        "tanh_prime is 1 − tanh(z): square it",
    ),
    (
        "activations",
        [sol.sigmoid_prime, sol.tanh_prime, relu_one_at_zero],
        "relu_prime is 1 at z = 0",
    ),
    ("activations", [sol.sigmoid_prime, sol.tanh_prime, relu_with_python_if], "relu_prime raised"),
    ("backward", [backward_with("sign")], "dW1 has the wrong sign"),
    (
        "backward",
        [backward_with("axis")],
        "db1 has shape (5,) where (3,) is expected: summed over the wrong",
    ),
    (
        "backward",
        [backward_with("keepdims")],
        "db1 has shape (1, 3) where (3,) is expected: keeps the batch",
    ),
    (
        "backward",
        [backward_with("transpose")],
        "dW1 has shape (3, 4) where (4, 3) is expected: transposed?",
    ),
    ("backward", [backward_with("no sigma'")], "dW1 misses the factor σ'(z1)"),
    ("backward", [backward_with("no 1/n")], "dW2 is n = 5 times the right value"),
    ("backward", [backward_with("mean")], "db2 is n = 5 times too small"),
    ("backward", [backward_with("tuple")], "return the dict"),
    (
        "backward",
        [backward_one_entry_off],
        "dW2 is wrong in 1 of 6 entries, the worst at index (1, 0): ",
    ),
    ("custom_vjp", [dense_with("no tanh'")], "dW misses tanh'(z) = 1 − y²"),
    ("custom_vjp", [dense_with("1 - y")], "uses 1 − y where tanh'(z) = 1 − y² belongs"),
    ("custom_vjp", [dense_with("sign")], "dx has the wrong sign"),
    ("custom_vjp", [dense_with("factor")], "dW is off by a factor 2"),
    ("custom_vjp", [dense_with("transpose")], "dW has shape (3, 4) where (4, 3) is expected"),
    ("custom_vjp", [dense_with("axis")], "db has shape (6,) where (3,) is expected: summed over"),
    ("custom_vjp", [dense_with("pair")], "must return the triple (dx, dW, db)"),
    ("adam", [adam_with("no bias correction")], "skips the bias correction"),
    ("adam", [adam_with("eps inside")], "puts eps inside the square root"),
    ("adam", [adam_with("no square")], "v after step 1 averages g, not g²"),
    ("adam", [adam_with("t from 0")], "params after step 1 is NaN at index (0,)"),
    ("adam", [adam_with("t from 0")], "is t counted from 1?"),
    ("adam", [adam_with("uphill")], "the update (new params − params) at step 1 has the wrong"),
]


@pytest.mark.parametrize(("key", "fns", "phrase"), MISTAKES, ids=[m[2][:40] for m in MISTAKES])
def test_a_planted_mistake_is_named(key, fns, phrase):
    feedback = BY_KEY[key].check(*fns)
    assert not feedback.ok and feedback.written
    assert phrase in feedback.message, feedback.message
    assert "\n" not in feedback.message


def test_every_exercise_has_a_planted_mistake():
    assert {key for key, *_ in MISTAKES} == set(BY_KEY)


# --- bad answers: one line each, never a traceback ---------------------------------------------


def raises(*args, **kwargs):
    return 1 / 0


BAD = [
    (raises, "raised ZeroDivisionError: division by zero"),
    (lambda *a: "0.5", "is a str"),
    (lambda *a: np.nan, "is NaN"),
    (lambda *a: {"answer": 1}, ""),
    (lambda *a: object(), ""),
    (None, "is a NoneType, not a function"),
]


@pytest.mark.parametrize("key", BY_KEY)
@pytest.mark.parametrize(("fn", "phrase"), BAD)
def test_bad_answers_get_one_line(key, fn, phrase):
    ex = BY_KEY[key]
    feedback = ex.check(*(fn for _ in ex.solutions))
    assert not feedback.ok and feedback.message and "\n" not in feedback.message
    assert "Traceback" not in feedback.message
    if phrase.startswith(("raised", "is a None")) or key == "stencil":  # stencil: a number
        assert phrase in feedback.message, feedback.message


def test_a_nan_entry_is_located():
    def nan_in_b1(params, x, y):
        grads = sol.backward(params, x, y)
        return {**grads, "b1": grads["b1"].at[2].set(jnp.nan)}

    feedback = course.check_backward(nan_in_b1)
    assert (
        feedback.message == "db1 is NaN at index (2,): look for a division by zero or an overflow"
    )


# --- the diagnosis on its own ---------------------------------------------------------------------


def test_diagnose_names_each_pattern():
    want = np.array([[1.0, -2.0], [0.5, 3.0]])
    assert diagnose("g", want.copy(), want) is None
    assert diagnose("g", -want, want) == "g has the wrong sign"
    assert diagnose("g", np.zeros_like(want), want) == "g is zero"
    assert diagnose("g", 2.5 * want, want) == "g is off by a factor 5/2"
    assert diagnose("g", want.T, want) == "g is transposed"
    a = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 4.0], [0.25, 1.5, 2.0]])
    assert diagnose("db", a.sum(axis=1), a.sum(axis=0)) == "db is summed over the wrong axis"
    assert diagnose("g", want + 1, want, alternatives={"adds one": want + 1}) == "g adds one"
    off = want.copy()
    off[1, 0] += 1e-4
    message = diagnose("g", off, want)
    assert message.startswith("g is close but not equal at index (1, 0): 0.5001 where 0.5 is")
    assert diagnose("x", np.float64(2.0), np.float64(3.0)).startswith("x is wrong: 2 where 3 is")
    assert diagnose("x", np.float64(-3.0), np.float64(3.0)) == "x has the wrong sign"


# --- the solutions page ------------------------------------------------------------------------


def test_solutions_markdown_holds_every_exercise_and_is_up_to_date():
    text = course.solutions_markdown()
    for ex in course.EXERCISES:
        assert f"## {ex.title}" in text
        for fn in ex.solutions:
            assert f"def {fn.__name__}(" in text
    assert (REPO / "docs" / "solutions.md").read_text() == text, (
        "docs/solutions.md is stale: python -c 'from jaxcalc import course; "
        'print(course.solutions_markdown(), end="")\' > docs/solutions.md'
    )


def test_check_by_key_finds_the_learners_functions():
    namespace = {"course": course, "central_difference": sol.central_difference}
    exec("feedback = course.check('stencil')", namespace)  # the caller's globals, as a cell's
    assert namespace["feedback"].ok
    assert course.check("stencil", {"central_difference": forward_difference}).written
    missing = course.check("activations", {"sigmoid_prime": sol.sigmoid_prime})
    assert not missing.ok and not missing.written
    assert (
        str(missing) == "○ tanh_prime, relu_prime: not written yet (run the cell that defines it)"
    )
    unknown = course.check("nope", {})
    assert not unknown.ok and unknown.message.startswith("no exercise 'nope': the exercises are")
