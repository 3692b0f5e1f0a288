"""Data parallelism: the device mesh and replication.

With a mesh of N devices the jitted epoch is SPMD: every device holds the training set and
the (replicated) state, gathers only its 1/N slice of each global batch, and XLA
all-reduces the gradients. The step sees the global batch, so its random draws, and the
result up to float rounding, do not depend on N. Across processes (hosts, joined by
`training.processes`), process p's devices hold the p-th slice of each batch.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxcalc.validation import InputError

BATCH_AXIS = "data"  # the mesh axis along which each global batch is split


def make_mesh(devices: int | None = None, *, platform: str | None = None) -> Mesh:
    """A 1-D mesh (axis `BATCH_AXIS`) over the first `devices` devices (default: all) of
    `platform` ("cpu", "gpu"; default: JAX's default backend).

    Devices are ordered by process, so in a multi-host run (which uses every device)
    process p's devices hold the p-th contiguous slice of each global batch.
    """
    available = sorted(jax.devices(platform), key=lambda d: (d.process_index, d.id))
    n = len(available) if devices is None else devices
    if not (isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= len(available)):
        raise InputError(
            f"devices {n!r} requested but {len(available)} {available[0].platform} "
            "device(s) are available"
        )
    if jax.process_count() > 1 and n != len(available):
        raise InputError(
            f"devices {n} requested: a run over {jax.process_count()} processes uses all "
            f"{len(available)} devices"
        )
    return Mesh(np.array(available[:n]), (BATCH_AXIS,))


def check_batch(batch_size: int, n_devices: int) -> None:
    """Raise `InputError` unless the global batch splits evenly over the devices."""
    if batch_size % n_devices:
        raise InputError(
            f"batch_size {batch_size} is not divisible by the {n_devices} devices; use a "
            f"multiple of {n_devices} or a number of devices that divides {batch_size}"
        )


def replicate(mesh: Mesh, tree: Any) -> Any:
    """Copy the host arrays of `tree` (the same in every process) onto every mesh device."""
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)),
        tree,
    )


def describe(device: jax.Device) -> str:
    """A device in words: `cpu (2 cores)`, `gpu (NVIDIA H100 80GB HBM3)`."""
    if device.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    return f"{device.platform} ({device.device_kind})"
