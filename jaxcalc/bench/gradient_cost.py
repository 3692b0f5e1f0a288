"""What a gradient costs: finite differences (n + 1 evaluations) against reverse mode.

For f: Rⁿ → R, forward differences need f(x) and f(x + h eᵢ) for i = 1..n, so their
cost grows like n · cost(f). Reverse-mode autodiff (backpropagation) returns all n
partial derivatives for a small constant times cost(f), whatever n is. The points as a
table: `report.cost_table`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxcalc.bench.harness import available_memory, gib
from jaxcalc.calculus import CHUNK
from jaxcalc.validation import InputError, check_positive_int


def chain_function(x: jax.Array) -> jax.Array:
    """f(x) = Σ log(1 + xᵢ²) + Σ sin(xᵢ xᵢ₊₁): O(n) work, every input matters."""
    return jnp.sum(jnp.log1p(x * x)) + jnp.sum(jnp.sin(x[:-1] * x[1:]))


def forward_difference_gradient(f: Callable[[jax.Array], jax.Array], h: float = 1e-3):
    """A jitted x ↦ [(f(x + h eᵢ) − f(x)) / h]ᵢ: n + 1 evaluations of f."""

    @jax.jit
    def grad(x: jax.Array) -> jax.Array:
        fx = f(x)
        bumped = lambda i: f(x.at[i].add(h))  # noqa: E731
        return (jax.lax.map(bumped, jnp.arange(x.size), batch_size=CHUNK) - fx) / h

    return grad


#: Bytes per element of x that f and its gradient hold at once (float32 x, its gradient and
#: XLA's temporaries), generously.
BYTES_PER_ELEMENT = 64
#: Seconds the first finite differences may be predicted to take and still be measured.
ANCHOR_SECONDS = 1.0


class CostPoint(NamedTuple):
    n: int
    function_seconds: float
    reverse_seconds: float
    finite_difference_seconds: float
    finite_difference_measured: bool  # False: extrapolated from the last measured size


def _median_seconds(fn: Callable[[], jax.Array], repeats: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gradient_cost(
    sizes: Sequence[int] = (10, 100, 1_000, 10_000, 100_000),
    *,
    repeats: int = 3,
    max_fd_seconds: float = 3.0,
    progress: Callable[[CostPoint], None] | None = None,
) -> list[CostPoint]:
    """Median seconds of f, of jax.grad(f) and of forward differences, for each n.

    Finite differences cost n + 1 evaluations of an O(n) function, so from the last
    measured size m they are predicted as fd(n) = fd(m) · (n / m)², and before any was
    measured as (n + 1) · f(n); where that prediction exceeds `max_fd_seconds` (for the
    first, to be measured as an anchor, max(`max_fd_seconds`, `ANCHOR_SECONDS`)), or its
    vmapped chunk of `CHUNK` (256) perturbed copies of x would not fit in memory, it is reported
    instead of measured, flagged `finite_difference_measured=False`. It is a lower bound:
    past the caches each evaluation slows further (n = 10⁵ measured 149-268 s on a 2-core
    CPU against ~64 s predicted). `progress` is called with each point. `InputError` for a
    size that is not a positive integer or whose f and gradient would not fit in memory.
    """
    available = available_memory()
    for n in sizes:
        if check_positive_int("sizes", n) * BYTES_PER_ELEMENT > available:
            raise InputError(
                f"sizes: n = {n} needs more memory than is available ({gib(available)}); "
                "use smaller --sizes"
            )
    f = jax.jit(chain_function)
    reverse = jax.jit(jax.grad(chain_function))
    fd = forward_difference_gradient(chain_function)
    points: list[CostPoint] = []
    for n in sizes:
        x = jnp.linspace(-1.0, 1.0, n, dtype=jnp.float32)
        f_s = _median_seconds(lambda: f(x), repeats)  # noqa: B023
        reverse_s = _median_seconds(lambda: reverse(x), repeats)  # noqa: B023
        last = next((p for p in reversed(points) if p.finite_difference_measured), None)
        if last is None:
            predicted, cap = (n + 1) * f_s, max(max_fd_seconds, ANCHOR_SECONDS)
        else:
            predicted, cap = last.finite_difference_seconds * (n / last.n) ** 2, max_fd_seconds
        if predicted <= cap and CHUNK * BYTES_PER_ELEMENT * n <= available:
            fd_s, measured = _median_seconds(lambda: fd(x), 1), True  # noqa: B023
        else:
            fd_s, measured = predicted, False
        points.append(CostPoint(n, f_s, reverse_s, fd_s, measured))
        if progress is not None:
            progress(points[-1])
    return points
