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
The result as a table, with that caveat: `report.scaling_table`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from jaxcalc import machine, training
from jaxcalc.bench.harness import (
    IMPLS,
    BenchConfig,
    EpochRunner,
    Job,
    Row,
    attempt,
    interleave,
    jax_device,
    set_throughput,
    training_data,
)
from jaxcalc.bench.training import compile_autodiff_scan, compile_manual_scan
from jaxcalc.subprocesses import die_with_parent
from jaxcalc.validation import InputError, RunError, check_positive_int

#: The most virtual CPU devices `--devices` makes: they share the machine's cores, and XLA
#: compiles one program for all of them.
MAX_VIRTUAL_DEVICES = 64

SCAN_COMPILERS: dict[str, Callable[[Job, Row, Mesh], EpochRunner]] = {
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
    """Raise `InputError` for a bad config, an implementation that is not a scan epoch, a
    device count that does not divide the global batch, more than `MAX_VIRTUAL_DEVICES`
    virtual CPU devices, or a job that would not fit in memory on them."""
    if not devices:
        raise InputError("give at least one device count")
    if cfg.device == "cpu" and max(devices) > MAX_VIRTUAL_DEVICES:
        raise InputError(
            f"devices must be at most {MAX_VIRTUAL_DEVICES} on the CPU (virtual devices sharing "
            f"its cores), got {max(devices)}"
        )
    cfg.check(devices=max(devices))
    for impl in cfg.impls:
        if impl not in SCAN_COMPILERS:
            raise InputError(
                f"--devices times the scan epochs ({', '.join(SCAN_COMPILERS)}), not {impl}"
            )
    for n in devices:
        check_positive_int("devices", n)
        training.check_batch(cfg.batch_size, n)


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
    job = Job(cfg, images, labels, available[0], progress)
    rows, compiled = [], []
    for impl in cfg.impls:
        for n in devices:
            progress(f"{IMPLS[impl]}, {n} device(s)")
            row = ScalingRow(impl, IMPLS[impl], devices=n)
            mesh = training.make_mesh(n, platform=cfg.device)
            run_epoch = attempt(job, row, lambda: SCAN_COMPILERS[impl](job, row, mesh))  # noqa: B023
            if run_epoch is not None:
                compiled.append((f"{impl} on {n}", row, run_epoch))
            rows.append(row)
    for (_, row, _), seconds in zip(compiled, interleave(job, compiled), strict=True):
        row.epoch_seconds = seconds
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
        machine=machine.describe(available[0]),
        data=source,
        train_size=len(labels),
        virtual=cfg.device == "cpu" and devices[-1] > 1,
        rows=rows,
    )


def _in_subprocess(
    cfg: BenchConfig, devices: Sequence[int], progress: Callable[[str], None] | None
) -> ScalingResult:
    """`measure` in a new Python whose XLA makes `max(devices)` CPU devices.

    Its progress comes back line by line. It is killed, with its process group, after
    `SUBPROCESS_TIMEOUT` seconds or when this process is interrupted (Ctrl-C, SIGTERM), and
    dies with this process (`subprocesses.die_with_parent`); its failure is a `RunError`
    quoting the last line of its stderr.
    """
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
    request = {"config": dataclasses.asdict(cfg), "devices": devices, "parent": os.getpid()}
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(
            _child_command(request),
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            start_new_session=True,  # its own process group, which `_stop` kills whole
        )
        expired = threading.Event()
        timer = threading.Timer(SUBPROCESS_TIMEOUT, lambda: (expired.set(), _stop(child)))
        timer.start()
        result = None
        try:
            for line in child.stdout:
                kind, _, text = line.rstrip("\n").partition(" ")
                if kind == "progress" and progress:
                    progress(text)
                elif kind == "result":
                    result = text
            child.wait()
        finally:  # also on Ctrl-C or SIGTERM here: the subprocess goes too
            timer.cancel()
            _stop(child)
        if child.returncode or result is None:
            errors.seek(0)
            last = [ln.strip() for ln in errors.read().splitlines() if ln.strip()][-1:]
            why = (
                f"killed after {SUBPROCESS_TIMEOUT:g} s"
                if expired.is_set()
                else f"exit {child.returncode}"
            )
            raise RunError(
                f"the measurement subprocess failed ({why}{': ' + last[0] if last else ''}); "
                "try fewer --devices or a smaller --batch-size, --hidden or --train-size"
            )
    return ScalingResult.from_json(json.loads(result))


#: Seconds the measurement subprocess may run before it is killed.
SUBPROCESS_TIMEOUT = 3600.0


def _child_command(request: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", __name__, json.dumps(request)]


def _stop(child: subprocess.Popen) -> None:
    """Kill the process group of `child` (it leads its own session) unless it has exited."""
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


if __name__ == "__main__":  # the subprocess of `_in_subprocess`: progress, then the result
    request = json.loads(sys.argv[1])
    die_with_parent(request["parent"])
    cfg = BenchConfig(**{**request["config"], "impls": tuple(request["config"]["impls"])})
    say = lambda kind, text: print(kind, text, flush=True)  # noqa: E731
    result = measure(cfg, request["devices"], training_data(cfg), lambda t: say("progress", t))
    say("result", json.dumps(result.to_json()))
