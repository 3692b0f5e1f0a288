"""One check per "your turn" exercise: the learner's function against the library.

Each `check_*` takes the learner's function(s), runs them in float64 on a few cases, and
returns a `Feedback`: "✓ …" or "✗ " and one line naming the first thing wrong, "not written
yet" for a stub. The references are the library's own: `calculus.difference`, `jax.grad`
and `jax.jacfwd`, `descent.gradient_descent`, `jaxcalc.activations`, `mlp.loss_fn`,
`optim.adam`. Mistakes learners make are recognised by the value they produce
(`alternatives` of `diagnose`), the rest by `diagnose`'s general patterns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import descent, mlp, optim
from jaxcalc.activations import ACTIVATIONS, sigmoid
from jaxcalc.calculus import difference
from jaxcalc.course.diagnosis import diagnose
from jaxcalc.course.feedback import Failure, Feedback, as_array, call, fail
from jaxcalc.exercises import exercise_2_f


def _checked(title: str) -> Callable:
    """Run a check body in float64 (rank promotion allowed: a learner broadcasts freely);
    its Failure, or any error of its own, becomes one line."""

    def wrap(body: Callable[..., str]) -> Callable[..., Feedback]:
        @functools.wraps(body)
        def check(*fns) -> Feedback:
            try:
                with jax.enable_x64(True), jax.numpy_rank_promotion("allow"):
                    return Feedback(True, body(*fns))
            except Failure as f:
                return f.feedback
            except Exception as e:  # noqa: BLE001 - an answer this check cannot read
                return Feedback(False, f"{title}: could not check the answer ({type(e).__name__})")

        return check

    return wrap


def _judge(name: str, got, want, **alternatives) -> None:
    message = diagnose(name, got, np.asarray(want, np.float64), alternatives=alternatives)
    if message:
        raise fail(message)


def _scalar(name: str, value) -> np.ndarray:
    return as_array(name, value, (), shape_hints={(1,): "return a number, not a 1-entry array"})


# --- derivatives ---------------------------------------------------------------------------


@_checked("central_difference")
def check_central_difference(central_difference: Callable) -> str:
    """central_difference(f, x, h) against the library's stencil at the same h."""
    cases = (
        ("sin", jnp.sin, 1.0, 1e-3),
        ("exp", jnp.exp, 2.0, 1e-2),
        ("x³", lambda x: x**3, -1.5, 0.1),
    )
    for label, f, x, h in cases:
        name = f"central_difference({label}, {x:g}, {h:g})"
        got = _scalar(name, call(central_difference, f, x, h, name="central_difference"))
        forward, backward, central = (
            difference(f, jnp.float64(x), h, method)
            for method in ("forward", "backward", "central")
        )
        phrases = {
            "is the forward difference (f(x + h) − f(x)) / h: step to both sides of x": forward,
            "is the backward difference (f(x) − f(x − h)) / h: step to both sides of x": backward,
            "divides by h, not 2h: x + h and x − h are 2h apart": 2 * central,
        }
        _judge(name, got, central, **phrases)
    return "central_difference: right for sin, exp and x³"


@_checked("gradient_f")
def check_gradient_f(gradient_f: Callable) -> str:
    """gradient_f(p) for f(x, y) = x³y² + 2xy − y³ against `jax.grad` at three points."""
    for point in ((1.0, -1.0), (0.5, 2.0), (-1.5, 0.3)):
        at = f"({point[0]:g}, {point[1]:g})"
        got = as_array(
            f"gradient_f{at}",
            call(gradient_f, jnp.array(point), name="gradient_f"),
            (2,),
            shape_hints={(): "a single number: return both partial derivatives, (∂f/∂x, ∂f/∂y)"},
        )
        want = np.asarray(jax.grad(exercise_2_f)(jnp.array(point)))
        if np.allclose(got, want[::-1]) and not np.allclose(got, want):
            raise fail(f"gradient_f{at} has ∂f/∂x and ∂f/∂y swapped: entry 0 is ∂f/∂x")
        for i, label in enumerate(("∂f/∂x (entry 0)", "∂f/∂y (entry 1)")):
            _judge(f"{label} at {at}", got[i], want[i])
    return "gradient_f: both partial derivatives right at three points"


@_checked("backprop_example")
def check_backprop_example(backprop_example: Callable) -> str:
    """backprop_example(x, w1, w2, target) -> (dL/dw1, dL/dw2) against `jax.grad`."""

    def loss(x, w1, w2, t):
        return 0.5 * (w2 * sigmoid(w1 * x) - t) ** 2

    for x, w1, w2, t in ((1.0, 0.5, 2.0, 1.0), (-0.7, 1.3, -0.4, 0.25), (2.0, -0.3, 1.5, -1.0)):
        out = call(backprop_example, x, w1, w2, t, name="backprop_example")
        if not isinstance(out, tuple | list) or len(out) != 2:
            raise fail("backprop_example must return the pair (dL_dw1, dL_dw2)")
        at = f"at x = {x:g}, w1 = {w1:g}, w2 = {w2:g}, target = {t:g}"
        dw1, dw2 = (_scalar(f"{n} {at}", v) for n, v in zip(("dL/dw1", "dL/dw2"), out, strict=True))
        want1, want2 = jax.grad(loss, argnums=(1, 2))(x, w1, w2, t)
        a1 = sigmoid(jnp.float64(w1 * x))
        dy = w2 * a1 - t
        _judge(f"dL/dw2 {at}", dw2, want2, **{"misses the factor a1 = σ(w1 x)": dy})
        _judge(
            f"dL/dw1 {at}",
            dw1,
            want1,
            **{
                "misses the factor σ'(z1) = a1 (1 − a1)": dy * w2 * x,
                "uses σ(z1) where σ'(z1) = a1 (1 − a1) belongs": dy * w2 * a1 * x,
                "misses the last factor dz1/dw1 = x": dy * w2 * a1 * (1 - a1),
            },
        )
    return "backprop_example: dL/dw1 and dL/dw2 right in three cases"


# --- Jacobians, gradient descent --------------------------------------------------------------


@_checked("jacobian")
def check_jacobian(jacobian: Callable) -> str:
    """jacobian(f, x, h) -> (m, n) against `jax.jacfwd`, for f: R³ → R² and R² → R³."""
    cases = (
        (lambda x: jnp.stack([x[0] * x[1], jnp.sin(x[2]) + x[0] ** 2]), [1.0, 2.0, 0.5]),
        (lambda x: jnp.stack([x[0] ** 2, x[0] * x[1], jnp.exp(x[1])]), [0.3, -1.2]),
    )
    h = 1e-5
    for f, point in cases:
        x = jnp.array(point)
        want = np.asarray(jax.jacfwd(f)(x))
        m, n = want.shape
        name = f"jacobian of f: R{n} → R{m}"
        got = as_array(
            name,
            call(jacobian, f, x, h, name="jacobian"),
            (m, n),
            shape_hints={
                (n, m): "transposed? row i holds the derivatives of f_i, column j those in x_j"
            },
        )
        forward = np.stack([(f(x + h * e) - f(x)) / h for e in jnp.eye(n)], axis=1)
        _judge(
            name, got, want, **{"uses forward differences: step to both sides, x ± h e_j": forward}
        )
    return "jacobian: right for f: R3 → R2 and R2 → R3"


@_checked("gradient_descent")
def check_gradient_descent(gradient_descent: Callable) -> str:
    """gradient_descent(grad, x0, learning_rate, steps) against `descent.gradient_descent`."""
    cases = (
        ("f(x) = (x − 3)²", lambda x: (x - 3.0) ** 2, jnp.float64(0.0), 0.1, 20),
        ("a 2-D bowl", descent.bowl(10.0, math.pi / 6), jnp.array([-4.0, 2.0]), 0.1, 15),
    )
    for label, f, x0, lr, steps in cases:
        name = f"gradient_descent on {label}"
        grad = jax.grad(f)
        want = np.asarray(descent.gradient_descent(f, x0, lr, steps))
        got = as_array(
            name,
            call(gradient_descent, grad, x0, lr, steps, name="gradient_descent"),
            want.shape,
            shape_hints={
                (steps, *x0.shape): f"{steps} points where {steps + 1} are expected: put x0 first",
                x0.shape: "only the last point: return the whole trajectory, x0 first",
            },
        )

        uphill = descent.gradient_descent(lambda x, f=f: -f(x), x0, lr, steps)  # x + α ∇f
        phrases = {
            "moves uphill: step against the gradient, x − α ∇f(x)": uphill,
            "ignores the learning rate α": descent.gradient_descent(f, x0, 1.0, steps),
        }
        _judge(name, got, want, **phrases)
    return "gradient_descent: the same trajectory as the library on two problems"


# --- activations -------------------------------------------------------------------------------

_Z = jnp.linspace(-6.0, 6.0, 25)  # includes 0


def _activation_mistakes(name: str, z: jax.Array) -> dict[str, jax.Array]:
    f = ACTIVATIONS[name].f(z)
    own = {f"returns {name}(z) itself, not its derivative": f}
    if name == "sigmoid":
        own["is σ(z)(1 + σ(z)): the second factor is 1 − σ(z)"] = f * (1 + f)
    if name == "tanh":
        own["is 1 − tanh(z): square it, 1 − tanh(z)²"] = 1 - f
    if name == "relu":
        own["is 1 at z = 0: take relu'(0) = 0, as jax.nn.relu and PyTorch do"] = (z >= 0) * 1.0
    return own


@_checked("activation derivatives")
def check_activation_derivatives(
    sigmoid_prime: Callable, tanh_prime: Callable, relu_prime: Callable
) -> str:
    """Each f'(z) on 25 points from −6 to 6 (0 included) against `jaxcalc.activations`."""
    for name, fn in (("sigmoid", sigmoid_prime), ("tanh", tanh_prime), ("relu", relu_prime)):
        label = f"{name}_prime"
        got = as_array(
            label,
            call(fn, _Z, name=label),
            _Z.shape,
            shape_hints={(): "one number for an array z: use jnp functions, element-wise"},
        )
        _judge(label, got, ACTIVATIONS[name].grad(_Z), **_activation_mistakes(name, _Z))
    return "sigmoid_prime, tanh_prime, relu_prime: right on [−6, 6], z = 0 included"


# --- the 2-layer network's backward pass -------------------------------------------------------


@_checked("backward")
def check_backward(backward: Callable) -> str:
    """backward(params, x, y) -> {"W1", "b1", "W2", "b2"} against `jax.grad` of `mlp.loss_fn`
    (sigmoid hidden layer, softmax cross-entropy), on a batch of n = 5, sizes 4-3-2."""
    key = jax.random.key(7)
    n, sizes = 5, (4, 3, 2)
    params = mlp.init_params(key, sizes)
    x = jax.random.normal(jax.random.fold_in(key, 1), (n, sizes[0]))
    y = jax.nn.one_hot(jnp.array([0, 1, 1, 0, 1]), sizes[2])
    want = jax.grad(mlp.loss_fn)(params, x, y, activation="sigmoid", loss="cross_entropy")
    out = call(backward, params, x, y, name="backward")
    if not isinstance(out, dict):
        raise fail(
            f"backward returns a {type(out).__name__}: return the dict "
            '{"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}'
        )
    missing = [k for k in mlp.PARAM_NAMES if k not in out]
    if missing:
        raise fail(f"backward's dict has no {', '.join(map(repr, missing))}")

    a1 = sigmoid(x @ params["W1"] + params["b1"])
    dz2 = (jax.nn.softmax(a1 @ params["W2"] + params["b2"]) - y) / n
    da1 = dz2 @ params["W2"].T
    no_prime = {"W1": x.T @ da1, "b1": da1.sum(0)}  # dz1 = da1, without σ'
    sigma_not_prime = {"W1": x.T @ (da1 * a1), "b1": (da1 * a1).sum(0)}
    for k in ("W2", "b2", "W1", "b1"):  # in the order the backward pass makes them
        name, size = f"d{k}", want[k].shape[0]
        mistakes = {
            f"is n = {n} times the right value: divide dL/dz2 by the batch size n once": n
            * want[k],
        }
        if k.startswith("b"):
            mistakes[
                f"is n = {n} times too small: sum over the batch (dL/dz2 already holds 1/n)"
            ] = want[k] / n
        else:
            mistakes["is divided by the batch size n twice"] = want[k] / n
        if k in no_prime:
            mistakes["misses the factor σ'(z1) = a1 (1 − a1)"] = no_prime[k]
            mistakes["uses σ(z1) = a1 where σ'(z1) = a1 (1 − a1) belongs"] = sigma_not_prime[k]
        got = as_array(
            name,
            out[k],
            want[k].shape,
            shape_hints={
                (n,): f"summed over the wrong axis: sum over the batch, axis 0, to get ({size},)",
                (1, size): "keeps the batch axis: sum over axis 0 without keepdims",
            },
        )
        _judge(name, got, want[k], **mistakes)
    return "backward: dW2, db2, dW1 and db1 all right"


# --- an optimiser's update -----------------------------------------------------------------------


def _step_array(name: str, value, t: int) -> np.ndarray:
    """`as_array` of an Adam output after step t; a NaN at step 1 suggests t counted from 0."""
    try:
        return as_array(f"{name} after step {t}", value, (3,))
    except Failure as f:  # 1 − β₁⁰ = 0 in the bias correction
        hint = "; is t counted from 1?" if t == 1 and "NaN" in f.feedback.message else ""
        raise fail(f.feedback.message + hint) from None


@_checked("adam_step")
def check_adam_step(adam_step: Callable) -> str:
    """Five steps of adam_step(params, grads, m, v, t, learning_rate, b1, b2, eps) against
    `jaxcalc.optim.adam` (equal to optax's to the bit): m, v and the update after each. Each
    step starts from the reference's params, m and v, so one mistake is named once."""
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    scales = np.array([[1.0], [0.1], [3.0], [1.0], [0.5]])  # gradients of changing size
    grads = jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)) * scales)
    opt = optim.adam(lr, b1, b2, eps)
    p = jnp.array([0.5, -1.0, 2.0])
    state = opt.init(p)
    for t, g in enumerate(grads, start=1):
        m, v = state[0].mu, state[0].nu
        updates, state = opt.update(g, state)
        mu, nu = state[0].mu, state[0].nu
        out = call(adam_step, p, g, m, v, t, lr, b1, b2, eps, name="adam_step")
        if not isinstance(out, tuple | list) or len(out) != 3:
            raise fail("adam_step must return the triple (params, m, v)")
        m_mistakes = {"swaps β₁ and 1 − β₁: m = β₁ m + (1 − β₁) g": (1 - b1) * m + b1 * g}
        _judge(f"m after step {t}", _step_array("m", out[1], t), mu, **m_mistakes)
        v_mistakes = {
            "averages g, not g²: v tracks the squared gradient": b2 * v + (1 - b2) * g,
            "swaps β₂ and 1 − β₂: v = β₂ v + (1 − β₂) g²": (1 - b2) * v + b2 * g**2,
        }
        _judge(f"v after step {t}", _step_array("v", out[2], t), nu, **v_mistakes)
        m_hat, v_hat = mu / (1 - b1**t), nu / (1 - b2**t)
        update_mistakes = {
            "skips the bias correction m / (1 − β₁ᵗ), v / (1 − β₂ᵗ)": -lr
            * mu
            / (jnp.sqrt(nu) + eps),
            "puts eps inside the square root; Adam adds it outside": -lr
            * m_hat
            / jnp.sqrt(v_hat + eps),
        }
        got_update = _step_array("params", out[0], t) - np.asarray(p)
        _judge(
            f"the update (new params − params) at step {t}", got_update, updates, **update_mistakes
        )
        p = optim.apply_updates(p, updates)
    return "adam_step: params, m and v agree with jaxcalc.optim.adam (and optax) for 5 steps"
