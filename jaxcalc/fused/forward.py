"""Kernel 1, the forward pass: hidden activations and per-block partial logits.

Grid (Bp / bb, Hp / bh): program (r, j) owns batch block r and hidden block j and computes

    z1 = x[r] @ W1[:, j] + b1[j]        (a loop over K in steps of `blocks.k`)
    h1 = relu(z1)                        stored: the backward pass needs [h1 > 0] and h1
    P[j, r] = h1 @ W2[j, :] (+ b2 in block j = 0)

so the logits are z2 = Σ_j P[j] (summed by kernel 2, which needs all of them: the only
reason for a second kernel). Padded hidden columns have zero weights and bias, so their
h1 is relu(0) = 0 and they add nothing. x is read through `batch.Reader`: the step's batch,
or rows gathered from the resident images. Each program reads all of W1's column block j,
so W1 is read once per batch block: Bp / bb times a step (8 for the default recipe, a batch
of 256 in blocks of 32).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxcalc import activations
from jaxcalc.fused.batch import Reader, Source, source_specs
from jaxcalc.fused.call import pallas_call
from jaxcalc.fused.layout import Blocks, Layout


def _forward_kernel(step_ref, source: Source, params: dict, h_ref, part_ref, *, blocks: Blocks):
    src = Reader(step_ref, source)
    w1_ref, b1_ref, w2_ref, b2_ref = (params[name] for name in ("W1", "b1", "W2", "b2"))
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
    param_specs = {
        "W1": pl.BlockSpec((kp, bh), lambda r, j: (0, j)),  # W1 columns of block j
        "b1": pl.BlockSpec((bh,), lambda r, j: (j,)),
        "W2": pl.BlockSpec((bh, op), lambda r, j: (j, 0)),  # W2 rows of block j
        "b2": pl.BlockSpec((op,), lambda r, j: (0,)),
    }
    return pallas_call(
        functools.partial(_forward_kernel, blocks=bl),
        inputs={
            "step": (step, pl.no_block_spec),
            "source": (source, source_specs(source)),
            "params": (params, param_specs),
        },
        outputs={
            "h1": (
                jax.ShapeDtypeStruct((layout.b_pad, layout.h_pad), jnp.float32),
                pl.BlockSpec((bb, bh), lambda r, j: (r, j)),
            ),
            "part": (
                jax.ShapeDtypeStruct((nh, layout.b_pad, op), jnp.float32),
                pl.BlockSpec((None, bb, op), lambda r, j: (j, r, 0)),
            ),
        },
        grid=(nb, nh),
        compiler_params=bl.compiler_params(interpret=interpret),
        interpret=interpret,
        name="fused_forward",
    )
