"""Derivative rules with a planted bug, each beside its correct twin.

Every rule is written twice by one factory, `make(ok)`: ok=True is the correct rule (a
"twin" case), ok=False the same rule with one mistake of the kind it is filed under:

    sign        a flipped sign
    factor      a dropped constant or chain-rule factor
    transpose   a missing or extra transpose
    reduction   the wrong reduction axis
    term        a dropped term of the product or quotient rule
    mean-sum    a mean treated as a sum
    branch      the wrong slope on one branch
    zeroed      a zeroed input or output cotangent
    off-by-one  one entry (or index) off
    small-leaf  a 1 % error in a small leaf beside a large one
    tiny        a relative error near 1e-4
    order-2     right first derivative, wrong second (stop_gradient inside a backward pass)

as a `custom_vjp` (reverse rule), a `custom_jvp` (forward rule) or a hand-written gradient
(`grad_fn`). Points are drawn away from kinks and singularities; constants that are not
arguments are fixed NumPy arrays (they follow the arguments' float type).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcalc.bench.corpus import Case, torch_rules

_FIXED = np.random.default_rng(20240)
A4 = _FIXED.normal(size=(4, 4)) + 4 * np.eye(4)  # well conditioned
B4 = _FIXED.normal(size=4)
X4 = _FIXED.normal(size=(4, 4))
T8 = _FIXED.normal(size=8)
X512 = _FIXED.normal(size=(4, 512)) / np.sqrt(512)
X8 = _FIXED.normal(size=(5, 8))
LABELS = np.eye(4)[[0, 2, 1, 3]]
IDX = np.array([0, 2, 3, 5, 6, 7])


def vjp(primal: Callable, bwd: Callable) -> Callable:
    """`primal` with the reverse rule bwd(args, g) -> a tuple of cotangents (custom_vjp)."""
    f = jax.custom_vjp(primal)
    f.defvjp(lambda *args: (primal(*args), args), bwd)
    return f


def jvp(primal: Callable, tangent: Callable) -> Callable:
    """`primal` with the forward rule tangent(args, dargs) -> output tangent (custom_jvp)."""
    f = jax.custom_jvp(primal)
    f.defjvp(lambda args, dargs: (primal(*args), tangent(args, dargs)))
    return f


CASES: list[Case] = []


def rule(name, kind, args, leaves, pattern="", order=1):
    """Register make(ok) -> f or (f, grad_fn) as a bug and its twin."""

    def register(make):
        for ok in (True, False):
            made = make(ok)
            f, grad_fn = made if isinstance(made, tuple) else (made, None)
            CASES.append(
                Case(
                    name if ok else f"{name}/{kind}",
                    f,
                    args,
                    not ok,
                    "twin" if ok else kind,
                    grad_fn,
                    order,
                    () if ok else leaves,
                    "" if ok else pattern,
                    torch_rules.port(name, ok),
                )
            )
        return make

    return register


def normal(*shape, scale=1.0):
    return lambda rng: (rng.normal(size=shape) * scale,)


def away_from_zero(*shape):
    """Normal entries pushed at least 0.2 away from 0 (a kink or singularity)."""

    def draw(rng):
        x = rng.normal(size=shape)
        return (np.where(x >= 0, x + 0.2, x - 0.2),)

    return draw


# --------------------------------------------------------------------------- sign


@rule("softplus", "sign", normal(8), ("x",), "sign")
def _(ok):
    s = 1 if ok else -1
    return vjp(lambda x: jnp.logaddexp(x, 0.0), lambda a, g: (s * g * jax.nn.sigmoid(a[0]),))


@rule("x*sin", "sign", normal(8), ("x",), "sign")
def _(ok):
    s = 1 if ok else -1
    return jvp(
        lambda x: x * jnp.sin(x), lambda a, t: s * (jnp.sin(a[0]) + a[0] * jnp.cos(a[0])) * t[0]
    )


@rule("least-squares", "sign", normal(4), ("x",), "sign")
def _(ok):
    s = 1 if ok else -1

    def f(x):
        return 0.5 * jnp.sum((A4 @ x - B4) ** 2)

    return f, lambda x: s * A4.T @ (A4 @ x - B4)


@rule("logsumexp", "sign", normal(4, 4), ("x",), "sign")
def _(ok):
    s = 1 if ok else -1
    return vjp(
        lambda x: jax.nn.logsumexp(x, axis=-1),
        lambda a, g: (s * g[:, None] * jax.nn.softmax(a[0], axis=-1),),
    )


# --------------------------------------------------------------------------- factor


@rule("square", "factor", normal(8), ("x",), "factor")
def _(ok):
    c = 2 if ok else 1
    return jvp(lambda x: x**2, lambda a, t: c * a[0] * t[0])


@rule("sigmoid(3x)", "factor", normal(8), ("x",), "factor")
def _(ok):
    c = 3 if ok else 1

    def bwd(a, g):
        s = jax.nn.sigmoid(3 * a[0])
        return (c * g * s * (1 - s),)

    return vjp(lambda x: jax.nn.sigmoid(3 * x), bwd)


@rule("sum exp(2x)", "factor", normal(8), ("x",), "factor")
def _(ok):
    c = 2 if ok else 1
    return (lambda x: jnp.sum(jnp.exp(2 * x))), lambda x: c * jnp.exp(2 * x)


@rule("tanh", "factor", normal(8), ("x",))
def _(ok):
    def bwd(a, g):
        y = jnp.tanh(a[0])
        return (g * (1 - y**2) if ok else g,)  # the bug drops tanh's derivative

    return vjp(lambda x: jnp.tanh(x), bwd)


@rule("gelu", "factor", normal(8), ("x",))
def _(ok):
    k = np.sqrt(2 / np.pi)

    def primal(x):
        return 0.5 * x * (1 + jnp.tanh(k * (x + 0.044715 * x**3)))

    def bwd(a, g):
        x = a[0]
        t = jnp.tanh(k * (x + 0.044715 * x**3))
        inner = k * (1 + 3 * 0.044715 * x**2) if ok else 1.0  # the inner chain factor
        return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * inner),)

    return vjp(primal, bwd)


@rule("mse", "factor", normal(8), ("x",), "factor")
def _(ok):
    c = 2 if ok else 1
    return (lambda x: jnp.mean((x - T8) ** 2)), lambda x: c * (x - T8) / 8


# --------------------------------------------------------------------------- transpose


@rule("matmul", "transpose", lambda rng: (rng.normal(size=(4, 4)), rng.normal(size=(4, 4))), ("x",))
def _(ok):
    def bwd(a, g):
        x, w = a
        return (g @ (w.T if ok else w), x.T @ g)

    return vjp(lambda x, w: x @ w, bwd)


@rule("linear dW", "transpose", normal(4, 4), ("W",), "transpose")
def _(ok):
    def f(W):
        return jnp.sum(jnp.tanh(X4 @ W))

    def grad(W):
        dW = X4.T @ (1 - jnp.tanh(X4 @ W) ** 2)
        return dW if ok else dW.T

    return f, grad


@rule(
    "bilinear",
    "transpose",
    lambda rng: (rng.normal(size=(4, 4)), rng.normal(size=(4, 4))),
    ("b",),
    "transpose",
)
def _(ok):
    def bwd(args, g):
        a, b = args
        db = a.T @ g
        return (g @ b.T, db if ok else db.T)

    return vjp(lambda a, b: a @ b, bwd)


@rule(
    "solve",
    "transpose",
    lambda rng: (A4 + 0.1 * rng.normal(size=(4, 4)), rng.normal(size=4)),
    ("A", "b"),
)
def _(ok):
    def bwd(args, g):
        A, b = args
        x = jnp.linalg.solve(A, b)
        lam = jnp.linalg.solve(A.T if ok else A, g)
        return (-jnp.outer(lam, x), lam)

    return vjp(lambda A, b: jnp.linalg.solve(A, b), bwd)


# --------------------------------------------------------------------------- reduction


@rule("bias add", "reduction", lambda rng: (rng.normal(size=(4, 4)), rng.normal(size=4)), ("b",))
def _(ok):
    return vjp(lambda x, b: x + b[None, :], lambda a, g: (g, g.sum(0 if ok else 1)))


@rule("column mean", "reduction", normal(4, 4), ("x",), "transpose")
def _(ok):
    def bwd(a, g):
        spread = g[None, :] if ok else g[:, None]
        return (jnp.broadcast_to(spread, (4, 4)) / 4,)

    return vjp(lambda x: x.mean(0), bwd)


@rule("softmax", "reduction", normal(4, 4), ("x",))
def _(ok):
    def bwd(a, g):
        s = jax.nn.softmax(a[0], axis=-1)
        return (s * (g - jnp.sum(g * s, axis=-1 if ok else 0, keepdims=True)),)

    return vjp(lambda x: jax.nn.softmax(x, axis=-1), bwd)


@rule("center rows", "reduction", normal(4, 4), ("x",))
def _(ok):
    axis = 1 if ok else 0
    return vjp(
        lambda x: x - x.mean(axis=1, keepdims=True),
        lambda a, g: (g - g.mean(axis=axis, keepdims=True),),
    )


# --------------------------------------------------------------------------- term


@rule("x*sin x", "term", normal(8), ("x",))
def _(ok):
    def bwd(a, g):
        x = a[0]
        return (g * ((jnp.sin(x) if ok else 0.0) + x * jnp.cos(x)),)

    return vjp(lambda x: x * jnp.sin(x), bwd)


@rule("sin(x)/x", "term", lambda rng: (rng.uniform(0.5, 2.0, size=8),), ("x",))
def _(ok):
    def tangent(a, t):
        x = a[0]
        d = (x * jnp.cos(x) - jnp.sin(x)) / x**2 if ok else jnp.cos(x) / x
        return d * t[0]

    return jvp(lambda x: jnp.sin(x) / x, tangent)


@rule("x*exp x", "term", normal(8), ("x",))
def _(ok):
    return (lambda x: jnp.sum(x * jnp.exp(x))), lambda x: ((1 + x) if ok else x) * jnp.exp(x)


@rule("exp/(1+x²)", "term", normal(8), ("x",))
def _(ok):
    def grad(x):
        q = 1 + x**2
        d = jnp.exp(x) / q
        return d - 2 * x * jnp.exp(x) / q**2 if ok else d

    return (lambda x: jnp.sum(jnp.exp(x) / (1 + x**2))), grad


# --------------------------------------------------------------------------- mean-sum


@rule("mean", "mean-sum", normal(4, 4), ("x",), "factor")
def _(ok):
    n = 16 if ok else 1
    return vjp(lambda x: jnp.mean(x), lambda a, g: (jnp.full((4, 4), g / n),))


@rule("mean squared error", "mean-sum", normal(8), ("x",), "factor")
def _(ok):
    n = 8 if ok else 1
    return (lambda x: jnp.mean((x - T8) ** 2)), lambda x: 2 * (x - T8) / n


@rule("cross-entropy", "mean-sum", normal(4, 4), ("z",), "factor")
def _(ok):
    def primal(z):
        return -jnp.mean(jnp.sum(LABELS * jax.nn.log_softmax(z, axis=-1), axis=-1))

    def bwd(a, g):
        n = 4 if ok else 1
        return (g * (jax.nn.softmax(a[0], axis=-1) - LABELS) / n,)

    return vjp(primal, bwd)


# --------------------------------------------------------------------------- branch


@rule("leaky relu", "branch", away_from_zero(8), ("x",))
def _(ok):
    slope = 0.01 if ok else 0.1

    def bwd(a, g):
        return (g * jnp.where(a[0] > 0, 1.0, slope),)

    return vjp(lambda x: jnp.where(x > 0, x, 0.01 * x), bwd)


@rule("abs", "branch", away_from_zero(8), ("x",))
def _(ok):
    def tangent(a, t):
        x = a[0]
        return jnp.where(x > 0, 1.0, -1.0 if ok else 1.0) * t[0]

    return jvp(lambda x: jnp.abs(x), tangent)


@rule(
    "huber", "branch", lambda rng: (np.array([-2.5, -1.6, -0.6, -0.2, 0.3, 0.7, 1.4, 2.2]),), ("x",)
)
def _(ok):
    def f(x):
        return jnp.sum(jnp.where(jnp.abs(x) <= 1, 0.5 * x**2, jnp.abs(x) - 0.5))

    def grad(x):
        return jnp.where(jnp.abs(x) <= 1, x, jnp.sign(x) if ok else x)

    return f, grad


@rule("elu", "branch", away_from_zero(8), ("x",))
def _(ok):
    def bwd(a, g):
        x = a[0]
        neg = jnp.exp(x) if ok else jnp.exp(x) - 1
        return (g * jnp.where(x > 0, 1.0, neg),)

    return vjp(lambda x: jnp.where(x > 0, x, jnp.expm1(x)), bwd)


# --------------------------------------------------------------------------- zeroed


@rule("a*sin b", "zeroed", lambda rng: (rng.normal(size=8), rng.normal(size=8)), ("b",), "zeros")
def _(ok):
    def bwd(args, g):
        a, b = args
        return (g * jnp.sin(b), g * a * jnp.cos(b) if ok else jnp.zeros_like(b))

    return vjp(lambda a, b: a * jnp.sin(b), bwd)


@rule("sin, cos", "zeroed", normal(8), ("x",), "zeros")
def _(ok):
    def bwd(a, g):
        g1, g2 = g
        x = a[0]
        return (g1 * jnp.cos(x) - (g2 * jnp.sin(x) if ok else 0.0),)

    return vjp(lambda x: (jnp.sin(x), jnp.cos(x)), bwd)


@rule("cube", "zeroed", normal(8), ("x",), "zeros")
def _(ok):
    return jvp(lambda x: x**3, lambda a, t: 3 * a[0] ** 2 * t[0] if ok else jnp.zeros_like(t[0]))


@rule(
    "neuron",
    "zeroed",
    lambda rng: ({"w": rng.normal(size=5), "b": rng.normal()},),
    ("params['b']",),
    "zeros",
)
def _(ok):
    x = X8[:, :5]

    def f(params):
        return jnp.mean(jnp.tanh(x @ params["w"] + params["b"]) ** 2)

    def grad(params):
        t = jnp.tanh(x @ params["w"] + params["b"])
        dz = 2 * t * (1 - t**2) / x.shape[0]
        return {"w": x.T @ dz, "b": jnp.sum(dz) if ok else jnp.zeros_like(params["b"])}

    return f, grad


# --------------------------------------------------------------------------- off-by-one


@rule("cumsum", "off-by-one", normal(8), ("x",))
def _(ok):
    def bwd(a, g):
        rev = jnp.cumsum(g[::-1])[::-1]
        return (rev if ok else jnp.concatenate([rev[:-1], jnp.zeros(1, g.dtype)]),)

    return vjp(lambda x: jnp.cumsum(x), bwd)


@rule("diff", "off-by-one", normal(8), ("x",))
def _(ok):
    def bwd(a, g):
        down = jnp.pad(g, (1, 0)) if ok else jnp.pad(g[:-1], (2, 0))  # g_{j-1}, or g_{j-2}
        return (down - jnp.pad(g, (0, 1)),)

    return vjp(lambda x: x[1:] - x[:-1], bwd)


@rule("sum of squares", "off-by-one", normal(8), ("x",))
def _(ok):
    def grad(x):
        g = 2 * x
        return g if ok else g.at[3].set(2 * x[4])

    return (lambda x: jnp.sum(x**2)), grad


@rule("gather", "off-by-one", normal(8), ("x",))
def _(ok):
    idx = IDX if ok else np.array([0, 2, 3, 5, 6, 6])

    def bwd(a, g):
        return (jnp.zeros_like(a[0]).at[idx].add(g),)

    return vjp(lambda x: x[IDX], bwd)


# --------------------------------------------------------------------------- small-leaf


@rule(
    "layer 512",
    "small-leaf",
    lambda rng: ({"W": rng.normal(size=(512, 512)) / np.sqrt(512), "b": rng.normal(size=512)},),
    ("params['b']",),
    "factor",
)
def _(ok):
    def f(params):
        return jnp.mean(jnp.tanh(X512 @ params["W"] + params["b"][None, :]) ** 2)

    def grad(params):
        g = jax.grad(f)(params)
        return g if ok else {"W": g["W"], "b": 1.01 * g["b"]}

    return f, grad


@rule(
    "dense",
    "small-leaf",
    lambda rng: (rng.normal(size=(4, 64)), rng.normal(size=(64, 64)) / 8, rng.normal(size=64)),
    ("b",),
    "factor",
)
def _(ok):
    def bwd(args, g):
        x, W, b = args
        return (g @ W.T, x.T @ g, (1.0 if ok else 1.01) * g.sum(0))

    return vjp(lambda x, W, b: x @ W + b[None, :], bwd)


@rule(
    "two layers",
    "small-leaf",
    lambda rng: (
        {
            "W1": rng.normal(size=(8, 16)) / 3,
            "b1": rng.normal(size=16) / 3,
            "W2": rng.normal(size=(16, 3)) / 4,
            "b2": rng.normal(size=3) / 3,
        },
    ),
    ("params['b2']",),
    "factor",
)
def _(ok):
    def f(params):
        h = jnp.tanh(X8 @ params["W1"] + params["b1"][None, :])
        return jnp.mean((h @ params["W2"] + params["b2"][None, :]) ** 2)

    def grad(params):
        g = jax.grad(f)(params)
        return g if ok else {**g, "b2": 1.01 * g["b2"]}

    return f, grad


# --------------------------------------------------------------------------- tiny


@rule("sigmoid", "tiny", normal(8), ("x",), "factor")
def _(ok):
    def bwd(a, g):
        s = jax.nn.sigmoid(a[0])
        return (g * s * (1 - s) * (1.0 if ok else 1 + 1e-4),)

    return vjp(lambda x: jax.nn.sigmoid(x), bwd)


@rule("tanh (jvp)", "tiny", normal(8), ("x",), "factor")
def _(ok):
    return jvp(
        lambda x: jnp.tanh(x),
        lambda a, t: (1 - jnp.tanh(a[0]) ** 2) * (1.0 if ok else 1 + 5e-4) * t[0],
    )


@rule("exp", "tiny", normal(8), ("x",))
def _(ok):
    def bwd(a, g):
        x = a[0]
        return (g * jnp.exp(x) * (1.0 if ok else 1 + 1e-4 * x),)

    return vjp(lambda x: jnp.exp(x), bwd)


@rule(
    "log1p + cube", "tiny", lambda rng: (rng.normal(size=8), rng.normal(size=8)), ("b",), "factor"
)
def _(ok):
    def f(a, b):
        return jnp.sum(jnp.log1p(a**2)) + jnp.sum(b**3)

    def grad(a, b):
        return 2 * a / (1 + a**2), 3 * b**2 * (1.0 if ok else 1 + 1e-4)

    return f, grad


# --------------------------------------------------------------------------- order-2


@rule("x*sin x (2nd)", "order-2", normal(8), ("x",), order=2)
def _(ok):
    def bwd(a, g):
        x = a[0]
        xc = x if ok else lax.stop_gradient(x)
        return (g * (jnp.sin(x) + x * jnp.cos(xc)),)

    return vjp(lambda x: x * jnp.sin(x), bwd)


@rule("softplus (2nd)", "order-2", normal(8), ("x",), order=2)
def _(ok):
    def bwd(a, g):
        x = a[0] if ok else lax.stop_gradient(a[0])
        return (g * jax.nn.sigmoid(x),)

    return vjp(lambda x: jnp.logaddexp(x, 0.0), bwd)


@rule("cube (2nd)", "order-2", normal(8), ("x",), order=2)
def _(ok):
    def tangent(a, t):
        d = 3 * a[0] ** 2
        return (d if ok else lax.stop_gradient(d)) * t[0]

    return jvp(lambda x: x**3, tangent)


@rule("tanh (2nd)", "order-2", normal(8), ("x",), order=2)
def _(ok):
    def bwd(a, g):
        y = jnp.tanh(a[0] if ok else lax.stop_gradient(a[0]))
        return (g * (1 - y**2),)

    return vjp(lambda x: jnp.tanh(x), bwd)


@rule("log cosh (2nd)", "order-2", normal(8), ("x",), order=2)
def _(ok):
    def f(x):
        return jnp.sum(jnp.log(jnp.cosh(x)))

    return f, lambda x: jnp.tanh(x if ok else lax.stop_gradient(x))
