"""Yours against the reference, block by block: the numbers compared, the error, the bound.

A block is the pair (argument leaf a, output leaf o) in one mode. In full mode the numbers are
the block's Jacobian entries, laid out like `jax.jacobian` (out shape + argument shape); in
fast mode, per probe k, the vector J_oa d_k (forward) or the number v_kᵀ J_oa d_k (reverse,
grad_fn). With yours y, the reference r and its element-wise error bound e over those numbers:

    error = ‖y − r‖ / ‖r‖        bound = (SAFETY ‖e‖ + floor ‖r‖) / ‖r‖

and the block fails when error > bound. SAFETY = 3 covers the chance that |D(h) − D(h/2)|
underestimates the rounding noise it measures; floor = √eps of the working type (of yours,
if yours computes in a lower precision than the reference) is the part of the digits no
check can vouch for. A bound above `WEAK` means the reference could not resolve a 0.1 %
error: the block is only "warn".
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxcalc.check.diagnosis import SAFETY

WEAK = 1e-3


class Block(NamedTuple):
    y: np.ndarray  # yours, at the working precision
    r: np.ndarray  # the reference
    e: np.ndarray  # its error bound, element-wise
    y32: np.ndarray | None  # yours at the native precision (float32), if run twice
    mask: np.ndarray  # the numbers that hold a comparison (a finite reference)
    square: tuple[tuple[int, int], ...]  # axes pairs where a transpose can be looked for
    whole: bool  # the numbers are a whole block (full mode)


def _jacobian(cols: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(n_in, *out) columns J (s_i e_i) -> (*out, *in) Jacobian entries."""
    out = cols.shape[1:]
    jac = np.moveaxis(cols, 0, -1).reshape((*out, *scale.shape))
    return jac / scale.reshape((1,) * len(out) + scale.shape)


def _squares(shape: tuple[int, ...], offset: int) -> tuple[tuple[int, int], ...]:
    return ((offset, offset + 1),) if len(shape) == 2 and shape[0] == shape[1] > 1 else ()


def full_block(
    columns: bool,
    y_raw: np.ndarray,
    y32_raw: np.ndarray | None,
    value: np.ndarray,
    error: np.ndarray,
    scale: np.ndarray,
    out_shape: tuple[int, ...],
) -> Block:
    """Full mode: yours as JAX gives it (`columns`, forward mode: (n_in, *out); else rows,
    reverse mode (n_out, *in), or grad_fn's gradient (*in)) against the reference's columns,
    all as Jacobian entries."""
    in_shape = scale.shape

    def layout(y):
        if y is None:
            return None
        if columns:
            return _jacobian(y, scale)
        return y.reshape((*out_shape, *in_shape))

    r, e = _jacobian(value, scale), _jacobian(error, scale)
    squares = _squares(out_shape, 0) + _squares(in_shape, len(out_shape))
    return Block(layout(y_raw), r, e, layout(y32_raw), _finite(r, e), squares, True)


def _finite(r: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Where the reference and its bound are finite: f is finite next to the point."""
    return np.isfinite(r) & np.isfinite(e)


def fast_fwd(y, y32, value, error, out_shape) -> Block:
    """Fast mode, forward: J_oa d_k per probe k, (k, *out)."""
    return Block(y, value, error, y32, _finite(value, error), _squares(out_shape, 1), False)


def fast_projected(y, y32, value, error, cot) -> Block:
    """Fast mode, reverse or grad_fn: yours already projected, y_k = (v_kᵀ J)·d_k, against
    v_kᵀ (J d_k) of the reference."""
    k = value.shape[0]
    flat = lambda a: a.reshape(k, -1)  # noqa: E731
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.sum(flat(cot) * flat(value), axis=1)
        e = np.sum(np.abs(flat(cot)) * flat(error), axis=1)
    return Block(y, r, e, y32, _finite(r, e), (), False)


class Measure(NamedTuple):
    error: float
    bound: float
    f32: float | None
    failed: bool  # error > bound, or yours not finite
    f32_failed: bool  # the native run is not finite where the working run is


def measure(b: Block, floor: float) -> Measure:
    """The block's relative error and bound (module docstring), and the native run's drift."""
    y, r, e = b.y[b.mask], b.r[b.mask], b.e[b.mask]
    if y.size == 0:
        return Measure(0.0, np.inf, None, False, False)
    with np.errstate(invalid="ignore", over="ignore"):
        gap = float(np.linalg.norm(y - r))
        size = float(np.linalg.norm(r))
        bound_abs = SAFETY * float(np.linalg.norm(e)) + floor * size
    scale = size if size > 0 else (float(np.linalg.norm(y)) or 1.0)
    finite = bool(np.all(np.isfinite(y)))
    failed = not finite or not np.isfinite(gap) or gap > bound_abs
    f32 = None
    f32_failed = False
    if b.y32 is not None:
        y32 = b.y32[b.mask]
        f32_failed = finite and not bool(np.all(np.isfinite(y32)))
        f32 = float(np.linalg.norm(y32 - y)) / scale if not f32_failed else float("inf")
    return Measure(gap / scale, bound_abs / scale, f32, failed, f32_failed)
