"""Torch ports of some of `rules`: the same rule (correct or with the same bug) as a
`torch.autograd.Function`, for `torch.autograd.gradcheck`. torch is optional (the `peers`
extra): without it every port is None and the benchmark skips torch's rows."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import cache

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _function(forward: Callable, backward: Callable) -> Callable:
    """A torch.autograd.Function from forward(*xs) and backward(xs, g) -> grads."""
    import torch

    class Rule(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.save_for_backward(*xs)
            return forward(*xs)

        @staticmethod
        def backward(ctx, g):
            return backward(ctx.saved_tensors, g)

    return Rule.apply


@cache
def _ports(ok: bool) -> dict[str, Callable]:
    import torch

    t, F = torch, torch.nn.functional
    s = 1 if ok else -1

    def sig(x):
        return torch.sigmoid(x)

    return {
        "softplus": _function(F.softplus, lambda a, g: (s * g * sig(a[0]),)),
        "logsumexp": _function(
            lambda x: t.logsumexp(x, -1), lambda a, g: (s * g[:, None] * t.softmax(a[0], -1),)
        ),
        "square": _function(lambda x: x**2, lambda a, g: ((2 if ok else 1) * a[0] * g,)),
        "sigmoid(3x)": _function(
            lambda x: sig(3 * x),
            lambda a, g: ((3 if ok else 1) * g * sig(3 * a[0]) * (1 - sig(3 * a[0])),),
        ),
        "tanh": _function(t.tanh, lambda a, g: (g * (1 - t.tanh(a[0]) ** 2) if ok else g,)),
        "matmul": _function(
            lambda x, w: x @ w, lambda a, g: (g @ (a[1].T if ok else a[1]), a[0].T @ g)
        ),
        "bias add": _function(lambda x, b: x + b[None, :], lambda a, g: (g, g.sum(0 if ok else 1))),
        "x*sin x": _function(
            lambda x: x * t.sin(x),
            lambda a, g: (g * ((t.sin(a[0]) if ok else 0) + a[0] * t.cos(a[0])),),
        ),
        "mean": _function(t.mean, lambda a, g: (t.full_like(a[0], 1) * g / (16 if ok else 1),)),
        "leaky relu": _function(
            lambda x: t.where(x > 0, x, 0.01 * x),
            lambda a, g: (g * t.where(a[0] > 0, 1.0, 0.01 if ok else 0.1),),
        ),
        "a*sin b": _function(
            lambda a, b: a * t.sin(b),
            lambda x, g: (g * t.sin(x[1]), g * x[0] * t.cos(x[1]) if ok else t.zeros_like(x[1])),
        ),
        "cumsum": _function(
            lambda x: t.cumsum(x, 0),
            lambda a, g: (
                _rev_cumsum(g) if ok else t.cat([_rev_cumsum(g)[:-1], g[:0].new_zeros(1)]),
            ),
        ),
        "sigmoid": _function(
            sig, lambda a, g: (g * sig(a[0]) * (1 - sig(a[0])) * (1.0 if ok else 1 + 1e-4),)
        ),
        "dense": _function(
            lambda x, w, b: x @ w + b[None, :],
            lambda a, g: (g @ a[1].T, a[0].T @ g, (1.0 if ok else 1.01) * g.sum(0)),
        ),
        "x*sin x (2nd)": _function(
            lambda x: x * t.sin(x),
            lambda a, g: (g * (t.sin(a[0]) + a[0] * t.cos(a[0] if ok else a[0].detach())),),
        ),
    }


def _rev_cumsum(g):
    import torch

    return torch.flip(torch.cumsum(torch.flip(g, (0,)), 0), (0,))


NAMES = (
    "softplus",
    "logsumexp",
    "square",
    "sigmoid(3x)",
    "tanh",
    "matmul",
    "bias add",
    "x*sin x",
    "mean",
    "leaky relu",
    "a*sin b",
    "cumsum",
    "sigmoid",
    "dense",
    "x*sin x (2nd)",
)


def port(name: str, ok: bool) -> Callable | None:
    """The torch port of rule `name` (correct if ok), built (and torch imported) on its first
    call; None when the rule has no port or torch is not installed."""
    if not HAVE_TORCH or name not in NAMES:
        return None
    return lambda *xs: _ports(ok)[name](*xs)
