"""Data-parallel training over a mesh of devices (`jaxcalc train --devices N`).

XLA reads `--xla_force_host_platform_device_count` only when JAX starts, so the checks on
4 (virtual CPU) devices run in a subprocess, this file run as a script, which reports what
it saw as JSON; the tests assert on that report.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest
from test_training import fake_data, tiny

from jaxcalc import training
from jaxcalc.cli import main

N = 4  # virtual devices of the subprocess


def cli(*args: str) -> tuple[int, str]:
    """`jaxcalc train ARGS`: (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(["train", *args])
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def report_on_devices(tmp: Path) -> dict[str, Any]:
    """The subprocess: what `N` devices do, as JSON-able facts."""
    jax.config.update("jax_numpy_rank_promotion", "raise")
    facts: dict[str, Any] = {}
    no_data = str(tmp / "no-data")
    # The multi-host start-up with one process, before any computation; then a batch
    # that does not split over the devices fails before the (missing) data is read.
    address = f"localhost:{free_port()}"
    multi_host = ("--coordinator-address", address, "--num-processes", "1", "--process-id", "0")
    facts["indivisible"] = cli(
        *multi_host, "--devices", "4", "--batch-size", "30", "--data-dir", no_data
    )
    facts["process_count"], facts["device_count"] = jax.process_count(), jax.device_count()
    facts["too_many"] = cli("--devices", str(N + 1), "--data-dir", no_data)

    data = fake_data()
    runs = {
        n: training.fit(tiny(), tmp / str(n), data=data, progress=False, devices=n) for n in (1, N)
    }
    pairs = zip(jax.tree.leaves(runs[1].params), jax.tree.leaves(runs[N].params), strict=True)
    facts["max_param_diff"] = max(float(np.abs(a - b).max()) for a, b in pairs)
    facts["metrics_devices"] = [
        json.loads((tmp / str(n) / "metrics.json").read_text())["devices"] for n in (1, N)
    ]

    # The shardings inside the step, as XLA partitioned it (a config quicker to compile).
    cfg, mesh = tiny(augment="none", dropout=0.0), training.make_mesh(N)
    opt = training.make_optimizer(cfg, 8)
    step, seen = training.make_step(cfg, opt), {}

    def spy(state: training.TrainState, batch: tuple[jax.Array, ...]):
        inside = {"images": batch[0], "labels": batch[1], "W1": state.params["W1"]}
        inside |= {f"opt_state {i}": a for i, a in enumerate(jax.tree.leaves(state.opt_state))}
        for name, a in inside.items():

            def record(s: jax.sharding.Sharding, name: str = name, shape=a.shape) -> None:
                seen[name] = {"spec": list(s.spec), "shard_shape": s.shard_shape(shape)}

            jax.debug.inspect_array_sharding(a, callback=record)
        return step(state, batch)

    args = training.replicate(
        mesh,
        (
            training.init_state(cfg, opt, 784, 10),
            data.train_images,
            data.train_labels.astype(np.int32),
            jax.random.PRNGKey(1),
        ),
    )
    compiled = jax.jit(training.make_epoch(spy, cfg.batch_size, mesh=mesh)).lower(*args).compile()
    state, losses = compiled(*args)
    facts["inside_step"] = seen
    facts["outputs_replicated"] = [
        a.sharding.is_fully_replicated and len(a.sharding.device_set) == N
        for a in jax.tree.leaves((state, losses))
    ]
    hlo = compiled.as_text()
    facts["collectives"] = {
        op: len(re.findall(rf"\b{op}\(", hlo)) for op in ("all-reduce", "all-gather")
    }
    return facts


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, Any]:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={N}"
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    tmp = tmp_path_factory.mktemp("devices")
    done = subprocess.run(
        [sys.executable, __file__, str(tmp)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_four_devices_train_like_one(report):
    assert report["device_count"] == N
    assert report["max_param_diff"] < 1e-5
    assert report["metrics_devices"] == [1, N]


def test_batch_is_sharded_and_state_replicated_inside_the_step(report):
    seen = report["inside_step"]
    batch = tiny().batch_size
    assert seen["images"] == {"spec": ["data"], "shard_shape": [batch // N, 28, 28]}
    assert seen["labels"] == {"spec": ["data"], "shard_shape": [batch // N]}
    replicated = [v for k, v in seen.items() if k not in ("images", "labels")]
    assert len(replicated) > 2 and all(v["spec"] == [] for v in replicated)
    assert all(report["outputs_replicated"])
    # XLA all-reduces the gradients; each device gathers its own rows, nothing is gathered.
    assert report["collectives"]["all-reduce"] > 0 and report["collectives"]["all-gather"] == 0


def test_bad_device_counts_are_one_line_errors(report):
    code, err = report["indivisible"]
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("jaxcalc train: error: batch_size 30 is not divisible by the 4 devices")
    assert report["process_count"] == 1  # the multi-host start-up ran, with one process
    code, err = report["too_many"]
    assert code == 2 and err.count("\n") == 1 and f"devices {N + 1} requested" in err


def opcodes(hlo: str) -> collections.Counter:
    return collections.Counter(re.findall(r"= .*?\s([a-z][a-z0-9-]*)\(", hlo))


def test_one_device_mesh_compiles_to_the_same_program():
    """The sharding constraints cost nothing on 1 device: same HLO instructions."""
    cfg = tiny(epochs=1)
    opt = training.make_optimizer(cfg, 8)
    data = fake_data()
    args = (
        training.init_state(cfg, opt, 784, 10),
        data.train_images,
        data.train_labels.astype(np.int32),
        jax.random.PRNGKey(1),
    )
    step, mesh = training.make_step(cfg, opt), training.make_mesh(1)
    plain = jax.jit(training.make_epoch(step, cfg.batch_size)).lower(*args).compile()
    meshed = jax.jit(training.make_epoch(step, cfg.batch_size, mesh=mesh))
    meshed = meshed.lower(*training.replicate(mesh, args)).compile()
    assert opcodes(plain.as_text()) == opcodes(meshed.as_text())


if __name__ == "__main__":
    print(json.dumps(report_on_devices(Path(sys.argv[1]))))
