"""The fused training step: three Pallas kernels on the padded state, updated in place.

    forward      kernel 1: h1 = relu(x W1 + b1), partial logits per hidden block
    head         kernel 2: softmax, loss, dL/dz2, dL/dz1; Adam on W2, b1, b2
    update_w1    kernel 3: dL/dW1 = xᵀ dL/dz1 tile by tile; Adam on W1

Step i reads its batch from a `batch.Source`, its Adam coefficients from row i of the
epoch's table (`adam.coefficient_table`) and writes its loss to `losses[i]`: between the
kernels XLA has nothing left to do but count i (and, when the images are distorted, make
the batch). Per step the parameters and both moments are read and written once; the only
other memory traffic is x, h1, dL/dz1 (B x H each) and the partial logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax

from jaxcalc.fused import adam
from jaxcalc.fused.batch import Source
from jaxcalc.fused.forward import forward
from jaxcalc.fused.head import head
from jaxcalc.fused.layout import Layout
from jaxcalc.fused.update import update_w1

NAMES = ("W1", "b1", "W2", "b2")


class FusedState(NamedTuple):
    """What the fused step updates, every array padded (`fused.layout`)."""

    params: dict[str, jax.Array]  # θ
    mu: dict[str, jax.Array]  # Adam's m
    nu: dict[str, jax.Array]  # Adam's v
    avg: dict[str, jax.Array] | None  # the weight average (None without one)


def groups(state: FusedState) -> dict[str, tuple[jax.Array, ...]]:
    """Per parameter, the arrays one Adam update touches: (θ, m, v) or (θ, m, v, average)."""
    trees = [state.params, state.mu, state.nu] + ([state.avg] if state.avg is not None else [])
    return {name: tuple(t[name] for t in trees) for name in NAMES}


def from_groups(g: dict[str, tuple[jax.Array, ...]]) -> FusedState:
    """The inverse of `groups`."""
    tree = lambda k: {name: g[name][k] for name in NAMES}  # noqa: E731
    return FusedState(tree(0), tree(1), tree(2), tree(3) if len(g["W1"]) == 4 else None)


Step = Callable[[FusedState, Source, jax.Array, jax.Array, jax.Array], tuple[FusedState, jax.Array]]


def make_fused_step(
    layout: Layout, hyper: adam.Hyper, *, smoothing: float = 0.0, interpret: bool = False
) -> Step:
    """`(state, source, coefs, i, losses) -> (state, losses)`: update i of an epoch.

    `source`: the batch (`batch.Source`); `coefs`: the epoch's (steps, 4) table of Adam
    coefficients; `i`: (1,) int32, the step's index into it and into `losses` (steps,),
    where the step writes its loss. `smoothing`: label smoothing ε (targets
    (1 − ε) one-hot + ε / O).
    """
    layout.blocks.check()

    def step(state: FusedState, source: Source, coefs, i, losses) -> tuple[FusedState, jax.Array]:
        h1, part = forward(i, source, state.params, layout, interpret=interpret)
        g = groups(state)
        dz1, losses, g_head = head(
            i, coefs, source, part, h1, losses, g, layout, hyper,
            smoothing=smoothing, interpret=interpret,
        )  # fmt: skip
        w1 = update_w1(i, coefs, source, dz1, g["W1"], layout, hyper, interpret=interpret)
        return from_groups({**g_head, "W1": w1}), losses

    return step
