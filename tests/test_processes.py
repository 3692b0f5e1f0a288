"""Two `jaxcalc train` processes on localhost, as two hosts run it (CPU collectives, Gloo).

Each test starts real processes with a free port; they share one persistent compilation
cache, so only the first run of a configuration compiles.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import redirect_stderr
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import data_dir

from jaxcalc.cli import main

EPOCHS = 8
RECIPE = (
    *("--hidden", "32", "--epochs", str(EPOCHS), "--train-limit", "6144", "--batch-size", "64"),
    *("--val-size", "1000", "--augment", "none", "--no-deskew", "--no-figures"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    mnist_dir = data_dir("mnist")
    cache = tmp_path_factory.mktemp("jax-cache")
    return {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "JAXCALC_DATA_DIR": str(mnist_dir.parent),
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }


def start(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jaxcalc", "train", *RECIPE, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def process(out: Path, address: str, i: int) -> list[str]:
    """The options that make a run process `i` of 2, coordinated at `address`."""
    return ["--out", str(out), "--coordinator-address", address, "--num-processes", "2",
            "--process-id", str(i)]  # fmt: skip


def pair(env: dict, outs: tuple[Path, Path], *args: str, port: int | None = None) -> list:
    """Processes 0 and 1 of one run, started together."""
    address = f"localhost:{port or free_port()}"
    return [start(env, *process(out, address, i), *args) for i, out in enumerate(outs)]


def finish(processes: list, timeout: float = 300) -> list[tuple[int, str]]:
    """(exit status, stderr) of each process."""
    return [(p.wait(timeout), p.communicate()[1]) for p in processes]


def state(checkpoint: Path) -> tuple[list[np.ndarray], list[dict]]:
    """The state leaves and the history of a checkpoint."""
    with np.load(checkpoint) as f:
        leaves = [f[k] for k in sorted((k for k in f.files if k.startswith("leaf_")),
                                       key=lambda k: int(k[5:]))]  # fmt: skip
        return leaves, json.loads(str(f["history"]))


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower()]


@pytest.fixture(scope="module")
def two(env, tmp_path_factory) -> Path:
    """An uninterrupted two-process run; its output folder (process 0's)."""
    tmp = tmp_path_factory.mktemp("two")
    results = finish(pair(env, (tmp / "out", tmp / "out-1")))
    for code, err in results:
        assert code == 0, err[-2000:]
        assert "Traceback" not in err and "[Gloo]" not in err
    assert not (tmp / "out-1").exists()  # only process 0 writes
    return tmp / "out"


@pytest.mark.slow
def test_two_processes_train_like_one_process_on_two_devices(two, env, tmp_path):
    one = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxcalc",
            "train",
            *RECIPE,
            "--devices",
            "2",
            "--out",
            str(tmp_path),
        ],  # fmt: skip
        env={**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr[-2000:]
    theirs, _ = state(tmp_path / "checkpoint.npz")
    ours, history = state(two / "checkpoint.npz")
    assert len(history) == EPOCHS
    for a, b in zip(ours, theirs, strict=True):
        scale = max(float(np.max(np.abs(b))), 1e-30)
        assert float(np.max(np.abs(a.astype(float) - b))) / scale <= 1e-6
    metrics = json.loads((two / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["devices"] == 2


@pytest.mark.slow
def test_a_killed_process_stops_the_other_and_resume_ends_where_it_would(two, env, tmp_path):
    out = tmp_path / "out"
    port = free_port()
    processes = pair(env, (out, out), port=port)
    checkpoint = out / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    processes[1].send_signal(signal.SIGKILL)  # process 1 dies mid-run, its worker with it
    killed = time.monotonic()
    code, err = finish(processes[:1], timeout=90)[0]
    assert time.monotonic() - killed < 60
    assert code == 1 and "Traceback" not in err, err[-2000:]
    assert len(errors(err)) == 1 and errors(err)[0].startswith("jaxcalc train: error:")
    assert "--resume" in errors(err)[0]
    processes[1].communicate()
    _, history = state(checkpoint)  # intact: it loads
    assert 1 <= len(history) < EPOCHS
    for code, err in finish(pair(env, (out, out), "--resume")):
        assert code == 0, err[-2000:]
    resumed, history = state(checkpoint)
    uninterrupted, _ = state(two / "checkpoint.npz")
    assert len(history) == EPOCHS
    for a, b in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_processes_that_disagree_stop_with_one_line(env, tmp_path):
    results = finish(
        [
            start(env, "--hidden", hidden, *process(tmp_path / str(i), address, i))
            for address in [f"localhost:{free_port()}"]
            for i, hidden in enumerate(("32", "16"))
        ]
    )
    for code, err in results:
        assert code == 2 and len(errors(err)) == 1, err[-2000:]
        assert "the processes disagree: hidden" in err


@pytest.mark.slow
def test_a_process_id_taken_twice_is_one_line_not_a_hang(env, tmp_path):
    address = f"localhost:{free_port()}"
    both_zero = [
        start(
            env,
            "--out",
            str(tmp_path / str(i)),
            "--coordinator-address",
            address,
            "--num-processes",
            "2",
            "--process-id",
            "0",
            "--join-timeout",
            "5",
        )  # fmt: skip
        for i in range(2)
    ]
    for code, err in finish(both_zero, timeout=120):
        assert code == 1 and "Traceback" not in err, err[-2000:]
        assert len(errors(err)) == 1 and "not every process joined the run in 5 s" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--coordinator-address", "notanaddress"), "must be HOST:PORT"),
        (("--coordinator-address", "127.0.0.1:abc"), "must be HOST:PORT"),
        (("--coordinator-address", "127.0.0.1:70000"), "port in 1..65535"),
        (("--num-processes", "2", "--process-id", "2"), "process id 2 must be below"),
    ],
)
def test_bad_multi_process_flags_are_one_line(flags, message, tmp_path):
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["train", "--out", str(tmp_path), "--coordinator-address", "localhost:1",
                     *flags])  # fmt: skip
    assert code == 2 and err.getvalue().count("\n") == 1 and message in err.getvalue()
    assert jax.process_count() == 1


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pid: int, seconds: float = 15.0) -> bool:
    end = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.1)
    return not _alive(pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_child_dies_with_its_parent():
    """`subprocesses.die_with_parent`: a child whose parent is killed (SIGKILL: no chance to
    stop it) ends too; one whose parent is gone before it asks ends at once, status 1."""
    child = (
        "import os, sys, time; from jaxcalc.subprocesses import die_with_parent; "
        "die_with_parent(int(sys.argv[1])); print(os.getpid(), flush=True); time.sleep(120)"
    )
    parent = (
        "import os, subprocess, sys; "
        f"subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid())]).wait()"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    p = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, env=env)
    pid = int(p.stdout.readline())
    assert _alive(pid)
    p.kill()
    p.wait()
    assert _gone(pid)
    orphan = subprocess.run([sys.executable, "-c", child, "-1"], capture_output=True, env=env)
    assert orphan.returncode == 1 and orphan.stdout == b""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_worker_dies_with_its_supervisor(tmp_path):
    """The worker of a multi-process `jaxcalc train` (waiting for the other process to join)
    ends when its supervisor is killed."""
    flags = ["--coordinator-address", f"localhost:{free_port()}", "--num-processes", "2"]
    flags += ["--process-id", "0", "--join-timeout", "60"]
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "jaxcalc", "train", "--out", str(tmp_path), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    children = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children")
    end = time.monotonic() + 30
    while not children.read_text().split() and time.monotonic() < end:
        time.sleep(0.1)
    (worker,) = map(int, children.read_text().split())
    time.sleep(3)  # the worker is importing JAX, or joining
    supervisor.kill()
    supervisor.wait()
    assert _gone(worker)
