"""Where the kernels read a step's batch from, and the step's index into per-epoch tables.

Two sources, one reader:

- a batch made by XLA each step (when the images are distorted first): `x` (Bp, Kp)
  float32 and `labels` (Bp,) int32, padded (`layout.pad_batch`); row r of the batch is row r;
- the whole training set, resident (no distortion: nothing for XLA to do per step):
  `x` the images (N, Kp) uint8 padded once per epoch, `labels` (N,) int32 and `order`
  (steps, Bp) int32, the epoch's permutation; row r of step i is image `order[i, r]`,
  gathered by the kernels themselves and scaled to [0, 1] there, as `training.make_step`
  scales it. Padded batch rows point at image 0 and are masked like any padded row.

Every kernel also gets the step index `i` ((1,) int32) to read its row of the epoch's
table of Adam coefficients and to write its loss into the epoch's losses.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl


class Source(NamedTuple):
    """The arrays a step's batch is read from (see the module docstring)."""

    x: jax.Array  # (Bp, Kp) float32, or the images (N, Kp) uint8
    labels: jax.Array  # (Bp,) or (N,) int32
    order: jax.Array | None = None  # (steps, Bp) int32 when the images are resident

    def operands(self) -> tuple[jax.Array, ...]:
        return tuple(a for a in self if a is not None)


class Reader:
    """Inside a kernel: rows of the current step's batch, from the refs of a `Source`."""

    def __init__(self, step_ref: Any, refs: tuple):
        self.step = step_ref[0]
        self.x_ref, self.labels_ref = refs[0], refs[1]
        self.order_ref = refs[2] if len(refs) == 3 else None

    def rows(self, start: Any, size: int) -> Any:
        """Rows start .. start + size of the batch, as an index into `x` and `labels`."""
        if self.order_ref is None:
            return pl.ds(start, size)
        return self.order_ref[self.step, pl.ds(start, size)]

    def x(self, rows: Any, cols: Any) -> jax.Array:
        """x[rows, cols] as float32 in [0, 1]."""
        x = self.x_ref[rows, cols]
        if x.dtype == jnp.uint8:
            x = x.astype(jnp.float32) / 255.0
        return x

    def labels(self, rows: Any) -> jax.Array:
        return self.labels_ref[rows]


def source_specs(source: Source) -> list:
    """Whole-array specs for the source's refs (the kernels index them themselves)."""
    return [pl.no_block_spec for _ in source.operands()]
