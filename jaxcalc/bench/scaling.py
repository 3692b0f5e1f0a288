"""Data-parallel scaling of the scan epoch: samples/s on 1, 2, 4 ... devices.

For each device count N the scan epoch (`manual-scan`, and `autodiff-scan` if asked) runs
on a 1-D mesh of the first N devices, as `jaxcalc train --devices N` does: each global
batch is split over the devices, the state replicated, the gradients all-reduced by XLA.
The speed-up is samples/s over the same implementation's on the fewest devices asked
(N = 1 usually), the efficiency the speed-up per device added: speed-up / (N / N_min).

XLA makes several CPU devices only when told at start-up, so on the CPU, when JAX sees
fewer devices than asked, the measurement reruns in a subprocess with
`XLA_FLAGS=--xla_force_host_platform_device_count=max(N)`. These virtual devices share
the same cores: on the CPU the table shows what the SPMD program costs, not what more
hardware gains. On a GPU the real devices are used; asking for more is an error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from jaxcalc import train
from jaxcalc.bench.training import (
    IMPLS,
    BenchConfig,
    EpochRunner,
    Row,
    _check_positive,
    _fmt,
    _Job,
    _load,
    aligned_rows,
    attempt,
    compile_autodiff_scan,
    compile_manual_scan,
    interleave,
    jax_device,
    machine,
    progress_to_stderr,
    set_throughput,
    training_data,
)
from jaxcalc.validation import InputError

SCAN_COMPILERS: dict[str, Callable[[_Job, Row, Mesh], EpochRunner]] = {
    "manual-scan": compile_manual_scan,
    "autodiff-scan": compile_autodiff_scan,
}


@dataclass
class ScalingRow(Row):
    """One implementation on `devices` devices."""

    devices: int = 1
    speedup: float | None = None  # samples/s over the same impl's on the fewest devices
    efficiency: float | None = None  # speedup / (devices / the fewest devices)


@dataclass
class ScalingResult:
    config: dict[str, Any]
    devices: list[int]
    machine: dict[str, Any]
    data: str  # which data was trained on
    train_size: int
    virtual: bool  # virtual CPU devices, sharing the same cores
    rows: list[ScalingRow]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ScalingResult:
        return cls(**{**d, "rows": [ScalingRow(**r) for r in d["rows"]]})


def check(cfg: BenchConfig, devices: Sequence[int]) -> None:
    """Raise `InputError` for a bad config, an implementation that is not a scan epoch, or
    a device count that does not divide the global batch."""
    cfg.check()
    if not devices:
        raise InputError("give at least one device count")
    for impl in cfg.impls:
        if impl not in SCAN_COMPILERS:
            raise InputError(
                f"--devices times the scan epochs ({', '.join(SCAN_COMPILERS)}), not {impl}"
            )
    for n in devices:
        _check_positive("devices", n)
        train.check_batch(cfg.batch_size, n)


def run_scaling(
    cfg: BenchConfig, devices: Sequence[int], progress: Callable[[str], None] | None = None
) -> ScalingResult:
    """Time each scan implementation of `cfg` on each number of `devices`.

    On the CPU with too few devices, in a subprocess with that many virtual devices.
    """
    devices = sorted(set(devices))
    check(cfg, devices)
    jax_device(cfg.device)  # an error when JAX has no such device
    available = len(jax.devices(cfg.device))
    data = training_data(cfg)  # bad data is an error here, before any subprocess
    if devices[-1] <= available:
        return measure(cfg, devices, data, progress)
    if cfg.device != "cpu":
        raise InputError(
            f"devices {devices[-1]} requested but {available} {cfg.device} device(s) are available"
        )
    return _in_subprocess(cfg, devices, progress)


def measure(
    cfg: BenchConfig,
    devices: Sequence[int],
    data: tuple[np.ndarray, np.ndarray, str],
    progress: Callable[[str], None] | None = None,
) -> ScalingResult:
    """`run_scaling` in this process, which must see at least `max(devices)` devices."""
    progress = progress or (lambda _: None)
    images, labels, source = data
    progress(f"data: {source}")
    available = jax.devices(cfg.device)
    job = _Job(cfg, images, labels, available[0], progress)
    rows, compiled = [], []
    for impl in cfg.impls:
        for n in devices:
            progress(f"{IMPLS[impl]}, {n} device(s)")
            row = ScalingRow(impl, IMPLS[impl], devices=n)
            mesh = Mesh(np.array(available[:n]), (train.BATCH_AXIS,))
            run_epoch = attempt(job, row, lambda: SCAN_COMPILERS[impl](job, row, mesh))  # noqa: B023
            if run_epoch is not None:
                compiled.append((f"{impl} on {n}", row, run_epoch))
            rows.append(row)
    interleave(job, compiled)
    for row in rows:
        set_throughput(job, row)
    for i in range(0, len(rows), len(devices)):
        first = rows[i]
        for row in rows[i : i + len(devices)]:
            if first.samples_per_second and row.samples_per_second:
                row.speedup = row.samples_per_second / first.samples_per_second
                row.efficiency = row.speedup * first.devices / row.devices
    return ScalingResult(
        config=dataclasses.asdict(cfg),
        devices=list(devices),
        machine=machine(available[0]),
        data=source,
        train_size=len(labels),
        virtual=cfg.device == "cpu" and devices[-1] > 1,
        rows=rows,
    )


def _in_subprocess(
    cfg: BenchConfig, devices: Sequence[int], progress: Callable[[str], None] | None
) -> ScalingResult:
    """`measure` in a new Python whose XLA makes `max(devices)` CPU devices."""
    flag = f"--xla_force_host_platform_device_count={devices[-1]}"
    if progress:
        progress(
            f"JAX sees fewer CPU devices than {devices[-1]}: measuring in a subprocess, {flag}"
        )
    env = {
        **os.environ,
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip(),
        "JAX_PLATFORMS": "cpu",
    }
    request = {"config": dataclasses.asdict(cfg), "devices": devices, "progress": bool(progress)}
    done = subprocess.run(
        [sys.executable, "-m", __name__, json.dumps(request)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"the measurement subprocess failed (exit {done.returncode})")
    return ScalingResult.from_json(json.loads(done.stdout.splitlines()[-1]))


# --------------------------------------------------------------------------- reporting


def caveat(result: ScalingResult) -> str | None:
    """The warning that virtual devices share the same cores, if they do."""
    if not result.virtual:
        return None
    return (
        f"caveat: the {max(result.devices)} CPU devices are virtual and share the same "
        f"{result.machine['cpu_count']} cores: this shows what the data-parallel program costs, "
        "not what more hardware gains"
    )


def scaling_table(result: ScalingResult) -> str:
    """The result as an aligned text table, with the caveat for virtual devices."""
    cfg = result.config
    head = ("implementation", "devices", "samples/s", "epoch s", "compile s", "speed-up", "eff.")
    lines = [
        (
            r.impl,
            str(r.devices),
            _fmt(r.samples_per_second, ",.0f"),
            _fmt(statistics.median(r.epoch_seconds) if r.epoch_seconds else None, ".3f"),
            _fmt(r.compile_seconds, ".2f"),
            _fmt(r.speedup, ".2f") + "x" * (r.speedup is not None),
            _fmt(r.efficiency, ".0%"),
            "" if r.status == "ok" else f"{r.status.upper()}: {r.note}",
        )
        for r in result.rows
    ]
    out = [
        f"job: 784-{cfg['hidden']}-10 ReLU, Adam, global batch {cfg['batch_size']} split over "
        f"the devices, {result.train_size} images/epoch, scan unroll {cfg['unroll']}; "
        f"data: {result.data}",
        f"machine: {result.machine['jax_device']}, {result.machine['cpu_count']} CPUs, "
        f"load {_load(result.machine)}",
        "",
        *aligned_rows(head, lines),
    ]
    out.append(
        f"speed-up: over the samples/s on {min(result.devices)} device(s); eff.: speed-up / "
        f"(devices / {min(result.devices)}); samples/s: median of timed epochs"
    )
    if caveat(result):
        out.append(caveat(result))
    return "\n".join(out)


if __name__ == "__main__":  # the subprocess of `_in_subprocess`: the result as JSON
    request = json.loads(sys.argv[1])
    cfg = BenchConfig(**{**request["config"], "impls": tuple(request["config"]["impls"])})
    progress = progress_to_stderr if request["progress"] else None
    result = measure(cfg, request["devices"], training_data(cfg), progress)
    print(json.dumps(result.to_json()))
