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
from jaxcalc.fused.call import each, pallas_call, shapes
from jaxcalc.fused.layout import Layout


def _update_kernel(
    step_ref,
    coefs_ref,
    source: Source,
    dz1_ref,
    group: adam.Group,
    new_group: adam.Group,
    *,
    layout: Layout,
    hyper: adam.Hyper,
):
    src = Reader(step_ref, source)
    bl = layout.blocks
    bb, bk = bl.batch, bl.k
    cols = pl.ds(pl.program_id(0) * bk, bk)

    def batch_block(c, acc):
        x = src.x(src.rows(c * bb, bb), cols)
        return acc + bl.dot(x, dz1_ref[pl.ds(c * bb, bb), :], trans_a=True)

    zeros = jnp.zeros(new_group.theta.shape, jnp.float32)
    dw1 = jax.lax.fori_loop(0, layout.b_pad // bb, batch_block, zeros)
    coefs = adam.at(coefs_ref, src.step)
    adam.store(new_group, adam.update(adam.load(group), dw1, coefs, hyper))


def update_w1(
    step: jax.Array,
    coefs: jax.Array,
    source: Source,
    dz1: jax.Array,
    group: adam.Group,
    layout: Layout,
    hyper: adam.Hyper,
    *,
    interpret: bool = False,
) -> adam.Group:
    """W1's `adam.Group`, padded (Kp, Hp), after one Adam step on xᵀ dL/dz1, in place
    (`input_output_aliases`) when the caller donates it."""
    bl = layout.blocks
    bk, bh, bp = bl.k, bl.hidden, layout.b_pad
    tiles = each(pl.BlockSpec((bk, bh), lambda k, j: (k, j)), group)
    (group,) = pallas_call(
        functools.partial(_update_kernel, layout=layout, hyper=hyper),
        inputs={
            "step": (step, pl.no_block_spec),
            "coefs": (coefs, pl.no_block_spec),  # the epoch's table of Adam coefficients
            "source": (source, source_specs(source)),
            "dz1": (dz1, pl.BlockSpec((bp, bh), lambda k, j: (0, j))),  # dL/dz1, block j
            "group": (group, tiles),
        },
        outputs={"group": (shapes(group), tiles)},
        in_place=("group",),
        grid=(layout.k_pad // bk, layout.h_pad // bh),
        compiler_params=bl.compiler_params(interpret=interpret),
        interpret=interpret,
        name="fused_update_w1",
    )
    return group
