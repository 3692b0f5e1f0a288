"""The machine's limit and the job's cost: measured matmul FLOP/s and MLP FLOP counts."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp


def matmul_peak(*, n: int = 2048, repeats: int = 7, device: jax.Device | None = None) -> float:
    """Best FLOP/s of a jitted float32 (n, n) @ (n, n) matmul: 2 n³ FLOPs per call.

    The fastest of `repeats` calls, not the median: a peak is what the machine can do, and
    on a shared machine the slower calls measure the neighbours.
    """
    device = device or jax.devices()[0]
    a = jax.device_put(jnp.ones((n, n), jnp.float32), device)
    matmul = jax.jit(jnp.matmul)
    matmul(a, a).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times)


def mlp_train_flops_per_sample(n_in: int, hidden: int, n_out: int) -> int:
    """Matmul FLOPs of one training sample of the n_in-hidden-n_out network.

    forward  z1 = x W1, z2 = a1 W2:            2(n_in·H + H·n_out)
    backward dW2 = a1ᵀ δ2, dL/da1 = δ2 W2ᵀ,     2·2·H·n_out
             dW1 = xᵀ δ1 (no dL/dx needed):   2·n_in·H
    total                                     4·n_in·H + 6·H·n_out
    Element-wise work (activations, softmax, the optimiser) is left out: it is O(H) per
    sample, not O(n_in·H).
    """
    return 4 * n_in * hidden + 6 * hidden * n_out
