"""Kernel 2, the head: softmax cross-entropy, dL/dz2, the backward pass through W2, and the
Adam update of W2, b1 and b2 in place.

Grid (Hp / bh,): program j owns hidden block j. Looping over the batch in blocks of
`blocks.batch` rows, it sums the partial logits of kernel 1 and, the chain rule line by line
(as `mlp.network._backward`):

    z2     = Σ_i P[i]                            (b2 is already in P[0])
    dL/dz2 = (softmax(z2) − y) / B               (soft targets y: (softmax(z2) Σ_k y_k − y) / B)
    dL/da1 = dL/dz2 W2[j]ᵀ                        (the old W2, read before it is updated)
    dL/dz1 = dL/da1 ⊙ [h1 > 0]                    stored for kernel 3
    dL/dW2[j] = h1[:, j]ᵀ dL/dz2     dL/db1[j] = Σ_rows dL/dz1     dL/db2 = Σ_rows dL/dz2

then updates W2[j] and b1[j] with their moments (`jaxcalc.fused.adam`); program 0 alone also
updates b2 and writes the loss L = −1/B Σ y log softmax(z2) into the epoch's losses. Every
program computes the same softmax (a few KB): cheaper than another kernel. No program reads
what another writes: b2 is read only by kernel 1 and by program 0 here, each W2 and b1 block
only by its own program.

Masks keep the padding inert: padded logit columns are −∞ before the softmax (probability 0,
target 0), padded batch rows (by their index, whatever their label) get dL/dz2 = 0 and add
nothing to the loss, hence nothing to any gradient.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxcalc import activations
from jaxcalc.fused import adam
from jaxcalc.fused.batch import Reader, Source, source_specs
from jaxcalc.fused.layout import Layout


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
    *refs,
    layout: Layout,
    hyper: adam.Hyper,
    smoothing: float,
    n_source: int,
):
    src = Reader(step_ref, refs[:n_source])
    part_ref, h_ref, _, *rest = refs[n_source:]
    n = (len(rest) - 2) // 2  # refs of W2, b1, b2 with their moments (and averages)
    state_in, (dz1_ref, losses_ref), state_out = rest[:n], rest[n : n + 2], rest[n + 2 :]
    g = n // 3
    w2_in, b1_in, b2_in = (state_in[k * g : (k + 1) * g] for k in range(3))
    w2_out, b1_out, b2_out = (state_out[k * g : (k + 1) * g] for k in range(3))
    bl = layout.blocks
    bb, op, n_parts = bl.batch, layout.o_pad, part_ref.shape[0]
    w2 = w2_in[0][...]  # the old W2 block, read before it is updated

    def batch_block(c, carry):
        dw2, db1, db2, xent = carry
        rows = pl.ds(c * bb, bb)
        z2 = jax.lax.fori_loop(
            0, n_parts, lambda i, z: z + part_ref[i, rows, :], jnp.zeros((bb, op), jnp.float32)
        )
        labels = src.labels(src.rows(c * bb, bb))
        dz2, xent_c = softmax_cross_entropy(z2, labels, c * bb, layout, smoothing)
        h1 = h_ref[rows, :]
        dz1 = bl.dot(dz2, w2, trans_b=True) * activations.relu_grad_from_output(h1)
        dz1_ref[rows, :] = dz1
        dw2 = dw2 + bl.dot(h1, dz2, trans_a=True)
        return dw2, db1 + jnp.sum(dz1, axis=0), db2 + jnp.sum(dz2, axis=0), xent + xent_c

    zeros = (jnp.zeros(w2.shape, jnp.float32), jnp.zeros(w2.shape[:1], jnp.float32))
    init = (*zeros, jnp.zeros((op,), jnp.float32), jnp.zeros((), jnp.float32))
    dw2, db1, db2, xent = jax.lax.fori_loop(0, layout.b_pad // bb, batch_block, init)
    coefs = adam.at(coefs_ref, src.step)
    adam.store(w2_out, adam.update(adam.load(w2_in), dw2, coefs, hyper))
    adam.store(b1_out, adam.update(adam.load(b1_in), db1, coefs, hyper))

    @pl.when(pl.program_id(0) == 0)
    def _():
        adam.store(b2_out, adam.update(adam.load(b2_in), db2, coefs, hyper))
        losses_ref[src.step] = -xent / layout.batch


HEAD_NAMES = ("W2", "b1", "b2")  # the parameters kernel 2 updates


def _flat_state(groups: dict, layout: Layout) -> tuple[list, list]:
    """The groups of W2, b1 and b2 as one list of arrays, and the block spec of each:
    program j owns rows j of W2 and b1; b2 is whole (updated by program 0 alone)."""
    bh, op = layout.blocks.hidden, layout.o_pad
    specs = {
        "W2": pl.BlockSpec((bh, op), lambda j: (j, 0)),
        "b1": pl.BlockSpec((bh,), lambda j: (j,)),
        "b2": pl.BlockSpec((op,), lambda j: (0,)),
    }
    arrays = [a for name in HEAD_NAMES for a in groups[name]]
    return arrays, [specs[name] for name in HEAD_NAMES for _ in groups[name]]


def head(
    step: jax.Array,
    coefs: jax.Array,
    source: Source,
    part: jax.Array,
    h1: jax.Array,
    losses: jax.Array,
    groups: dict[str, tuple[jax.Array, ...]],
    layout: Layout,
    hyper: adam.Hyper,
    *,
    smoothing: float = 0.0,
    interpret: bool = False,
) -> tuple[jax.Array, jax.Array, dict[str, tuple[jax.Array, ...]]]:
    """(dL/dz1 (Bp, Hp), `losses` with this step's loss at index `step`, the updated groups
    "W2", "b1", "b2").

    `groups[name]` is (θ, m, v) or (θ, m, v, average), padded; they and `losses` are
    updated in place (`input_output_aliases`) when the caller donates them.
    """
    bh, bp = layout.blocks.hidden, layout.b_pad
    state, state_specs = _flat_state(groups, layout)
    operands = source.operands()
    first = 2 + len(operands) + 2  # index of `losses` among the operands; the state follows
    outs = pl.pallas_call(
        functools.partial(
            _head_kernel, layout=layout, hyper=hyper, smoothing=smoothing, n_source=len(operands)
        ),
        out_shape=(
            jax.ShapeDtypeStruct((bp, layout.h_pad), jnp.float32),
            jax.ShapeDtypeStruct(losses.shape, losses.dtype),
            *(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in state),
        ),
        grid=(layout.h_pad // bh,),
        in_specs=[
            pl.no_block_spec,  # the step index
            pl.no_block_spec,  # the epoch's table of Adam coefficients
            *source_specs(source),
            pl.BlockSpec(part.shape, lambda j: (0, 0, 0)),  # every partial logit
            pl.BlockSpec((bp, bh), lambda j: (0, j)),  # h1 columns of block j
            pl.no_block_spec,  # the epoch's losses
            *state_specs,
        ],
        out_specs=(
            pl.BlockSpec((bp, bh), lambda j: (0, j)),  # dL/dz1 columns of block j
            pl.no_block_spec,
            *state_specs,
        ),
        input_output_aliases={first + i: 1 + i for i in range(1 + len(state))},
        compiler_params=layout.blocks.compiler_params(),
        interpret=interpret,
        name="fused_head",
    )(step, coefs, *operands, part, h1, losses, *state)
    dz1, losses, rest = outs[0], outs[1], outs[2:]
    g = len(groups["W2"])
    updated = {name: tuple(rest[k * g : (k + 1) * g]) for k, name in enumerate(HEAD_NAMES)}
    return dz1, losses, updated
