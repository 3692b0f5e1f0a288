"""Rules with a mistake of calculus: a sign, a factor, a dropped term, a mean taken as a
sum, a branch's slope, a tiny relative error, a wrong second derivative."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcalc.bench.corpus.rules import (
    A4,
    B4,
    LABELS,
    T8,
    away_from_zero,
    jvp,
    normal,
    rule,
    vjp,
)

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
