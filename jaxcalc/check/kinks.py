"""Kinks: points where f is not differentiable, and what the checker does about them.

A central difference that straddles a kink (ReLU at 0, |x| at 0, `max` at a tie, a `where`
branch point) averages two slopes: it is wrong by O(slope jump), however small h is, while
yours picks one side. The one-sided differences disagree, and so do D(h) and D(h/2): the
reference's own error estimate stays large (`reference`).

- A kink within reach but not at x: the step search of `reference` shrinks h below the
  kink's distance (by 1e2 and 1e4), and the estimate becomes smooth again. Nothing is hidden:
  the bound is what the final step gives, so a wrong slope on either branch still fails.
- A kink at x itself (or a jump): no step helps, the probe is "rough". The point is then
  moved, by δ = √h₀ relative (h₀ = eps^(1/3), so δ ≈ 2.5e-3 in float64: a thousand steps
  away from the kink, yet close to x), to x + δ max(1, |x|) ⊙ z, z ~ N(0, I), and the whole
  check (yours and the reference) is redone there and says so. Up to `MOVES` times; a probe
  still rough after that is left out of its row, which is then only "warn": f is not
  differentiable near x.

A kink never makes a row fail (no false alarm), and a real bug is checked at the moved
point, where yours and the reference are both well defined.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

MOVES = 2
TRIES = 5  # draws of the moved point before giving up (f not finite at all of them)


def distance(dtype) -> float:
    """δ = √(eps^(1/3)) of `dtype`: how far, relative to max(1, |x|), the point moves."""
    return float(jnp.finfo(dtype).eps) ** (1 / 6)


def move(
    point: list[np.ndarray], F: Callable, rng: np.random.Generator, dtype
) -> list[np.ndarray] | None:
    """A point near `point` where F is finite, or None (see the module docstring); `dtype`
    is the float type the reference works in (float64 for float32 code, mostly)."""
    delta = distance(dtype)
    for _ in range(TRIES):
        moved = [
            (x + delta * np.maximum(1.0, np.abs(x)) * rng.standard_normal(x.shape)).astype(x.dtype)
            for x in point
        ]
        outs = F([jnp.asarray(m) for m in moved])
        if all(np.all(np.isfinite(np.asarray(o))) for o in outs):
            return moved
    return None
