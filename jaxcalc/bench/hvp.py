"""What a Hessian-vector product costs: the hand-written R-operator against autodiff,
one gradient, PyTorch's double backward, and Lanczos built on it.

One job, the mean cross-entropy of a 784-H-10 ReLU network over N images at once (10,000
MNIST training images by default; random images of that shape without MNIST), timed in
one run, a product of each kind in turn (`harness.interleave`):

- `hvp`: `mlp.hvp`, the R-forward and R-backward passes by hand;
- `hvp-autodiff`: `mlp.hvp_autodiff`, `jax.jvp` of `jax.grad` (forward over reverse);
- `gradient`: `mlp.loss_and_grad`, the hand-written gradient (an HVP costs about two);
- `torch-hvp`: `torch.autograd.grad` twice (grad with `create_graph`, then the gradient of
  ⟨g, v⟩: what PyHessian does), when PyTorch is installed;
- `lanczos`: `curvature.top_eigenvalues` of H, k = 1 with `lanczos_steps` steps, each step
  one `mlp.hvp`: the time to the top eigenvalue of the network over the N images.

Each row (`HvpRow`) holds the seconds of its timed calls, after a warm-up call; its speed
is the median's; JAX compile time apart. The goals (`GOALS`) as a table: `report.hvp_table`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import curvature, machine, mlp
from jaxcalc.bench.harness import (
    BenchConfig,
    Job,
    Outcome,
    Skip,
    attempt,
    interleave,
    jax_device,
    training_data,
)

IMPLS = {
    "hvp": "jaxcalc hand-written H v (R-operator)",
    "hvp-autodiff": "jax.jvp of jax.grad (forward over reverse)",
    "gradient": "jaxcalc hand-written gradient",
    "torch-hvp": "PyTorch double backward (autograd.grad twice)",
    "lanczos": "top eigenvalue: Lanczos on jaxcalc H v",
}
#: (what, goal): hvp / hvp-autodiff speed >= 1.0; hvp time / gradient's <= 2.5; torch-hvp
#: time / hvp's >= 1.5; lanczos time / (steps · hvp's) − 1 <= 10%.
GOALS = {"vs autodiff": 1.0, "vs gradient": 2.5, "vs torch": 1.5, "lanczos overhead": 0.10}


@dataclass
class HvpRow(Outcome):
    """One product's result."""

    call_seconds: list[float] = field(default_factory=list)  # each timed call, all the images
    compile_seconds: float | None = None
    images_per_second: float | None = None  # the images over the median call


@dataclass
class HvpResult:
    config: dict[str, Any]
    machine: dict[str, Any]
    data: str
    rows: list[HvpRow]

    def row(self, impl: str) -> HvpRow | None:
        return next((r for r in self.rows if r.impl == impl and r.call_seconds), None)

    def seconds(self, impl: str) -> float | None:
        row = self.row(impl)
        return None if row is None else float(np.median(row.call_seconds))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _problem(job: Job, hidden: int):
    """(params, x, labels, v) on the job's device: He-initialised weights, a random v."""
    k_params, k_v = jax.random.split(jax.random.key(0))
    params = mlp.init_params(k_params, (job.images[0].size, hidden, 10), activation="relu")
    v = jax.tree.map(lambda p, k: jax.random.normal(k, p.shape, p.dtype), params,
                     dict(zip(params, jax.random.split(k_v, 4), strict=True)))  # fmt: skip
    x, labels = job.float_rows()
    return jax.device_put((params, jnp.asarray(x), jnp.asarray(labels), v), job.device)


def _compiled(row: HvpRow, fn: Callable, *args: Any) -> Callable[[int], None]:
    """Compile `fn(*args)` (its compile time into `row`); returns a runner of one call."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    row.compile_seconds = time.perf_counter() - start
    return lambda e: jax.block_until_ready(compiled(*args))


def _torch_hvp(params: dict, x: jax.Array, labels: jax.Array, v: dict) -> Callable[[int], Any]:
    """PyTorch's H v by double backward, on the CPU with all its cores: a runner returning
    H v as a tuple of tensors in the order of params."""
    try:
        import torch
    except ImportError:
        raise Skip("PyTorch is not installed (pip install -e '.[peers]')") from None
    torch.set_num_threads(os.cpu_count() or 1)
    t = {k: torch.tensor(np.asarray(p), requires_grad=True) for k, p in params.items()}
    tv = {k: torch.tensor(np.asarray(a)) for k, a in v.items()}
    xs, ys = torch.tensor(np.asarray(x)), torch.tensor(np.asarray(labels), dtype=torch.int64)
    names = list(t)

    def run(e: int) -> tuple:
        z2 = torch.relu(xs @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
        loss = torch.nn.functional.cross_entropy(z2, ys)
        grads = torch.autograd.grad(loss, [t[k] for k in names], create_graph=True)
        dot = sum((g * tv[k]).sum() for g, k in zip(grads, names, strict=True))
        return torch.autograd.grad(dot, [t[k] for k in names])

    return run


def run_hvp_bench(
    *,
    examples: int = 10_000,
    hidden: int = 1024,
    repeats: int = 3,
    lanczos_steps: int = 20,
    device: str = "cpu",
    synthetic: bool = False,
    data_dir: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> HvpResult:
    """Time every `IMPLS` row, interleaved, `repeats` timed calls each (see the docstring)."""
    cfg = BenchConfig(
        impls=(), hidden=hidden, batch_size=examples, epochs=repeats, device=device,
        train_size=examples, synthetic=synthetic, data_dir=data_dir,
    )  # fmt: skip
    images, labels, source = training_data(cfg)
    job = Job(cfg, images, labels, jax_device(device), progress)
    params, x, y, v = _problem(job, hidden)
    kw = {"activation": "relu"}

    def lanczos(p, x, y, key):
        matvec = curvature.data_matvec(mlp.hvp, p, x, y, **kw)
        return curvature.top_eigenvalues(matvec, p, 1, key=key, steps=lanczos_steps)

    setups = {
        "hvp": lambda row: _compiled(row, lambda *a: mlp.hvp(*a, **kw), params, x, y, v),
        "hvp-autodiff": lambda row: _compiled(
            row, lambda *a: mlp.hvp_autodiff(*a, **kw), params, x, y, v
        ),
        "gradient": lambda row: _compiled(
            row, lambda *a: mlp.loss_and_grad(*a, **kw)[1], params, x, y
        ),
        "torch-hvp": lambda row: _torch_hvp(params, x, y, v),
        "lanczos": lambda row: _compiled(row, lanczos, params, x, y, jax.random.key(1)),
    }
    rows, runs = [], []
    for impl, setup in setups.items():
        row = HvpRow(impl, IMPLS[impl])
        progress(f"  {impl}: setting up")
        runner = attempt(job, row, lambda: setup(row))  # noqa: B023
        rows.append(row)
        if runner is not None:
            runs.append((impl, row, runner))
    for (_, row, _), seconds in zip(runs, interleave(job, runs, unit="call"), strict=True):
        row.call_seconds = seconds
        row.images_per_second = examples / float(np.median(seconds)) if seconds else None
    config = {"examples": examples, "hidden": hidden, "repeats": repeats, "device": device}
    config["lanczos_steps"] = lanczos_steps
    return HvpResult(config, machine.describe(job.device), source, rows)


def ratios(result: HvpResult) -> dict[str, float]:
    """Each goal's measured ratio, where both of its rows ran (see `GOALS`)."""
    s = result.seconds
    out = {}
    if s("hvp") and s("hvp-autodiff"):
        out["vs autodiff"] = s("hvp-autodiff") / s("hvp")
    if s("hvp") and s("gradient"):
        out["vs gradient"] = s("hvp") / s("gradient")
    if s("hvp") and s("torch-hvp"):
        out["vs torch"] = s("torch-hvp") / s("hvp")
    if s("hvp") and s("lanczos"):
        out["lanczos overhead"] = s("lanczos") / (result.config["lanczos_steps"] * s("hvp")) - 1
    return out
