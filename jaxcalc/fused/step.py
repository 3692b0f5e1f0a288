"""The fused training step: three Pallas kernels on the padded state, updated in place.

    forward      kernel 1: h1 = relu(x W1 + b1), partial logits per hidden block
    head         kernel 2: softmax, loss, dL/dz2, dL/dz1; Adam on W2, b1, b2
    update_w1    kernel 3: dL/dW1 = xᵀ dL/dz1 tile by tile; Adam on W1

Step i reads its batch from a `batch.Source`, its Adam coefficients from row i of the
epoch's table (`adam.coefficient_table`) and writes its loss and its count of right
predictions at index i of the epoch's `head.Tally`: between the
kernels XLA has nothing left to do but count i (and, when the images are distorted, make
the batch). Per step kernels 2 and 3 read and write each parameter, both moments and the
average once; kernel 1 reads W1 once per batch block (`forward`), W2 and the biases once
per program. The other memory traffic is x, h1, dL/dz1 (B x H each) and the partial logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxcalc.fused import adam
from jaxcalc.fused.batch import Source
from jaxcalc.fused.forward import forward
from jaxcalc.fused.head import Tally, head
from jaxcalc.fused.layout import Layout, pad_tree, unpad_tree
from jaxcalc.fused.update import update_w1
from jaxcalc.validation import InputError

NAMES = ("W1", "b1", "W2", "b2")


class FusedState(NamedTuple):
    """What the fused step updates: params-shaped dicts, every array padded (`layout`)."""

    params: dict[str, jax.Array]  # θ
    mu: dict[str, jax.Array]  # Adam's m
    nu: dict[str, jax.Array]  # Adam's v
    avg: dict[str, jax.Array] | None  # the weight average (None without one)


def padded(state: FusedState, layout: Layout) -> FusedState:
    """`state` made of the network's true-size arrays (`layout.true_shapes`), padded; the
    kernels train float32 parameters only (`InputError` otherwise)."""
    bad = {k: str(v.dtype) for k, v in state.params.items() if v.dtype != jnp.float32}
    if bad:
        raise InputError(f"the fused step trains float32 parameters, got {bad}")
    return FusedState(*(None if t is None else pad_tree(t, layout) for t in state))


def unpadded(state: FusedState, layout: Layout) -> FusedState:
    """The inverse of `padded`: the true-size corner of every array."""
    return FusedState(*(None if t is None else unpad_tree(t, layout) for t in state))


def groups(state: FusedState) -> dict[str, adam.Group]:
    """Per parameter, what one Adam update touches (`adam.Group`: θ, m, v, the average)."""
    avg = state.avg or {}
    return {
        name: adam.Group(state.params[name], state.mu[name], state.nu[name], avg.get(name))
        for name in NAMES
    }


def from_groups(g: dict[str, adam.Group]) -> FusedState:
    """The inverse of `groups`."""

    def tree(field: str) -> dict[str, jax.Array]:
        return {name: getattr(g[name], field) for name in NAMES}

    avg = None if g["W1"].avg is None else tree("avg")
    return FusedState(tree("theta"), tree("m"), tree("v"), avg)


Step = Callable[[FusedState, Source, jax.Array, jax.Array, Tally], tuple[FusedState, Tally]]


def make_fused_step(
    layout: Layout, hyper: adam.Hyper, *, smoothing: float = 0.0, interpret: bool = False
) -> Step:
    """`(state, source, coefs, i, tally) -> (state, tally)`: update i of an epoch.

    `source`: the batch (`batch.Source`); `coefs`: the epoch's (steps, `adam.N_COEFS`) table
    of Adam coefficients; `i`: (1,) int32, the step's index into it and into `tally`
    (`head.Tally`, each (steps,)), where the step writes its loss and how many rows its
    logits classified right. `smoothing`: label smoothing ε (targets
    (1 − ε) one-hot + ε / O). `interpret`: run the kernels in Pallas's interpret mode (any
    device, slowly) instead of compiling them with Triton (a GPU).
    """
    layout.blocks.check()

    def step(state: FusedState, source: Source, coefs, i, tally: Tally) -> tuple[FusedState, Tally]:
        h1, part = forward(i, source, state.params, layout, interpret=interpret)
        g = groups(state)
        dz1, tally, g_head = head(
            i, coefs, source, part, h1, tally, g, layout, hyper,
            smoothing=smoothing, interpret=interpret,
        )  # fmt: skip
        w1 = update_w1(i, coefs, source, dz1, g["W1"], layout, hyper, interpret=interpret)
        return from_groups({**g_head, "W1": w1}), tally

    return step
