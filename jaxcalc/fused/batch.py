"""Where the kernels read a step's batch from, and the step's index into per-epoch tables.

Two sources, one reader:

- a batch made by XLA each step (when the images are distorted first): `x` (Bp, Kp)
  float32 and `labels` (Bp,) int32, padded (`layout.pad_batch`); row r of the batch is row r;
- the whole training set, resident (no distortion: nothing for XLA to do per step,
  `resident`): `x` the images (N, Kp) uint8 padded once per epoch, `labels` (N,) int32 and
  `order` (steps, Bp) int32, the epoch's permutation; row r of step i is image
  `order[i, r]`, gathered by the kernels themselves and scaled to [0, 1] there, as the XLA
  step scales it. Padded batch rows point at image 0 and are masked like any padded row.

Every kernel also gets the step index `i` ((1,) int32) to read its row of the epoch's
table of Adam coefficients and to write its loss into the epoch's losses.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxcalc.fused.layout import Layout, pad_to


class Source(NamedTuple):
    """The arrays a step's batch is read from (see the module docstring); a pytree, so the
    kernels get it whole, as refs of the same names."""

    x: Any  # (Bp, Kp) float32, or the images (N, Kp) uint8
    labels: Any  # (Bp,) or (N,) int32
    order: Any = None  # (steps, Bp) int32 when the images are resident


def resident(images: jax.Array, labels: jax.Array, order: jax.Array, layout: Layout) -> Source:
    """The training set as the kernels gather it (no distortion): images (N, Kp) uint8,
    labels int32, the order padded to (steps, Bp) (padded rows: image 0, masked)."""
    x = pad_to(images.reshape(images.shape[0], -1), (images.shape[0], layout.k_pad))
    order = pad_to(order.astype(jnp.int32), (order.shape[0], layout.b_pad))
    return Source(x, labels.astype(jnp.int32), order)


def source_specs(source: Source) -> Source:
    """Whole-array specs for the source's refs (the kernels index them themselves)."""
    return jax.tree.map(lambda _: pl.no_block_spec, source)


class Reader:
    """Inside a kernel: rows of the current step's batch, from the refs of a `Source`."""

    def __init__(self, step_ref: Any, source: Source):
        self.step = step_ref[0]
        self.source = source

    def rows(self, start: Any, size: int) -> Any:
        """Rows start .. start + size of the batch, as an index into `x` and `labels`."""
        if self.source.order is None:
            return pl.ds(start, size)
        return self.source.order[self.step, pl.ds(start, size)]

    def x(self, rows: Any, cols: Any) -> jax.Array:
        """x[rows, cols] as float32 in [0, 1]."""
        x = self.source.x[rows, cols]
        if x.dtype == jnp.uint8:
            x = x.astype(jnp.float32) / 255.0
        return x

    def labels(self, rows: Any) -> jax.Array:
        return self.source.labels[rows]
