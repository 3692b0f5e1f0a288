"""Kernel 3, dL/dW1 and the Adam update of W1 in place, one tile per program.

Grid (Kp / bk, Hp / bh): program (k, j) owns the (bk, bh) tile W1[k, j] and computes

    dL/dW1[k, j] = x[:, k]ᵀ dL/dz1[:, j]        (a loop over the batch in `blocks.batch` rows)

then updates the tile of W1 and of its moments (and of its average) where they lie
(`input_output_aliases`): each of W1, m and v is read and written once per step, the least
any Adam step can move. With K = 784 and H = 512 the default (64, 32) tiles make 13 x 16 =
208 programs: enough to keep all 132 SMs of an H100 busy, where 8 programs were measured
to be far too few. Padded columns of x are zero and padded columns of dL/dz1 are zero (as
are its padded rows), so the padded rows and columns of W1 get a zero gradient and stay zero.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxcalc.fused import adam
from jaxcalc.fused.batch import Reader, Source, source_specs
from jaxcalc.fused.layout import Layout


def _update_kernel(step_ref, coefs_ref, *refs, layout: Layout, hyper: adam.Hyper, n_source: int):
    src = Reader(step_ref, refs[:n_source])
    dz1_ref, *state = refs[n_source:]
    group = len(state) // 2
    state_in, state_out = state[:group], state[group:]
    bl = layout.blocks
    bb, bk = bl.batch, bl.k
    cols = pl.ds(pl.program_id(0) * bk, bk)

    def batch_block(c, acc):
        x = src.x(src.rows(c * bb, bb), cols)
        return acc + bl.dot(x, dz1_ref[pl.ds(c * bb, bb), :], trans_a=True)

    zeros = jnp.zeros(state_out[0].shape, jnp.float32)
    dw1 = jax.lax.fori_loop(0, layout.b_pad // bb, batch_block, zeros)
    coefs = adam.at(coefs_ref, src.step)
    adam.store(state_out, adam.update(adam.load(state_in), dw1, coefs, hyper))


def update_w1(
    step: jax.Array,
    coefs: jax.Array,
    source: Source,
    dz1: jax.Array,
    group: tuple[jax.Array, ...],
    layout: Layout,
    hyper: adam.Hyper,
    *,
    interpret: bool = False,
) -> tuple[jax.Array, ...]:
    """W1's group (θ, m, v[, average]), padded (Kp, Hp), after one Adam step on xᵀ dL/dz1."""
    bl = layout.blocks
    bk, bh, bp = bl.k, bl.hidden, layout.b_pad
    tile = pl.BlockSpec((bk, bh), lambda k, j: (k, j))
    operands = source.operands()
    first = 2 + len(operands) + 1  # the group's first operand
    return pl.pallas_call(
        functools.partial(_update_kernel, layout=layout, hyper=hyper, n_source=len(operands)),
        out_shape=tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in group),
        grid=(layout.k_pad // bk, layout.h_pad // bh),
        in_specs=[
            pl.no_block_spec,  # the step index
            pl.no_block_spec,  # the epoch's table of Adam coefficients
            *source_specs(source),
            pl.BlockSpec((bp, bh), lambda k, j: (0, j)),  # dL/dz1 columns of block j
            *(tile for _ in group),
        ],
        out_specs=tuple(tile for _ in group),
        input_output_aliases={first + i: i for i in range(len(group))},
        compiler_params=bl.compiler_params(),
        interpret=interpret,
        name="fused_update_w1",
    )(step, coefs, *operands, dz1, *group)
