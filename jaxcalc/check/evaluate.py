"""Evaluating F and its derivatives along a batch of directions, eagerly.

Every quantity the checker needs is one batched call per argument leaf (or output leaf):

    along(F, x, a, dirs, t)   F(x + t_b d_b) for each direction d_b of leaf a    (B, *out)
    jvps(F, x, a, dirs)       J_a d_b for each direction                         (B, *out)
    vjps(pullback, outs, o, cots)   v_bᵀ J_o for each cotangent of output leaf o (B, *leaf)

Nothing is jit-compiled: a check runs each function once, and compiling it (a few tenths of
a second on a CPU) would cost more than running it. A batch of at most `LOOP_MAX` items runs
item by item, so that eager dispatch reuses the primitives JAX compiled for f's own shapes
(fast mode, a few probes per leaf); a larger batch (full mode) is `jax.vmap`ped, in chunks
of at most `CHUNK_NUMBERS` numbers, or item by item if f cannot be batched (Python control
flow on values, a callback). A direction is dense (`Directions.dense`) or a scaled unit
vector s_b e_{i_b} (`index`, `scale`), made dense a chunk at a time, so that full mode and the
diagnosis of a large leaf never hold an identity matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

#: Largest vmapped chunk, counted in numbers of the batched leaf (64 MiB in float64).
CHUNK_NUMBERS = 2**23
LOOP_MAX = 64


class Directions(NamedTuple):
    """B directions in the space of one leaf of `shape`: dense rows, or s_b e_{i_b}."""

    shape: tuple[int, ...]
    dense: np.ndarray | None = None  # (B, *shape)
    index: np.ndarray | None = None  # (B,) flat indices of unit directions
    scale: np.ndarray | None = None  # (B,) their lengths

    @property
    def count(self) -> int:
        return len(self.dense) if self.dense is not None else len(self.index)

    def take(self, rows: np.ndarray) -> Directions:
        if self.dense is not None:
            return self._replace(dense=self.dense[rows])
        return self._replace(index=self.index[rows], scale=self.scale[rows])

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Directions lo..hi as a dense host array (hi − lo, *shape)."""
        if self.dense is not None:
            return self.dense[lo:hi]
        out = np.zeros((hi - lo, math.prod(self.shape)))
        out[np.arange(hi - lo), self.index[lo:hi]] = self.scale[lo:hi]
        return out.reshape((hi - lo, *self.shape))


def batched(
    fn: Callable, count: int, chunk: Callable[[int, int], tuple], per: int
) -> list[np.ndarray]:
    """[fn(*item) for each item] stacked, per output, as host arrays; `chunk(lo, hi)` makes
    items lo..hi (a tuple of host arrays), each about `per` numbers (module docstring)."""
    if count <= LOOP_MAX:
        return _loop(fn, chunk(0, count))
    size = max(1, CHUNK_NUMBERS // max(1, per))
    parts = [_vmapped(fn, chunk(lo, min(lo + size, count))) for lo in range(0, count, size)]
    return [np.concatenate(p) for p in zip(*parts, strict=True)]


def _loop(fn: Callable, items: tuple) -> list[np.ndarray]:
    rows = [fn(*(jnp.asarray(it[j]) for it in items)) for j in range(len(items[0]))]
    return [np.stack([np.asarray(r[i]) for r in rows]) for i in range(len(rows[0]))]


def _vmapped(fn: Callable, items: tuple) -> list[np.ndarray]:
    try:
        out = jax.vmap(fn)(*(jnp.asarray(it) for it in items))
    except Exception:  # noqa: BLE001 - not batchable: one at a time (re-raises a real error)
        return _loop(fn, items)
    return [np.asarray(o) for o in out]


def replace(x: Sequence[jax.Array], a: int, value: jax.Array) -> list[jax.Array]:
    return [value if i == a else xi for i, xi in enumerate(x)]


def _zeros(arrays: Sequence[jax.Array]) -> list[jax.Array]:
    """Zeros like each array, made on the host (no primitive to compile)."""
    return [jnp.asarray(np.zeros(np.shape(y), y.dtype)) for y in arrays]


def along(
    F: Callable, x: Sequence[jax.Array], a: int, dirs: Directions, t: np.ndarray
) -> list[np.ndarray]:
    """F(x with leaf a moved by t_b d_b), per output leaf (B, *out_shape). The points are
    made on the host, in leaf a's float type."""
    base = np.asarray(x[a])
    dtype = base.dtype

    def points(lo, hi):
        steps = t[lo:hi].reshape((-1,) + (1,) * base.ndim)
        return ((base.astype(np.float64) + steps * dirs.rows(lo, hi)).astype(dtype),)

    return batched(lambda p: F(replace(x, a, p)), dirs.count, points, math.prod(dirs.shape))


def jvps(F: Callable, x: Sequence[jax.Array], a: int, dirs: Directions) -> list[np.ndarray]:
    """J_a d for each direction d of leaf a: per output leaf, (B, *out_shape)."""
    zeros, dtype = _zeros(x), np.dtype(x[a].dtype)

    def one(d):
        return jax.jvp(F, (list(x),), (replace(zeros, a, d),))[1]

    return batched(
        one, dirs.count, lambda lo, hi: (dirs.rows(lo, hi).astype(dtype),), math.prod(dirs.shape)
    )


def linearize_vjp(F: Callable, x: Sequence[jax.Array]) -> tuple[list[jax.Array], Callable]:
    """F(x) and its VJP, v (a list over output leaves) -> a list over input leaves."""
    outs, pullback = jax.vjp(F, list(x))
    return outs, lambda v: pullback(v)[0]


def vjps(
    pullback: Callable, outs: Sequence[jax.Array], o: int, cots: Directions, in_numbers: int
) -> list[np.ndarray]:
    """vᵀ J_o for each cotangent v of output leaf o: per input leaf, (C, *leaf_shape);
    `in_numbers`, the size of all input leaves, is what each item makes."""
    zeros, dtype = _zeros(outs), np.dtype(outs[o].dtype)
    return batched(
        lambda v: pullback(replace(zeros, o, v)),
        cots.count,
        lambda lo, hi: (cots.rows(lo, hi).astype(dtype),),
        math.prod(cots.shape) + in_numbers,
    )
