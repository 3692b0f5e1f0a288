"""One job timed several ways: train 784-H-10 with Adam on MNIST-shaped data.

The implementations (`IMPLS`), all the ReLU network with softmax cross-entropy and Adam
(lr 1e-3), no augmentation, dropout or weight averaging:

- `manual-scan`: jaxcalc's hand-written backward pass and Adam, one jitted `lax.scan`
  per epoch (`train.make_step` / `train.make_epoch`, what `jaxcalc train` runs);
- `autodiff-scan`: `jax.grad` + `optax.adam` in the same scan epoch: the baseline of
  every ratio;
- `manual-loop`: a Python loop calling the jitted hand-written step once per batch;
- `manual-nojit`: the same step op by op without jit, a few steps timed and extrapolated
  to an epoch;
- `torch`: PyTorch eager (CPU, or CUDA with `device="gpu"`), when installed;
- `numpy`: hand-written NumPy (always on the CPU).

Throughput is the median of several epochs after a warm-up epoch; the epochs of the
implementations are interleaved (epoch 1 of each, then epoch 2 of each, ...) so that all see
the machine alike. Compile time is reported apart, and each result is also a fraction of
the machine's measured matmul peak (`hardware.matmul_peak`) given the job's FLOPs
(`hardware.mlp_train_flops_per_sample`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import optax
from jax.sharding import Mesh

from jaxcalc import train
from jaxcalc.bench import hardware, peers
from jaxcalc.data import load, locate
from jaxcalc.validation import InputError, check_choice

IMPLS: dict[str, str] = {
    "manual-scan": "jaxcalc hand-written + adam, scan epoch",
    "autodiff-scan": "jax.grad + optax.adam, scan epoch",
    "manual-loop": "jaxcalc, Python loop over a jitted step",
    "manual-nojit": "jaxcalc, no jit (op by op)",
    "torch": "PyTorch eager",
    "numpy": "NumPy hand-written",
}
BASELINE = "autodiff-scan"
#: Pause before each timed epoch, untimed: thread pools that spin after their work (OpenBLAS,
#: OpenMP, XLA's) otherwise steal ~5% from the next epoch, whatever runs it.
SETTLE_SECONDS = 0.25
DEVICES = ("cpu", "gpu")
N_CLASSES = 10


@dataclass(frozen=True)
class BenchConfig:
    """What to time. `train_size` None: the full training set (60,000 images)."""

    impls: tuple[str, ...] = tuple(IMPLS)
    hidden: int = 512
    batch_size: int = 128
    epochs: int = 3  # timed epochs, after one warm-up epoch
    device: str = "cpu"
    train_size: int | None = None
    synthetic: bool = False  # synthetic data even when MNIST is found
    nojit_steps: int = 10  # steps timed without jit (after one warm-up step)
    matmul_size: int = 2048  # n of the (n, n) @ (n, n) matmul that measures the peak
    data_dir: str | None = None
    unroll: int = 1  # steps per iteration of the scan epochs' loop (`lax.scan`'s unroll)

    def check(self) -> BenchConfig:
        """Raise `InputError` for an unknown implementation or device, or a size <= 0."""
        if not self.impls:
            raise InputError("choose at least one implementation")
        for impl in self.impls:
            check_choice("implementation", impl, IMPLS)
        check_choice("device", self.device, DEVICES)
        for name in ("hidden", "batch_size", "epochs", "nojit_steps", "matmul_size", "unroll"):
            _check_positive(name, getattr(self, name))
        if self.train_size is not None:
            _check_positive("train_size", self.train_size)
        return self


@dataclass
class Row:
    """One implementation's result. `status` is ok, skipped or failed (see `note`)."""

    impl: str
    label: str
    status: str = "ok"
    note: str = ""
    samples_per_second: float | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    compile_seconds: float | None = None
    peak_memory_bytes: int | None = None
    memory_measure: str = ""  # how peak_memory_bytes was measured
    fraction_of_peak: float | None = None
    vs_baseline: float | None = None  # samples/s over the autodiff-scan's
    extrapolated: bool = False


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


class _Skip(Exception):
    """An implementation cannot run here (a peer not installed, no CUDA); not a failure."""


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


# --------------------------------------------------------------------------- data


def training_data(cfg: BenchConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """uint8 images (n, 28, 28), int32 labels (n,), and a line saying which data they are.

    Real MNIST when it is found (never downloaded here), else random data of its shape.
    """
    if not cfg.synthetic and locate("mnist", cfg.data_dir) is not None:
        d = load("mnist", data_dir=cfg.data_dir, val_size=0, allow_download=False)
        images, labels = d.train_images[: cfg.train_size], d.train_labels[: cfg.train_size]
        source = f"MNIST ({len(labels)} training images)"
    else:
        n = cfg.train_size or 60_000
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, N_CLASSES, n)
        why = "asked for" if cfg.synthetic else "MNIST not found"
        source = f"synthetic, MNIST-shaped ({n} random images; {why})"
    if cfg.batch_size > len(labels):
        raise InputError(f"batch_size {cfg.batch_size} exceeds the {len(labels)} training images")
    return images, labels.astype(np.int32), source


# --------------------------------------------------------------------------- memory


@contextlib.contextmanager
def _peak_rss() -> Iterator[dict[str, int]]:
    """Measure the rise of the process's peak resident memory (Linux; else nothing)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak, to the current RSS
        start = _status_kb("VmRSS")
    except OSError:
        start = None
    yield out
    if start is not None:
        out["bytes"] = max(0, _status_kb("VmHWM") - start) * 1024


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(key + ":"))
    return int(line.split()[1])


def _xla_memory(compiled: Any) -> int | None:
    """Bytes an executable allocates beyond its inputs: temporaries plus outputs."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes)


# --------------------------------------------------------------------------- the runners


@dataclass
class _Job:
    """What every runner gets: the config, the data, the JAX device."""

    cfg: BenchConfig
    images: np.ndarray
    labels: np.ndarray
    device: jax.Device
    progress: Callable[[str], None]

    @property
    def steps(self) -> int:
        return len(self.labels) // self.cfg.batch_size

    def train_config(self, grad: str) -> train.Config:
        return train.Config(
            hidden=self.cfg.hidden,
            activation="relu",
            optimizer="adam",
            lr=1e-3,
            schedule="constant",
            weight_decay=0.0,
            batch_size=self.cfg.batch_size,
            grad=grad,
            augment="none",
            dropout=0.0,
            ema=0.0,
            deskew=False,
        ).check()

    def put(self, tree: Any, mesh: Mesh | None = None) -> Any:
        """`tree` on the job's device, or replicated over every device of `mesh`."""
        return jax.device_put(tree, self.device) if mesh is None else train.replicate(mesh, tree)

    def jax_setup(
        self, grad: str, opt: Any, mesh: Mesh | None = None
    ) -> tuple[Callable, train.TrainState, tuple]:
        """The step, the initial state and the device-resident (images, labels)."""
        tcfg = self.train_config(grad)
        state = train.init_state(tcfg, opt, self.images[0].size, N_CLASSES)
        return (
            train.make_step(tcfg, opt, N_CLASSES),
            self.put(state, mesh),
            self.put((self.images, self.labels), mesh),
        )

    def epoch_progress(self, name: str) -> Callable[[int], None]:
        """`e -> None` reporting epoch e (0: the warm-up) of `name`."""
        n = self.cfg.epochs + 1
        return lambda e: self.progress(f"  {name}: epoch {e + 1}/{n}{' (warm-up)' * (e == 0)}")


EpochRunner = Callable[[int], None]  # runs epoch e (0: the warm-up) of a compiled job


def _compile_scan(job: _Job, grad: str, opt: Any, row: Row, mesh: Mesh | None) -> EpochRunner:
    step, state, (images, labels) = job.jax_setup(grad, opt, mesh)
    epoch_fn = jax.jit(train.make_epoch(step, job.cfg.batch_size, mesh=mesh, unroll=job.cfg.unroll))
    key = lambda e: job.put(jax.random.PRNGKey(e), mesh)  # noqa: E731
    job.progress(f"  {row.impl}: compiling")
    start = time.perf_counter()
    compiled = epoch_fn.lower(state, images, labels, key(0)).compile()
    row.compile_seconds = time.perf_counter() - start
    row.peak_memory_bytes, row.memory_measure = _xla_memory(compiled), "XLA buffers"

    def run_epoch(e: int) -> None:
        nonlocal state
        state, losses = compiled(state, images, labels, key(e))
        losses.block_until_ready()

    return run_epoch


def compile_manual_scan(job: _Job, row: Row, mesh: Mesh | None = None) -> EpochRunner:
    opt = train.make_optimizer(job.train_config("manual"), job.steps)
    return _compile_scan(job, "manual", opt, row, mesh)


def compile_autodiff_scan(job: _Job, row: Row, mesh: Mesh | None = None) -> EpochRunner:
    return _compile_scan(job, "autodiff", optax.adam(1e-3), row, mesh)


def _loop_step(job: _Job) -> tuple[Callable, train.TrainState, tuple]:
    """A step that gathers its batch `idx` from the device-resident training set."""
    tcfg = job.train_config("manual")
    step, state, data = job.jax_setup("manual", train.make_optimizer(tcfg, job.steps))

    def loop_step(state, images, labels, idx, key):
        return step(state, (images[idx], labels[idx], key))

    return loop_step, state, data


def _batches(job: _Job, e: int) -> np.ndarray:
    order = np.random.default_rng(e).permutation(len(job.labels))
    return order[: job.steps * job.cfg.batch_size].reshape(job.steps, job.cfg.batch_size)


def compile_manual_loop(job: _Job, row: Row) -> EpochRunner:
    loop_step, state, (images, labels) = _loop_step(job)
    key = jax.random.PRNGKey(0)
    job.progress(f"  {row.impl}: compiling")
    start = time.perf_counter()
    idx = _batches(job, 0)[0]
    compiled = jax.jit(loop_step).lower(state, images, labels, idx, key).compile()
    row.compile_seconds = time.perf_counter() - start
    row.peak_memory_bytes, row.memory_measure = _xla_memory(compiled), "XLA buffers, one step"

    def run_epoch(e: int) -> None:
        nonlocal state
        for idx in _batches(job, e):
            state, loss = compiled(state, images, labels, idx, key)
        loss.block_until_ready()

    return run_epoch


def run_manual_nojit(job: _Job, row: Row) -> None:
    loop_step, state, (images, labels) = _loop_step(job)
    key = jax.random.PRNGKey(0)
    batches = _batches(job, 0)
    n = min(job.cfg.nojit_steps, len(batches) - 1) if len(batches) > 1 else 1
    times = []
    with jax.disable_jit(), _peak_rss() as rss:
        for i in range(n + 1):  # step 0 is the warm-up
            job.progress(f"  {row.impl}: step {i + 1}/{n + 1}{' (warm-up)' * (i == 0)}")
            start = time.perf_counter()
            state, loss = loop_step(state, images, labels, batches[i % len(batches)], key)
            loss.block_until_ready()
            times.append(time.perf_counter() - start)
    row.epoch_seconds = [t * job.steps for t in times[1:]]
    row.extrapolated, row.note = True, f"extrapolated from {n} steps"
    row.peak_memory_bytes, row.memory_measure = rss.get("bytes"), "peak RSS rise"


def _float_rows(job: _Job) -> tuple[np.ndarray, np.ndarray]:
    x = job.images.reshape(len(job.images), -1).astype(np.float32) / np.float32(255)
    return x, job.labels


def _peer(row: Row, make: Callable[[], Callable[[], None]]) -> EpochRunner:
    """A peer's trainer (`make()` returns `epoch()`); its memory is the peak RSS rise over
    its set-up plus its warm-up epoch."""
    with _peak_rss() as setup:
        epoch = make()

    def run_epoch(e: int) -> None:
        if e:
            return epoch()
        with _peak_rss() as warm:
            epoch()
        if "bytes" in setup and "bytes" in warm:
            row.peak_memory_bytes = setup["bytes"] + warm["bytes"]
            row.memory_measure = "peak RSS rise"

    return run_epoch


def prepare_numpy(job: _Job, row: Row) -> EpochRunner:
    x, y = _float_rows(job)
    row.note = "CPU"
    return _peer(
        row,
        lambda: peers.numpy_trainer(x, y, hidden=job.cfg.hidden, batch_size=job.cfg.batch_size),
    )


def prepare_torch(job: _Job, row: Row) -> EpochRunner:
    try:
        import torch
    except ImportError:
        raise _Skip("PyTorch not installed (pip install 'jaxcalc[peers]')") from None
    device = "cuda" if job.cfg.device == "gpu" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise _Skip(f"PyTorch {torch.__version__} sees no CUDA device")
    x, y = _float_rows(job)
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
PREPARERS: dict[str, Callable[[_Job, Row], EpochRunner]] = {
    "manual-scan": compile_manual_scan,
    "autodiff-scan": compile_autodiff_scan,
    "manual-loop": compile_manual_loop,
    "torch": prepare_torch,
    "numpy": prepare_numpy,
}
#: Timed on its own: a few steps, extrapolated.
RUNNERS: dict[str, Callable[[_Job, Row], None]] = {"manual-nojit": run_manual_nojit}


# --------------------------------------------------------------------------- the bench


def jax_device(name: str) -> jax.Device:
    """The first JAX device of platform `name` (cpu or gpu); `InputError` when there is none."""
    check_choice("device", name, DEVICES)
    try:
        return jax.devices(name)[0]
    except RuntimeError:
        raise InputError(
            f"JAX sees no {name} device (its backends: {jax.default_backend()}); "
            "install jax[cuda12] for a GPU, or use --device cpu"
        ) from None


def machine(device: jax.Device) -> dict[str, Any]:
    """What the numbers were measured on."""
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


def attempt(job: _Job, row: Row, run: Callable[[], Any]) -> Any:
    """`run()` on the job's device, or None when it raises: a runner that raises is recorded
    in `row` as failed (or skipped), not raised."""
    try:
        with jax.default_device(job.device):
            return run()
    except _Skip as e:
        row.status, row.note = "skipped", str(e)
    except Exception as e:  # noqa: BLE001 - reported in the table, the others still run
        row.status, row.note = "failed", f"{type(e).__name__}: {e}".splitlines()[0]
    return None


def set_throughput(job: _Job, row: Row) -> None:
    """samples/s of a row that ran: one epoch's samples over the median epoch time."""
    if row.status == "ok" and row.epoch_seconds:
        seconds = statistics.median(row.epoch_seconds)
        row.samples_per_second = job.steps * job.cfg.batch_size / seconds


def interleave(job: _Job, runs: Sequence[tuple[str, Row, EpochRunner]]) -> None:
    """Time epoch e of every compiled (name, row, run_epoch) in turn, e = 0 (warm-up) ..
    epochs, into each row's `epoch_seconds`.

    Each implementation sees the machine in the same state, so their ratios are fair: run
    one after the other, they would see this shared machine drift (by 10-20% over a
    minute). A pause of `SETTLE_SECONDS` before each epoch lets the previous one's threads
    go idle: without it the epoch after another implementation's ran ~5% slower (measured:
    the same program at 0.94x or 1.05x of its twin depending on the order, 1.00x with it).
    """
    times: list[list[float]] = [[] for _ in runs]
    for e in range(job.cfg.epochs + 1):
        for (name, row, run_epoch), seconds in zip(runs, times, strict=True):
            if row.status != "ok":
                continue
            job.epoch_progress(name)(e)
            time.sleep(SETTLE_SECONDS)
            start = time.perf_counter()
            attempt(job, row, lambda: run_epoch(e))  # noqa: B023 - called at once
            seconds.append(time.perf_counter() - start)
    for (_, row, _), seconds in zip(runs, times, strict=True):
        if row.status == "ok":
            row.epoch_seconds = seconds[1:]


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
    job = _Job(cfg, images, labels, device, progress)
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
        interleave(job, compiled)
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
        machine=machine(device),
        data=source,
        train_size=len(labels),
        flops_per_sample=flops,
        matmul_peak_flops=peak,
        rows=rows,
    )


# --------------------------------------------------------------------------- reporting


def _fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value / scale, spec)


def aligned_rows(
    head: Sequence[str], lines: Sequence[Sequence[str]], *, left: Sequence[int] = (0,)
) -> list[str]:
    """Header, rule and rows in aligned columns (`left` columns left-aligned, the rest right);
    each row's last cell beyond `head` is a free-form note appended after two spaces."""
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt_row(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in pairs)

    rows = [fmt_row(head), fmt_row(["-" * w for w in widths])]
    return rows + [fmt_row(line[:-1]) + (f"  {line[-1]}" if line[-1] else "") for line in lines]


def table(result: BenchResult) -> str:
    """The result as an aligned text table, with the targets of the hand-written scan."""
    head = ("implementation", "samples/s", "epoch s", "compile s", "peak MB", "% peak", "x base")
    lines = []
    for r in result.rows:
        sps = _fmt(r.samples_per_second, ",.0f") + ("*" if r.extrapolated else "")
        epoch = _fmt(statistics.median(r.epoch_seconds) if r.epoch_seconds else None, ".3f")
        mem = _fmt(r.peak_memory_bytes, ".1f", 2**20)
        if r.peak_memory_bytes is not None:
            mem += f" ({r.memory_measure})"
        pct = _fmt(r.fraction_of_peak, ".1%")
        ratio = _fmt(r.vs_baseline, ".2f" if (r.vs_baseline or 1) >= 0.01 else ".1e")
        status = "" if r.status == "ok" else f"{r.status.upper()}: "
        note = f"{status}{r.note}" if status or r.note else ""
        lines.append((r.impl, sps, epoch, _fmt(r.compile_seconds, ".2f"), mem, pct, ratio, note))
    out = [
        f"job: 784-{result.config['hidden']}-10 ReLU, Adam, batch {result.config['batch_size']}, "
        f"{result.train_size} images/epoch; data: {result.data}",
        f"machine: {result.machine['jax_device']}, {result.machine['cpu_count']} CPUs, "
        f"load {_load(result.machine)}; matmul peak {result.matmul_peak_flops / 1e9:,.1f} "
        f"GFLOP/s; {result.flops_per_sample / 1e6:.2f} MFLOP/sample",
        "",
        *aligned_rows(head, lines, left=(0, 4)),
    ]
    out.append(f"x base: samples/s over {BASELINE}'s; * extrapolated; median of timed epochs")
    out += summary(result)
    return "\n".join(out)


def _load(m: dict[str, Any]) -> str:
    return "?" if m["load_average"] is None else " ".join(f"{x:.2f}" for x in m["load_average"])


def summary(result: BenchResult) -> list[str]:
    """The hand-written scan against the issue's targets, where both sides ran."""
    me = result.row("manual-scan")
    if me is None or me.samples_per_second is None:
        return []
    lines = [f"manual-scan: {me.fraction_of_peak:.1%} of the matmul peak (target >= 65%)"]
    for impl, target in ((BASELINE, 1.0), ("torch", 1.8), ("numpy", 4.4)):
        other = result.row(impl)
        if other is not None and other.samples_per_second:
            ratio = me.samples_per_second / other.samples_per_second
            lines.append(f"manual-scan / {impl}: {ratio:.2f}x (target >= {target}x)")
    return lines


def progress_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
