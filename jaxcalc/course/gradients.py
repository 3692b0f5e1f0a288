"""The checks of the exercises that compute gradients, judged by the gradient checker.

Each check first reads the learner's answer (`call`, `as_array`: a stub, an exception, a
Python list, the wrong shape or a NaN each get their line), then hands the learner's
gradient to `jaxcalc.check.check_grads` as `grad_fn` (or, for the `custom_vjp` exercise, the
rule itself), with the plain function as the exact reference. The verdict is the
checker's; a failed leaf is named by the mistake the exercise knows (`mistakes`: the value
that mistake gives, by the phrase that names it), else by the checker's diagnosis: "dW1 has
the wrong sign", "db1 is summed over the wrong axis", "dW2 is off by a factor 5".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import check, mlp
from jaxcalc.activations import sigmoid
from jaxcalc.course.diagnosis import close, name_row
from jaxcalc.course.feedback import as_array, call, checked, fail, judge, scalar
from jaxcalc.exercises import exercise_2_f


def _judge_gradient(
    f: Callable,
    args: tuple,
    *,
    reference: Callable,
    grad_fn: Callable | None = None,
    names: Mapping[str, str],
    got: Mapping[str, np.ndarray],
    mistakes: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    title: str,
) -> None:
    """`check.check_grads(f, args, grad_fn=grad_fn, reference=reference)`; unless it says
    "ok", a `Failure` naming the first failed leaf in the order of `names` (leaf -> "dW1")."""
    report = check.check_grads(f, args, grad_fn=grad_fn, reference=reference, mode="full")
    if report.verdict == "ok":
        return
    failed = {}
    for row in report.failures:
        failed.setdefault(row.leaf, row)
    for leaf, name in names.items():
        if leaf in failed:
            for phrase, value in (mistakes or {}).get(leaf, {}).items():
                if close(got[leaf], np.asarray(value, np.float64)):
                    raise fail(f"{name} {phrase}")
            raise fail(name_row(failed[leaf], name))
    raise fail(f"{title}: the gradient checker says {report.summary()}")


@checked("gradient_f")
def check_gradient_f(gradient_f: Callable) -> str:
    """gradient_f(p) for f(x, y) = x³y² + 2xy − y³ by `jaxcalc.check` at three points."""
    for point in ((1.0, -1.0), (0.5, 2.0), (-1.5, 0.3)):
        at = f"({point[0]:g}, {point[1]:g})"
        p = jnp.array(point)
        got = as_array(
            f"gradient_f{at}",
            call(gradient_f, p, name="gradient_f"),
            (2,),
            shape_hints={(): "a single number: return both partial derivatives, (∂f/∂x, ∂f/∂y)"},
        )
        report = check.check_grads(exercise_2_f, (p,), grad_fn=gradient_f, reference=exercise_2_f)
        if report.verdict == "ok":
            continue
        want = np.asarray(jax.grad(exercise_2_f)(p))
        if np.allclose(got, want[::-1]) and not np.allclose(got, want):
            raise fail(f"gradient_f{at} has ∂f/∂x and ∂f/∂y swapped: entry 0 is ∂f/∂x")
        for i, label in enumerate(("∂f/∂x (entry 0)", "∂f/∂y (entry 1)")):
            judge(f"{label} at {at}", got[i], want[i])
        raise fail(f"gradient_f{at}: the gradient checker says {report.summary()}")
    return "gradient_f: both partial derivatives right at three points (jaxcalc.check)"


@checked("backprop_example")
def check_backprop_example(backprop_example: Callable) -> str:
    """backprop_example(x, w1, w2, target) -> (dL/dw1, dL/dw2), by `jaxcalc.check`."""
    for x, w1, w2, t in ((1.0, 0.5, 2.0, 1.0), (-0.7, 1.3, -0.4, 0.25), (2.0, -0.3, 1.5, -1.0)):
        out = call(backprop_example, x, w1, w2, t, name="backprop_example")
        if not isinstance(out, tuple | list) or len(out) != 2:
            raise fail("backprop_example must return the pair (dL_dw1, dL_dw2)")
        at = f"at x = {x:g}, w1 = {w1:g}, w2 = {w2:g}, target = {t:g}"
        dw1, dw2 = (scalar(f"{n} {at}", v) for n, v in zip(("dL/dw1", "dL/dw2"), out, strict=True))

        def loss(w1, w2, x=x, t=t):
            return 0.5 * (w2 * sigmoid(w1 * x) - t) ** 2

        a1 = float(sigmoid(jnp.float64(w1 * x)))
        dy = w2 * a1 - t
        _judge_gradient(
            loss,
            (jnp.float64(w1), jnp.float64(w2)),
            reference=loss,
            grad_fn=lambda w1, w2, x=x, t=t: tuple(backprop_example(x, w1, w2, t)),
            names={"w2": f"dL/dw2 {at}", "w1": f"dL/dw1 {at}"},
            got={"w1": dw1, "w2": dw2},
            mistakes={
                "w2": {"misses the factor a1 = σ(w1 x)": dy},
                "w1": {
                    "misses the factor σ'(z1) = a1 (1 − a1)": dy * w2 * x,
                    "uses σ(z1) where σ'(z1) = a1 (1 − a1) belongs": dy * w2 * a1 * x,
                    "misses the last factor dz1/dw1 = x": dy * w2 * a1 * (1 - a1),
                },
            },
            title="backprop_example",
        )
    return "backprop_example: dL/dw1 and dL/dw2 right in three cases (jaxcalc.check)"


# --- the 2-layer network's backward pass -------------------------------------------------------


@checked("backward")
def check_backward(backward: Callable) -> str:
    """backward(params, x, y) -> {"W1", "b1", "W2", "b2"} by `jaxcalc.check`, against the
    autodiff of `mlp.loss_fn` (sigmoid hidden layer, softmax cross-entropy), on a batch of
    n = 5, sizes 4-3-2, in float64."""
    key = jax.random.key(7)
    n, sizes = 5, (4, 3, 2)
    params = mlp.init_params(key, sizes, dtype=jnp.float64)
    x = jax.random.normal(jax.random.fold_in(key, 1), (n, sizes[0]), jnp.float64)
    y = jax.nn.one_hot(jnp.array([0, 1, 1, 0, 1]), sizes[2], dtype=jnp.float64)
    out = call(backward, params, x, y, name="backward")
    if not isinstance(out, dict):
        raise fail(
            f"backward returns a {type(out).__name__}: return the dict "
            '{"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}'
        )
    missing = [k for k in mlp.PARAM_NAMES if k not in out]
    if missing:
        raise fail(f"backward's dict has no {', '.join(map(repr, missing))}")
    order = ("W2", "b2", "W1", "b1")  # the order the backward pass makes them
    got = {}
    for k in order:
        size = params[k].shape[0]
        got[k] = as_array(
            f"d{k}",
            out[k],
            params[k].shape,
            shape_hints={
                (n,): f"summed over the wrong axis: sum over the batch, axis 0, to get ({size},)",
                (1, size): "keeps the batch axis: sum over axis 0 without keepdims",
            },
        )

    def loss(params):
        return mlp.loss_fn(params, x, y, activation="sigmoid", loss="cross_entropy")

    want = jax.grad(loss)(params)
    a1 = sigmoid(x @ params["W1"] + params["b1"])
    dz2 = (jax.nn.softmax(a1 @ params["W2"] + params["b2"]) - y) / n
    da1 = dz2 @ params["W2"].T
    no_prime = {"W1": x.T @ da1, "b1": da1.sum(0)}  # dz1 = da1, without σ'
    sigma_not_prime = {"W1": x.T @ (da1 * a1), "b1": (da1 * a1).sum(0)}
    mistakes = {}
    for k in order:
        named = {
            f"is n = {n} times the right value: divide dL/dz2 by the batch size n once": n * want[k]
        }
        if k.startswith("b"):
            named[f"is n = {n} times too small: sum over the batch (dL/dz2 already holds 1/n)"] = (
                want[k] / n
            )
        else:
            named["is divided by the batch size n twice"] = want[k] / n
        if k in no_prime:
            named["misses the factor σ'(z1) = a1 (1 − a1)"] = no_prime[k]
            named["uses σ(z1) = a1 where σ'(z1) = a1 (1 − a1) belongs"] = sigma_not_prime[k]
        mistakes[k] = named
    _judge_gradient(
        loss,
        (params,),
        reference=loss,
        grad_fn=lambda p: {k: backward(p, x, y)[k] for k in mlp.PARAM_NAMES},
        names={k: f"d{k}" for k in order},
        got=got,
        mistakes=mistakes,
        title="backward",
    )
    return "backward: dW2, db2, dW1 and db1 all right (jaxcalc.check)"


# --- a custom_vjp rule -------------------------------------------------------------------------


def dense_fwd(x: jax.Array, W: jax.Array, b: jax.Array):
    """The forward rule of the `custom_vjp` dense layer y = tanh(x W + b): y and (x, W, y)."""
    y = jnp.tanh(x @ W + b)
    return y, (x, W, y)


def dense_layer(dense_bwd: Callable) -> Callable:
    """y = tanh(x W + b) as a `jax.custom_vjp` with `dense_fwd` and the backward rule given."""

    @jax.custom_vjp
    def dense(x, W, b):
        return jnp.tanh(x @ W + b)

    dense.defvjp(dense_fwd, lambda res, g: tuple(dense_bwd(res, g)))
    return dense


@checked("dense_bwd")
def check_dense_bwd(dense_bwd: Callable) -> str:
    """dense_bwd(res, g) -> (dx, dW, db) wired into `dense_layer`, by `jaxcalc.check` against
    the autodiff of the plain layer, on x (6, 4), W (4, 3), b (3,), in float64."""
    keys = jax.random.split(jax.random.key(3), 4)
    shapes = {"x": (6, 4), "W": (4, 3), "b": (3,)}
    x, W, b = (
        jax.random.normal(k, s, jnp.float64) for k, s in zip(keys[:3], shapes.values(), strict=True)
    )
    g = jax.random.normal(keys[3], (6, 3), jnp.float64)
    y = jnp.tanh(x @ W + b)
    out = call(dense_bwd, (x, W, y), g, name="dense_bwd")
    if not isinstance(out, tuple | list) or len(out) != 3:
        raise fail("dense_bwd must return the triple (dx, dW, db): one cotangent per input")
    hints = {
        "x": {(6, 3): "is dL/dz: carry it back through W, dz @ Wᵀ"},
        "W": {(3, 4): "transposed? dW = xᵀ dz has W's shape (4, 3)"},
        "b": {
            (6,): "summed over the wrong axis: sum over the batch, axis 0",
            (1, 3): "keeps the batch axis: sum over axis 0 without keepdims",
        },
    }
    got = {
        k: as_array(f"d{k}", v, shapes[k], shape_hints=hints[k])
        for k, v in zip(shapes, out, strict=True)
    }
    no_prime = (g @ W.T, x.T @ g, g.sum(0))  # dz = g: tanh' forgotten
    unsquared = g * (1 - y)
    mistakes = {
        k: {
            "misses tanh'(z) = 1 − y²: dz = g · (1 − y²)": no_prime[i],
            "uses 1 − y where tanh'(z) = 1 − y² belongs": (
                unsquared @ W.T,
                x.T @ unsquared,
                unsquared.sum(0),
            )[i],
        }
        for i, k in enumerate(shapes)
    }
    _judge_gradient(
        dense_layer(dense_bwd),
        (x, W, b),
        reference=lambda x, W, b: jnp.tanh(x @ W + b),
        names={"W": "dW", "b": "db", "x": "dx"},
        got=got,
        mistakes=mistakes,
        title="dense_bwd",
    )
    return "dense_bwd: dx, dW and db right, by jaxcalc.check on the custom_vjp layer"
