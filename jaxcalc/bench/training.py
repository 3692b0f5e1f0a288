"""The training benchmark: one job timed several ways, 784-H-10 with Adam on MNIST-shaped data.

The implementations (`IMPLS`, named in `harness` so that a `BenchConfig` can check them),
all the ReLU network with softmax cross-entropy and Adam (lr 1e-3), no augmentation,
dropout or weight averaging:

- `manual-scan`: jaxcalc's hand-written backward pass and Adam, one jitted `lax.scan`
  per epoch (`training.make_step` / `training.make_epoch`, what `jaxcalc train` runs);
- `autodiff-scan`: `jax.grad` + `optax.adam` in the same scan epoch: the baseline of
  every ratio;
- `fused-scan`: the manual-scan job with the step fused into three Pallas kernels
  (`jaxcalc.fused`, `jaxcalc train --kernel fused`); a GPU only (skipped elsewhere unless
  `JAXCALC_PALLAS_INTERPRET=1`);
- `manual-loop`: a Python loop calling the jitted hand-written step once per batch;
- `manual-nojit`: the same step op by op without jit, a few steps timed and extrapolated
  to an epoch;
- `torch`: PyTorch eager (CPU, or CUDA with `device="gpu"`), when installed;
- `numpy`: hand-written NumPy (always on the CPU).

Throughput is the median of several epochs after a warm-up epoch; the epochs of the
implementations are interleaved (epoch 1 of each, then epoch 2 of each, ...) so that all see
the machine alike. Compile time is reported apart, and each result is also a fraction of
the machine's measured matmul peak (`hardware.matmul_peak`) given the job's FLOPs
(`hardware.mlp_train_flops_per_sample`). The scan epochs also report their kernels per
step (`bench.kernels`). The result as a table: `report.training_table`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import optax
from jax.sharding import Mesh

from jaxcalc import machine, training
from jaxcalc.bench import hardware, peers
from jaxcalc.bench.harness import (
    IMPLS,
    N_CLASSES,
    BenchConfig,
    EpochRunner,
    Job,
    Row,
    Skip,
    attempt,
    interleave,
    jax_device,
    peak_rss,
    set_throughput,
    training_data,
    xla_memory,
)
from jaxcalc.bench.kernels import kernels_per_step
from jaxcalc.training import fused_epoch
from jaxcalc.validation import InputError

BASELINE = "autodiff-scan"


@dataclass
class BenchResult:
    config: dict[str, Any]
    machine: dict[str, Any]
    data: str  # which data was trained on
    train_size: int
    flops_per_sample: int
    matmul_peak_flops: float
    rows: list[Row]

    def row(self, impl: str) -> Row | None:
        return next((r for r in self.rows if r.impl == impl), None)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- the runners


def _compile_scan(job: Job, grad: str, opt: Any, row: Row, mesh: Mesh | None) -> EpochRunner:
    step, state, (images, labels) = job.jax_setup(grad, opt, mesh)
    epoch = training.make_epoch(step, job.cfg.batch_size, mesh=mesh, unroll=job.cfg.unroll)
    return _compile_epoch(job, row, epoch, state, (images, labels), mesh)


def _compile_epoch(
    job: Job, row: Row, epoch: Callable, state: Any, data: tuple, mesh: Mesh | None
) -> EpochRunner:
    """Compile `epoch(state, images, labels, key)`; record compile time, memory, kernels."""
    images, labels = data
    key = lambda e: job.put(jax.random.PRNGKey(e), mesh)  # noqa: E731
    job.progress(f"  {row.impl}: compiling")
    start = time.perf_counter()
    compiled = jax.jit(epoch).lower(state, images, labels, key(0)).compile()
    row.compile_seconds = time.perf_counter() - start
    row.peak_memory_bytes, row.memory_measure = xla_memory(compiled), "XLA buffers"
    row.kernels_per_step = kernels_per_step(compiled.as_text(), job.steps)

    def run_epoch(e: int) -> None:
        nonlocal state
        state, stats = compiled(state, images, labels, key(e))
        jax.block_until_ready(stats)

    return run_epoch


def compile_manual_scan(job: Job, row: Row, mesh: Mesh | None = None) -> EpochRunner:
    opt = training.make_optimizer(job.train_config("manual"), job.steps)
    return _compile_scan(job, "manual", opt, row, mesh)


def compile_autodiff_scan(job: Job, row: Row, mesh: Mesh | None = None) -> EpochRunner:
    return _compile_scan(job, "autodiff", optax.adam(1e-3), row, mesh)


def compile_fused_scan(job: Job, row: Row) -> EpochRunner:
    """The manual-scan job with the fused Pallas step (`jaxcalc.fused`); skipped off a GPU
    unless `JAXCALC_PALLAS_INTERPRET=1` asks for interpret mode, or on a JAX without
    Pallas's Triton backend."""
    tcfg = dataclasses.replace(job.train_config("manual"), kernel="fused")
    try:
        interpret = fused_epoch.interpret_mode(job.device.platform)
    except InputError as e:
        raise Skip(str(e)) from None
    blocks = fused_epoch.blocks_from_env(job.cfg.batch_size)
    _, state, data = job.jax_setup("manual", training.make_optimizer(tcfg, job.steps))
    epoch = fused_epoch.make_fused_epoch(
        tcfg, job.steps, N_CLASSES, blocks=blocks, interpret=interpret, unroll=job.cfg.unroll
    )
    return _compile_epoch(job, row, epoch, state, data, None)


def _loop_step(job: Job) -> tuple[Callable, training.TrainState, tuple]:
    """A step that gathers its batch `idx` from the device-resident training set."""
    tcfg = job.train_config("manual")
    step, state, data = job.jax_setup("manual", training.make_optimizer(tcfg, job.steps))

    def loop_step(state, images, labels, idx, key):
        return step(state, (images[idx], labels[idx], key))

    return loop_step, state, data


def _batches(job: Job, e: int) -> np.ndarray:
    order = np.random.default_rng(e).permutation(len(job.labels))
    return order[: job.steps * job.cfg.batch_size].reshape(job.steps, job.cfg.batch_size)


def compile_manual_loop(job: Job, row: Row) -> EpochRunner:
    loop_step, state, (images, labels) = _loop_step(job)
    key = jax.random.PRNGKey(0)
    job.progress(f"  {row.impl}: compiling")
    start = time.perf_counter()
    idx = _batches(job, 0)[0]
    compiled = jax.jit(loop_step).lower(state, images, labels, idx, key).compile()
    row.compile_seconds = time.perf_counter() - start
    row.peak_memory_bytes, row.memory_measure = xla_memory(compiled), "XLA buffers, one step"

    def run_epoch(e: int) -> None:
        nonlocal state
        for idx in _batches(job, e):
            state, stats = compiled(state, images, labels, idx, key)
        jax.block_until_ready(stats)

    return run_epoch


def run_manual_nojit(job: Job, row: Row) -> None:
    loop_step, state, (images, labels) = _loop_step(job)
    key = jax.random.PRNGKey(0)
    batches = _batches(job, 0)
    n = min(job.cfg.nojit_steps, len(batches) - 1) if len(batches) > 1 else 1
    times = []
    with jax.disable_jit(), peak_rss() as rss:
        for i in range(n + 1):  # step 0 is the warm-up
            job.progress(f"  {row.impl}: step {i + 1}/{n + 1}{' (warm-up)' * (i == 0)}")
            start = time.perf_counter()
            state, stats = loop_step(state, images, labels, batches[i % len(batches)], key)
            jax.block_until_ready(stats)
            times.append(time.perf_counter() - start)
    row.epoch_seconds = [t * job.steps for t in times[1:]]
    row.extrapolated, row.note = True, f"extrapolated from {n} steps"
    row.peak_memory_bytes, row.memory_measure = rss.get("bytes"), "peak RSS rise"


def _peer(row: Row, make: Callable[[], Callable[[], None]]) -> EpochRunner:
    """A peer's trainer (`make()` returns `epoch()`); its memory is the peak RSS rise over
    its set-up plus its warm-up epoch."""
    with peak_rss() as setup:
        epoch = make()

    def run_epoch(e: int) -> None:
        if e:
            return epoch()
        with peak_rss() as warm:
            epoch()
        if "bytes" in setup and "bytes" in warm:
            row.peak_memory_bytes = setup["bytes"] + warm["bytes"]
            row.memory_measure = "peak RSS rise"

    return run_epoch


def prepare_numpy(job: Job, row: Row) -> EpochRunner:
    x, y = job.float_rows()
    row.note = "CPU"
    return _peer(
        row,
        lambda: peers.numpy_trainer(x, y, hidden=job.cfg.hidden, batch_size=job.cfg.batch_size),
    )


def prepare_torch(job: Job, row: Row) -> EpochRunner:
    try:
        import torch
    except ImportError:
        raise Skip("PyTorch not installed (pip install 'jaxcalc[peers]')") from None
    device = "cuda" if job.cfg.device == "gpu" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise Skip(f"PyTorch {torch.__version__} sees no CUDA device")
    x, y = job.float_rows()
    row.note = f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads"
    kwargs = dict(hidden=job.cfg.hidden, batch_size=job.cfg.batch_size, device=device)
    if device == "cpu":
        return _peer(row, lambda: peers.torch_trainer(x, y, **kwargs))
    torch.cuda.reset_peak_memory_stats()
    epoch = peers.torch_trainer(x, y, **kwargs)

    def run_epoch(e: int) -> None:
        epoch()
        row.peak_memory_bytes, row.memory_measure = torch.cuda.max_memory_allocated(), "CUDA peak"

    return run_epoch


#: Implementations set up (compiled) first, then timed an epoch of each in turn (`interleave`).
PREPARERS: dict[str, Callable[[Job, Row], EpochRunner]] = {
    "manual-scan": compile_manual_scan,
    "autodiff-scan": compile_autodiff_scan,
    "fused-scan": compile_fused_scan,
    "manual-loop": compile_manual_loop,
    "torch": prepare_torch,
    "numpy": prepare_numpy,
}
#: Timed on its own: a few steps, extrapolated.
RUNNERS: dict[str, Callable[[Job, Row], None]] = {"manual-nojit": run_manual_nojit}


# --------------------------------------------------------------------------- the bench


def run_bench(cfg: BenchConfig, progress: Callable[[str], None] | None = None) -> BenchResult:
    """Run each implementation of `cfg.impls`; see the module docstring. All but the no-jit
    one are set up (compiled) first, then timed an epoch of each in turn (`interleave`).

    A runner that raises is reported as failed (its message in `note`) and the others
    still run; a peer that is not installed is reported as skipped.
    """
    cfg.check()
    progress = progress or (lambda _: None)
    device = jax_device(cfg.device)
    images, labels, source = training_data(cfg)
    progress(f"data: {source}")
    flops = hardware.mlp_train_flops_per_sample(images[0].size, cfg.hidden, N_CLASSES)
    progress(f"measuring the matmul peak ({cfg.matmul_size}x{cfg.matmul_size}, float32)")
    with jax.default_device(device):
        peak = hardware.matmul_peak(n=cfg.matmul_size, device=device)
    job = Job(cfg, images, labels, device, progress)
    rows = [Row(impl, IMPLS[impl]) for impl in cfg.impls]
    compiled = []
    for i, row in enumerate(rows):
        progress(f"[{i + 1}/{len(rows)}] {row.label}")
        if row.impl in PREPARERS:
            run_epoch = attempt(job, row, lambda: PREPARERS[row.impl](job, row))  # noqa: B023
            if run_epoch is not None:
                compiled.append((row.impl, row, run_epoch))
        else:
            attempt(job, row, lambda: RUNNERS[row.impl](job, row))  # noqa: B023
    if compiled:
        progress(f"timing {', '.join(name for name, *_ in compiled)}: an epoch of each in turn")
        for (_, row, _), seconds in zip(compiled, interleave(job, compiled), strict=True):
            row.epoch_seconds = seconds
    for row in rows:
        set_throughput(job, row)
        if row.samples_per_second is not None:
            row.fraction_of_peak = flops * row.samples_per_second / peak
    base = next((r for r in rows if r.impl == BASELINE and r.status == "ok"), None)
    for row in rows:
        if base is not None and row.samples_per_second is not None:
            row.vs_baseline = row.samples_per_second / base.samples_per_second
    return BenchResult(
        config=dataclasses.asdict(cfg),
        machine=machine.describe(device),
        data=source,
        train_size=len(labels),
        flops_per_sample=flops,
        matmul_peak_flops=peak,
        rows=rows,
    )
