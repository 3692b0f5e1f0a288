"""The machine a result was measured on, recorded beside every benchmark's numbers and
`jaxcalc hessian`'s results (`describe`)."""

from __future__ import annotations

import os
import platform
from typing import Any

import jax


def describe(device: jax.Device) -> dict[str, Any]:
    """What the numbers were measured on: the JAX device, the CPU, its load, the versions."""
    return {
        "jax_device": device.platform
        if device.platform == "cpu"
        else f"{device.platform} ({device.device_kind})",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "jax": jax.__version__,
        "python": platform.python_version(),
    }
