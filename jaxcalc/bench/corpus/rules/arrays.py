"""Rules with a mistake of array layout: a transpose, a reduction axis, a zeroed cotangent,
an off-by-one entry, a small leaf beside a large one."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.bench.corpus.rules import (
    A4,
    IDX,
    X4,
    X8,
    X512,
    jvp,
    normal,
    rule,
    vjp,
)

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
