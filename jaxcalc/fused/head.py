"""Kernel 2, the head: softmax cross-entropy, dL/dz2, the backward pass through W2, and the
Adam update of W2, b1 and b2 in place.

Grid (Hp / bh,): program j owns hidden block j. Looping over the batch in blocks of
`blocks.batch` rows, it sums the partial logits of kernel 1 and, the chain rule line by line
(as `mlp.network.backprop`):

    z2     = Σ_i P[i]                            (b2 is already in P[0])
    dL/dz2 = (softmax(z2) − y) / B               (soft targets y: (softmax(z2) Σ_k y_k − y) / B)
    dL/da1 = dL/dz2 W2[j]ᵀ                        (the old W2, read before it is updated)
    dL/dz1 = dL/da1 ⊙ [h1 > 0]                    stored for kernel 3
    dL/dW2[j] = h1[:, j]ᵀ dL/dz2     dL/db1[j] = Σ_rows dL/dz1     dL/db2 = Σ_rows dL/dz2

then updates W2[j] and b1[j] with their moments (`jaxcalc.fused.adam`); program 0 alone also
updates b2 and writes the loss L = −1/B Σ y log softmax(z2) and the count of rows with
argmax z2 = label into the epoch's `Tally` (the running train accuracy). Every
program computes the same softmax (a few KB): cheaper than another kernel. No program reads
what another writes: b2 is read only by kernel 1 and by program 0 here, each W2 and b1 block
only by its own program.

Masks keep the padding inert: padded logit columns are −∞ before the softmax (probability 0,
target 0), padded batch rows (by their index, whatever their label) get dL/dz2 = 0 and add
nothing to the loss, hence nothing to any gradient.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxcalc import activations
from jaxcalc.fused import adam
from jaxcalc.fused.batch import Reader, Source, source_specs
from jaxcalc.fused.call import each, pallas_call, shapes
from jaxcalc.fused.layout import Layout


class Tally(NamedTuple):
    """What each step of an epoch writes at its index i: its loss and how many of its rows its
    logits classified right (padded rows are not counted)."""

    losses: jax.Array  # (steps,) float32
    correct: jax.Array  # (steps,) int32


def correct_predictions(
    z2: jax.Array, labels: jax.Array, row0: jax.Array, layout: Layout
) -> jax.Array:
    """How many rows of a block starting at `row0` are real (not padding) and have argmax z2
    over the real logit columns equal to their label (int32; the first maximum, as
    `jnp.argmax`)."""
    col = jnp.arange(z2.shape[1])[None, :]
    z = jnp.where(col < layout.n_out, z2, -jnp.inf)
    real = row0 + jnp.arange(z2.shape[0]) < layout.batch
    hit = (jax.lax.argmax(z, 1, jnp.int32) == labels) & real
    return jnp.sum(hit.astype(jnp.int32))


def softmax_cross_entropy(
    z2: jax.Array, labels: jax.Array, row0: jax.Array, layout: Layout, smoothing: float
) -> tuple[jax.Array, jax.Array]:
    """(dL/dz2 (bb, Op), Σ y log softmax(z2)) of a block of rows starting at `row0`."""
    n_out, batch = layout.n_out, layout.batch
    col = jnp.arange(z2.shape[1])[None, :]
    valid = (col < n_out) & (row0 + jnp.arange(z2.shape[0])[:, None] < batch)
    z = jnp.where(col < n_out, z2, -jnp.inf)
    p = activations.softmax(z, axis=1)
    y = (labels[:, None] == col).astype(jnp.float32)  # padded rows are masked below
    if smoothing:
        y = jnp.where(valid, y * (1.0 - smoothing) + smoothing / n_out, 0.0)
        dz2 = (p * jnp.sum(y, axis=1)[:, None] - y) / batch
    else:
        dz2 = (p - y) / batch
    dz2 = jnp.where(valid, dz2, 0.0)
    log_p = jnp.where(valid, y * activations.log_softmax(z, axis=1), 0.0)
    return dz2, jnp.sum(jnp.sum(log_p, axis=1), axis=0)


def _head_kernel(
    step_ref,
    coefs_ref,
    source: Source,
    part_ref,
    h_ref,
    tally_in: Tally,  # unread: aliased to tally, the same buffers
    state: dict[str, adam.Group],
    dz1_ref,
    tally: Tally,
    new_state: dict[str, adam.Group],
    *,
    layout: Layout,
    hyper: adam.Hyper,
    smoothing: float,
):
    src = Reader(step_ref, source)
    bl = layout.blocks
    bb, op, n_parts = bl.batch, layout.o_pad, part_ref.shape[0]
    w2 = state["W2"].theta[...]  # the old W2 block, read before it is updated

    def batch_block(c, carry):
        dw2, db1, db2, xent, right = carry
        rows = pl.ds(c * bb, bb)
        z2 = jax.lax.fori_loop(
            0, n_parts, lambda i, z: z + part_ref[i, rows, :], jnp.zeros((bb, op), jnp.float32)
        )
        labels = src.labels(src.rows(c * bb, bb))
        dz2, xent_c = softmax_cross_entropy(z2, labels, c * bb, layout, smoothing)
        right = right + correct_predictions(z2, labels, c * bb, layout)
        h1 = h_ref[rows, :]
        dz1 = bl.dot(dz2, w2, trans_b=True) * activations.relu_grad_from_output(h1)
        dz1_ref[rows, :] = dz1
        dw2 = dw2 + bl.dot(h1, dz2, trans_a=True)
        db1, db2 = db1 + jnp.sum(dz1, axis=0), db2 + jnp.sum(dz2, axis=0)
        return dw2, db1, db2, xent + xent_c, right

    zeros = (jnp.zeros(w2.shape, jnp.float32), jnp.zeros(w2.shape[:1], jnp.float32))
    init = (*zeros, jnp.zeros((op,), jnp.float32), jnp.zeros((), jnp.float32))
    init += (jnp.zeros((), jnp.int32),)
    dw2, db1, db2, xent, right = jax.lax.fori_loop(0, layout.b_pad // bb, batch_block, init)
    coefs = adam.at(coefs_ref, src.step)
    adam.store(new_state["W2"], adam.update(adam.load(state["W2"]), dw2, coefs, hyper))
    adam.store(new_state["b1"], adam.update(adam.load(state["b1"]), db1, coefs, hyper))

    @pl.when(pl.program_id(0) == 0)
    def _():
        adam.store(new_state["b2"], adam.update(adam.load(state["b2"]), db2, coefs, hyper))
        tally.losses[src.step] = -xent / layout.batch
        tally.correct[src.step] = right


HEAD_NAMES = ("W2", "b1", "b2")  # the parameters kernel 2 updates


def head(
    step: jax.Array,
    coefs: jax.Array,
    source: Source,
    part: jax.Array,
    h1: jax.Array,
    tally: Tally,
    groups: dict[str, adam.Group],
    layout: Layout,
    hyper: adam.Hyper,
    *,
    smoothing: float = 0.0,
    interpret: bool = False,
) -> tuple[jax.Array, Tally, dict[str, adam.Group]]:
    """(dL/dz1 (Bp, Hp), `tally` with this step's loss and count of right predictions at
    index `step`, the updated groups of "W2", "b1", "b2").

    `groups[name]`: the parameter's `adam.Group`, padded (other names are ignored); they
    and `tally` are updated in place (`input_output_aliases`) when the caller donates them.
    """
    bh, bp, op = layout.blocks.hidden, layout.b_pad, layout.o_pad
    state = {name: groups[name] for name in HEAD_NAMES}
    block = {  # program j owns rows j of W2 and b1; b2 is whole (updated by program 0 alone)
        "W2": pl.BlockSpec((bh, op), lambda j: (j, 0)),
        "b1": pl.BlockSpec((bh,), lambda j: (j,)),
        "b2": pl.BlockSpec((op,), lambda j: (0,)),
    }
    state_specs = {name: each(block[name], group) for name, group in state.items()}
    dz1, tally, state = pallas_call(
        functools.partial(_head_kernel, layout=layout, hyper=hyper, smoothing=smoothing),
        inputs={
            "step": (step, pl.no_block_spec),
            "coefs": (coefs, pl.no_block_spec),  # the epoch's table of Adam coefficients
            "source": (source, source_specs(source)),
            "part": (part, pl.BlockSpec(part.shape, lambda j: (0, 0, 0))),  # every partial logit
            "h1": (h1, pl.BlockSpec((bp, bh), lambda j: (0, j))),  # h1 columns of block j
            "tally": (tally, each(pl.no_block_spec, tally)),  # the epoch's losses and counts
            "state": (state, state_specs),
        },
        outputs={
            "dz1": (
                jax.ShapeDtypeStruct((bp, layout.h_pad), jnp.float32),
                pl.BlockSpec((bp, bh), lambda j: (0, j)),  # dL/dz1 columns of block j
            ),
            "tally": (shapes(tally), each(pl.no_block_spec, tally)),
            "state": (shapes(state), state_specs),
        },
        in_place=("tally", "state"),
        grid=(layout.h_pad // bh,),
        compiler_params=layout.blocks.compiler_params(interpret=interpret),
        interpret=interpret,
        name="fused_head",
    )
    return dz1, tally, state
