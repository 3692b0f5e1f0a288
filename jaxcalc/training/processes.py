"""Several processes (hosts) in one run: joining, agreeing on the settings, a death noticed.

- `wanted` tells whether this process belongs to a multi-process run: one of the flags,
  `JAX_COORDINATOR_ADDRESS`, or a Slurm / Open MPI job of several tasks.
- `join` checks the flags and starts `jax.distributed` (unset values come from the
  environment, as `jax.distributed.initialize` finds them).
- `agree` makes every process compare its settings with the others' before any work, so a
  different `--hidden` or seed is one line, not a hang in the first all-reduce.
- `supervise`: JAX ends a process with a C++ stack trace (SIGABRT) when its coordination
  service sees another process die, miss its heartbeats (`HEARTBEAT_SECONDS`) or not join
  in time. So in a multi-process run `jaxcalc train` runs as a worker child of a small
  supervisor, which relays its output without JAX's log lines and turns such an end into
  one line naming what happened, exit 1. The worker dies with its supervisor
  (`subprocesses.die_with_parent`, given the supervisor's id in `WORKER`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import jax

from jaxcalc.training.checkpoint import resume_advice
from jaxcalc.validation import InputError, RunError, check_nonnegative_int, check_positive_int

JOIN_SECONDS = 60  # how long to wait for every process to join (`--join-timeout`)
HEARTBEAT_SECONDS = 10  # a process silent this long is taken for dead
WORKER = "JAXCALC_TRAIN_WORKER"  # in a supervised worker's environment: the supervisor's id
PROG = "jaxcalc train"
#: The lines of JAX's C++ logging (glog, Gloo, stack traces), dropped from the relay.
LOG_LINE = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d\d|\[Gloo\]|\s+@\s|\*\*\* )")
FATAL_LINE = re.compile(rb"^F\d{4} ")
ERROR_LINE = re.compile(rb"^[EF]\d{4} ")


def wanted(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None
) -> bool:
    """Whether this process joins a multi-process run: a flag, JAX's variable, or a Slurm /
    Open MPI job with more than one task."""
    env = os.environ
    return (
        (coordinator_address, num_processes, process_id) != (None, None, None)
        or "JAX_COORDINATOR_ADDRESS" in env
        or int(env.get("SLURM_NTASKS", "1") or 1) > 1
        or int(env.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1
    )


def check_address(address: str) -> None:
    """`InputError` unless `address` is `HOST:PORT` with an integer port in 1..65535."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(
            f"coordinator address {address!r} must be HOST:PORT with a port in 1..65535, "
            "for example 10.0.0.1:1234"
        )


def check_flags(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None
) -> None:
    """Raise `InputError` for flags that cannot work, before anything starts."""
    address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address is not None:
        check_address(address)
    if num_processes is not None:
        check_positive_int("num_processes", num_processes)
    if process_id is not None:
        check_nonnegative_int("process_id", process_id)
        if num_processes is not None and process_id >= num_processes:
            raise InputError(
                f"process id {process_id} must be below the number of processes {num_processes}"
            )


def join(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout: float = JOIN_SECONDS,
) -> None:
    """Start `jax.distributed` with the checked flags; all processes must join in `timeout` s."""
    check_flags(coordinator_address, num_processes, process_id)
    try:
        jax.distributed.initialize(
            coordinator_address,
            num_processes,
            process_id,
            initialization_timeout=max(1, round(timeout)),
            heartbeat_timeout_seconds=HEARTBEAT_SECONDS,
        )
    except (ValueError, TypeError) as e:
        raise InputError(f"cannot start a multi-process run: {e}") from None


def agree(settings: dict[str, Any], timeout: float = JOIN_SECONDS) -> None:
    """Raise `InputError` in every process unless all run with the same `settings`."""
    if jax.process_count() == 1:
        return
    from jax._src import distributed  # the coordinator's key-value store has no public API

    client, me = distributed.global_state.client, jax.process_index()
    client.key_value_set(f"jaxcalc/settings/{me}", json.dumps(settings, sort_keys=True))
    for other in range(jax.process_count()):
        try:
            value = client.blocking_key_value_get(f"jaxcalc/settings/{other}", int(timeout * 1e3))
        except Exception:  # noqa: BLE001 - JAX's runtime error: the process never reported
            raise RunError(
                f"process {other} did not report its settings in {timeout:g} s"
            ) from None
        theirs = json.loads(value)
        diffs = [f"{k} {settings.get(k)!r} here, {v!r} in process {other}"
                 for k, v in theirs.items() if settings.get(k) != v]  # fmt: skip
        if diffs:
            raise InputError(
                f"the processes disagree: {'; '.join(diffs)}; run the same command in each"
            )


def supervise(argv: list[str], checkpoint: Path, timeout: float) -> int:
    """Run `jaxcalc ARGV` as a worker child, relay its output, and return its exit status,
    or 1 with one line when a signal ended it (JAX's abort; see the module docstring)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "jaxcalc", *argv],
        env={**os.environ, WORKER: str(os.getpid())},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout = threading.Thread(target=_relay, args=(child.stdout, sys.stdout), daemon=True)
    stdout.start()
    forward = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the worker too
    try:
        said, dropped = _relay(child.stderr, sys.stderr)
        status = child.wait()
        stdout.join()
    finally:
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, interrupt)
    if status in (0, 2, 130, 143) or said:  # a success, or the worker said itself why not
        return status if status >= 0 else 1
    print(
        f"{PROG}: error: {_reason(dropped, timeout)}; {resume_advice(checkpoint)}", file=sys.stderr
    )
    return 1


def _relay(stream: BinaryIO, out: TextIO) -> tuple[bool, list[bytes]]:
    """Copy a stream of the worker's to `out` as it comes, without JAX's log lines.

    After an error line of JAX's, what follows is its message, not the worker's, up to a
    line of ours. Returns (the worker said itself why it stopped, the dropped lines).
    """
    dropped, said, rest, failing = [], False, b"", False
    ours = f"{PROG}: ".encode()
    write = out.buffer.write if hasattr(out, "buffer") else lambda b: out.write(b.decode())
    while chunk := os.read(stream.fileno(), 65536):
        rest += chunk
        *lines, rest = rest.split(b"\n")
        for line in lines:
            if b"[Gloo]" in line:  # Gloo prints mid-line, after a progress bar
                write(line[: line.index(b"[Gloo]")])
                dropped.append(line)
            elif LOG_LINE.match(line) or (failing and not line.startswith(ours)):
                failing = failing or bool(ERROR_LINE.match(line))
                dropped.append(line)
            else:
                said = said or line.startswith(ours)
                write(line + b"\n")
        if b"\r" in rest:  # a progress bar's update: show it now
            cut = rest.rindex(b"\r")
            write(rest[:cut])
            rest = rest[cut:]
        out.flush()
    return said, dropped


def _reason(dropped: list[bytes], timeout: float) -> str:
    """What JAX's dropped lines say happened, in words."""
    text = b"\n".join(dropped).decode(errors="replace")
    if "RegisterTask" in text or "Barrier timed out" in text:
        return (
            f"not every process joined the run in {timeout:g} s; give each process the same "
            "--coordinator-address and --num-processes and its own --process-id (0 .. N-1)"
        )
    dead = re.search(r"[Tt]ask (\d+) heartbeat timeout|heartbeats\):\s*(\d+)", text)
    if dead:
        return f"process {dead.group(1) or dead.group(2)} stopped responding (killed or crashed?)"
    if "leader task" in text or "coordination service" in text:
        return "lost the coordinator, process 0 (killed or crashed?)"
    fatal = next((d for d in dropped if FATAL_LINE.match(d)), b"the worker process died")
    return f"the run failed: {fatal.decode(errors='replace').split('] ', 1)[-1][:200]}"
