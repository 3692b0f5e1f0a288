"""The checks of the exercises that are not gradients: the learner's function against the
library.

Each `check_*` takes the learner's function(s), runs them in float64 on a few cases, and
returns a `Feedback`: "✓ …" or "✗ " and one line naming the first thing wrong, "not written
yet" for a stub. The references are the library's own: `calculus.difference`, `jax.jacfwd`,
`descent.gradient_descent`, `jaxcalc.activations`, `optim.adam`. Mistakes learners make are
recognised by the value they produce (`alternatives` of `diagnose`), the rest by
`diagnose`'s general patterns. The gradients are checked by `jaxcalc.check`: `gradients`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import descent, optim
from jaxcalc.activations import ACTIVATIONS
from jaxcalc.calculus import difference
from jaxcalc.course.feedback import Failure, as_array, call, checked, fail, judge, scalar

# --- derivatives ---------------------------------------------------------------------------


@checked("central_difference")
def check_central_difference(central_difference: Callable) -> str:
    """central_difference(f, x, h) against the library's stencil at the same h."""
    cases = (
        ("sin", jnp.sin, 1.0, 1e-3),
        ("exp", jnp.exp, 2.0, 1e-2),
        ("x³", lambda x: x**3, -1.5, 0.1),
    )
    for label, f, x, h in cases:
        name = f"central_difference({label}, {x:g}, {h:g})"
        got = scalar(name, call(central_difference, f, x, h, name="central_difference"))
        forward, backward, central = (
            difference(f, jnp.float64(x), h, method)
            for method in ("forward", "backward", "central")
        )
        phrases = {
            "is the forward difference (f(x + h) − f(x)) / h: step to both sides of x": forward,
            "is the backward difference (f(x) − f(x − h)) / h: step to both sides of x": backward,
            "divides by h, not 2h: x + h and x − h are 2h apart": 2 * central,
        }
        judge(name, got, central, **phrases)
    return "central_difference: right for sin, exp and x³"


# --- Jacobians, gradient descent --------------------------------------------------------------


@checked("jacobian")
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
        judge(
            name, got, want, **{"uses forward differences: step to both sides, x ± h e_j": forward}
        )
    return "jacobian: right for f: R3 → R2 and R2 → R3"


@checked("gradient_descent")
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
        judge(name, got, want, **phrases)
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


@checked("activation derivatives")
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
        judge(label, got, ACTIVATIONS[name].grad(_Z), **_activation_mistakes(name, _Z))
    return "sigmoid_prime, tanh_prime, relu_prime: right on [−6, 6], z = 0 included"


# --- an optimiser's update -----------------------------------------------------------------------


def _step_array(name: str, value, t: int) -> np.ndarray:
    """`as_array` of an Adam output after step t; a NaN at step 1 suggests t counted from 0."""
    try:
        return as_array(f"{name} after step {t}", value, (3,))
    except Failure as f:  # 1 − β₁⁰ = 0 in the bias correction
        hint = "; is t counted from 1?" if t == 1 and "NaN" in f.feedback.message else ""
        raise fail(f.feedback.message + hint) from None


@checked("adam_step")
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
        judge(f"m after step {t}", _step_array("m", out[1], t), mu, **m_mistakes)
        v_mistakes = {
            "averages g, not g²: v tracks the squared gradient": b2 * v + (1 - b2) * g,
            "swaps β₂ and 1 − β₂: v = β₂ v + (1 − β₂) g²": (1 - b2) * v + b2 * g**2,
        }
        judge(f"v after step {t}", _step_array("v", out[2], t), nu, **v_mistakes)
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
        judge(
            f"the update (new params − params) at step {t}", got_update, updates, **update_mistakes
        )
        p = optim.apply_updates(p, updates)
    return "adam_step: params, m and v agree with jaxcalc.optim.adam (and optax) for 5 steps"
