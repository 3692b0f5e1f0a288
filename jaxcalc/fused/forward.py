"""Kernel 1, the forward pass: hidden activations and per-block partial logits.

Grid (Bp / bb, Hp / bh): program (r, j) owns batch block r and hidden block j and computes

    z1 = x[r] @ W1[:, j] + b1[j]        (a loop over K in steps of `blocks.k`)
    h1 = relu(z1)                        stored: the backward pass needs [h1 > 0] and h1
    P[j, r] = h1 @ W2[j, :] (+ b2 in block j = 0)

so the logits are z2 = Σ_j P[j] (summed by kernel 2, which needs all of them: the only
reason for a second kernel). Padded hidden columns have zero weights and bias, so their
h1 is relu(0) = 0 and they add nothing. x is read through `batch.Reader`: the step's batch,
or rows gathered from the resident images.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxcalc import activations
from jaxcalc.fused.batch import Reader, Source, source_specs
from jaxcalc.fused.layout import Blocks, Layout


def _forward_kernel(step_ref, *refs, blocks: Blocks, n_source: int):
    src = Reader(step_ref, refs[:n_source])
    w1_ref, b1_ref, w2_ref, b2_ref, h_ref, part_ref = refs[n_source:]
    bb, bk = blocks.batch, blocks.k
    rows = src.rows(pl.program_id(0) * bb, bb)

    def k_step(k, acc):
        cols = pl.ds(k * bk, bk)
        return acc + blocks.dot(src.x(rows, cols), w1_ref[cols, :])

    acc = jnp.zeros(h_ref.shape, jnp.float32)
    z1 = jax.lax.fori_loop(0, w1_ref.shape[0] // bk, k_step, acc) + b1_ref[...][None, :]
    h1 = activations.relu(z1)
    h_ref[...] = h1
    b2 = jnp.where(pl.program_id(1) == 0, b2_ref[...], 0.0)
    part_ref[...] = blocks.dot(h1, w2_ref[...]) + b2[None, :]


def forward(
    step: jax.Array,
    source: Source,
    params: dict[str, jax.Array],
    layout: Layout,
    *,
    interpret: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """(h1 (Bp, Hp), partial logits P (Hp / bh, Bp, Op)) of step `step`'s batch."""
    bl = layout.blocks
    bb, bh, kp, op = bl.batch, bl.hidden, layout.k_pad, layout.o_pad
    nb, nh = layout.b_pad // bb, layout.h_pad // bh
    operands = source.operands()
    return pl.pallas_call(
        functools.partial(_forward_kernel, blocks=bl, n_source=len(operands)),
        out_shape=(
            jax.ShapeDtypeStruct((layout.b_pad, layout.h_pad), jnp.float32),
            jax.ShapeDtypeStruct((nh, layout.b_pad, op), jnp.float32),
        ),
        grid=(nb, nh),
        in_specs=[
            pl.no_block_spec,  # the step index
            *source_specs(source),
            pl.BlockSpec((kp, bh), lambda r, j: (0, j)),  # W1 columns of block j
            pl.BlockSpec((bh,), lambda r, j: (j,)),  # b1
            pl.BlockSpec((bh, op), lambda r, j: (j, 0)),  # W2 rows of block j
            pl.BlockSpec((op,), lambda r, j: (0,)),  # b2
        ],
        out_specs=(
            pl.BlockSpec((bb, bh), lambda r, j: (r, j)),
            pl.BlockSpec((None, bb, op), lambda r, j: (j, r, 0)),
        ),
        compiler_params=bl.compiler_params(),
        interpret=interpret,
        name="fused_forward",
    )(step, *operands, params["W1"], params["b1"], params["W2"], params["b2"])
