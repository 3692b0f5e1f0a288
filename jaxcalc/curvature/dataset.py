"""A product over a whole data set: the mean loss's Hessian (or Gauss-Newton) times v,
summed over chunks of rows in a `lax.scan`, so memory does not grow with the rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.tree_util import Partial

from jaxcalc.curvature.operator import Params
from jaxcalc.validation import InputError, check_positive_int


@dataclasses.dataclass(frozen=True)
class _Chunked:
    """(params, x, y, v) ↦ the mean of `product` over the rows of x, chunk by chunk."""

    product: Callable
    batch_size: int | None
    kwargs: tuple[tuple[str, Any], ...]

    def __call__(self, params: Params, x: jax.Array, y: jax.Array, v: Params) -> Params:
        kw = dict(self.kwargs)
        n = x.shape[0]
        b = min(self.batch_size or n, n)
        m, rest = divmod(n, b)
        if m == 1 and not rest:  # one chunk: no loop
            return self.product(params, x, y, v, **kw)

        def body(total: Params, xy: tuple[jax.Array, jax.Array]) -> tuple[Params, None]:
            out = self.product(params, xy[0], xy[1], v, **kw)
            return jax.tree.map(lambda t, o: t + b * o, total, out), None

        chunks = (x[: m * b].reshape(m, b, *x.shape[1:]), y[: m * b].reshape(m, b, *y.shape[1:]))
        total, _ = jax.lax.scan(body, jax.tree.map(jnp.zeros_like, v), chunks)
        if rest:
            out = self.product(params, x[m * b :], y[m * b :], v, **kw)
            total = jax.tree.map(lambda t, o: t + rest * o, total, out)
        return jax.tree.map(lambda t: t / n, total)


def data_matvec(
    product: Callable,
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    batch_size: int | None = None,
    **kwargs: Any,
) -> Partial:
    """v ↦ `product(params, x, y, v, **kwargs)` for the mean loss over all rows of (x, y).

    The rows are taken `batch_size` at a time in a `lax.scan` and their products summed,
    weighted by rows (the mean loss is the row-weighted mean of the chunks' mean losses), so
    memory is that of one chunk. `product` has `mlp.hvp`'s signature (`mlp.ggn_vp` too);
    `kwargs` (activation, loss, output) are static. Equal arguments give an equal matvec,
    so a new θ of the same shape reuses the compiled Lanczos. x and y need the same number
    of rows, at least one (a mean over no rows is no loss).
    """
    if batch_size is not None:
        check_positive_int("batch_size", batch_size)
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim == 0 or x.shape[0] == 0:
        raise InputError(f"x must hold at least one row, got shape {x.shape}")
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise InputError(f"y must have one row per row of x ({x.shape[0]}), got shape {y.shape}")
    func = _Chunked(product, batch_size, tuple(sorted(kwargs.items())))
    return Partial(func, params, x, y)
