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
import numpy as np

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


# the rules register themselves in CASES as they are defined
from jaxcalc.bench.corpus.rules import arrays, calculus  # noqa: E402, F401
