"""What every benchmark shares: its config and rows, the job, timing, memory, the device.

- `BenchConfig` (what to time), `Outcome` (whether an implementation ran) and `Row` (its
  result in the training benchmark);
- `Job`: the config, the data and the JAX device every runner gets, with the training
  set-up of the jaxcalc implementations and the images as float rows (`float_rows`);
- `attempt` (a runner that raises is recorded, not raised; `Skip` marks one that cannot run
  here), `interleave` (an epoch of each implementation in turn) and `set_throughput`;
- memory: `peak_rss` (the process's peak resident memory), `xla_memory` (an executable's
  buffers) and `gib` (bytes for a message);
- `jax_device`, `training_data`. What the numbers were measured on is
  `jaxcalc.machine.describe`; the command line prints progress (`cli.progress_to_stderr`).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from jaxcalc import training
from jaxcalc.data import PIXELS, load, locate
from jaxcalc.validation import InputError, RunError, check_choice, check_positive_int

#: The implementations a config may name, with their labels (see `jaxcalc.bench.training`).
IMPLS: dict[str, str] = {
    "manual-scan": "jaxcalc hand-written + adam, scan epoch",
    "autodiff-scan": "jax.grad + optax.adam, scan epoch",
    "fused-scan": "jaxcalc fused Pallas kernels + adam, scan epoch (GPU)",
    "manual-loop": "jaxcalc, Python loop over a jitted step",
    "manual-nojit": "jaxcalc, no jit (op by op)",
    "torch": "PyTorch eager",
    "numpy": "NumPy hand-written",
}
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

    def check(self, devices: int = 1) -> BenchConfig:
        """Raise `InputError` for an unknown implementation or device, a size <= 0 or above
        its cap (`LIMITS`), or a job that would not fit in memory on `devices` devices."""
        if not self.impls:
            raise InputError("choose at least one implementation")
        for impl in self.impls:
            check_choice("implementation", impl, IMPLS)
        check_choice("device", self.device, DEVICES)
        for name in ("hidden", "batch_size", "epochs", "nojit_steps", "matmul_size", "unroll"):
            check_positive_int(name, getattr(self, name))
        if self.train_size is not None:
            check_positive_int("train_size", self.train_size)
        for name, (limit, flag) in LIMITS.items():
            if getattr(self, name) > limit:
                raise InputError(
                    f"{name} ({flag}) must be at most {limit}, got {getattr(self, name)}"
                )
        need, available = memory_needed(self, devices), available_memory()
        if need > available:
            raise InputError(
                f"the benchmark would need {gib(need)} of memory, {gib(available)} are "
                "available; use a smaller --hidden, --batch-size, --train-size or "
                f"--peak-size{', or fewer --devices' if devices > 1 else ''}"
            )
        return self


#: Caps on the sizes whose larger values would only run for hours: name -> (cap, option).
LIMITS = {
    "epochs": (1000, "--epochs"),
    "unroll": (128, "--unroll"),
    "matmul_size": (16384, "--peak-size"),
}


def memory_needed(cfg: BenchConfig, devices: int = 1) -> int:
    """A generous estimate of the bytes the benchmark of `cfg` holds at once on `devices`
    (virtual devices share the host's memory): the uint8 data (on the host, a float32 copy,
    one copy per device), the model with its gradients and Adam state (per device and per
    implementation, as they are compiled side by side), a batch's activations (per step of
    the scan's unroll), and the three (n, n) float32 matrices of the peak matmul."""
    n, pixels, hidden = cfg.train_size or 60_000, PIXELS, cfg.hidden
    data = n * (pixels + 8) * (1 + devices) + 4 * n * pixels
    params = hidden * (pixels + 1 + N_CLASSES) + N_CLASSES
    model = 4 * params * 6 * devices * len(cfg.impls)
    activations = 4 * cfg.batch_size * (pixels + 4 * hidden + 4 * N_CLASSES) * cfg.unroll
    return data + model + activations + 12 * cfg.matmul_size**2


def available_memory() -> int:
    """Bytes of memory a new allocation can have (Linux's MemAvailable; else all of RAM)."""
    try:
        with open("/proc/meminfo") as f:
            return 1024 * int(next(ln for ln in f if ln.startswith("MemAvailable:")).split()[1])
    except (OSError, StopIteration, ValueError, IndexError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def gib(nbytes: int) -> str:
    """`nbytes` in GiB for a message: "about 1.5 GiB"."""
    return f"about {nbytes / 2**30:.3g} GiB" if nbytes < 2**100 else "more than 2^70 GiB"


def require_results(rows: Sequence[Row]) -> None:
    """`RunError` when no row measured anything (every implementation failed or was
    skipped): then there is nothing to report, and no file should be written."""
    if not any(row.status == "ok" and row.samples_per_second for row in rows):
        why = "; ".join(f"{row.impl} {row.status}: {row.note}" for row in rows)
        raise RunError(f"no implementation produced a result ({why})")


@dataclass
class Outcome:
    """What every benchmark row holds: the implementation, and whether it ran: `status` is
    ok, skipped or failed (see `note`)."""

    impl: str
    label: str
    status: str = "ok"
    note: str = ""


@dataclass
class Row(Outcome):
    """One implementation's result in the training benchmark (and its scaling)."""

    samples_per_second: float | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    compile_seconds: float | None = None
    peak_memory_bytes: int | None = None
    memory_measure: str = ""  # how peak_memory_bytes was measured
    fraction_of_peak: float | None = None
    vs_baseline: float | None = None  # samples/s over the autodiff-scan's
    extrapolated: bool = False
    kernels_per_step: float | None = None  # launches per step of a compiled epoch (bench.kernels)


class Skip(Exception):
    """An implementation cannot run here (a peer not installed, no CUDA); not a failure."""


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
def peak_rss() -> Iterator[dict[str, int]]:
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


def xla_memory(compiled: Any) -> int | None:
    """Bytes an executable allocates beyond its inputs: temporaries plus outputs."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes)


# --------------------------------------------------------------------------- the job


@dataclass
class Job:
    """What every runner gets: the config, the data, the JAX device."""

    cfg: BenchConfig
    images: np.ndarray
    labels: np.ndarray
    device: jax.Device
    progress: Callable[[str], None]

    @property
    def steps(self) -> int:
        return len(self.labels) // self.cfg.batch_size

    def train_config(self, grad: str) -> training.Config:
        return training.Config(
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
        return jax.device_put(tree, self.device) if mesh is None else training.replicate(mesh, tree)

    def jax_setup(
        self, grad: str, opt: Any, mesh: Mesh | None = None
    ) -> tuple[Callable, training.TrainState, tuple]:
        """The step, the initial state and the device-resident (images, labels)."""
        tcfg = self.train_config(grad)
        state = training.init_state(tcfg, opt, self.images[0].size, N_CLASSES)
        return (
            training.make_step(tcfg, opt, N_CLASSES),
            self.put(state, mesh),
            self.put((self.images, self.labels), mesh),
        )

    def float_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The images as float32 rows (n, h·w) in [0, 1], with the labels (on the host)."""
        x = self.images.reshape(len(self.images), -1).astype(np.float32) / np.float32(255)
        return x, self.labels


EpochRunner = Callable[[int], None]  # runs epoch e (0: the warm-up) of a compiled job


# --------------------------------------------------------------------------- timing


def attempt(job: Job, row: Outcome, run: Callable[[], Any]) -> Any:
    """`run()` on the job's device, or None when it raises: a runner that raises is recorded
    in `row` as failed (or skipped), not raised."""
    try:
        with jax.default_device(job.device):
            return run()
    except Skip as e:
        row.status, row.note = "skipped", str(e)
    except Exception as e:  # noqa: BLE001 - reported in the table, the others still run
        row.status, row.note = "failed", f"{type(e).__name__}: {e}".splitlines()[0]
    return None


def set_throughput(job: Job, row: Row) -> None:
    """samples/s of a row that ran: one epoch's samples over the median epoch time."""
    if row.status == "ok" and row.epoch_seconds:
        seconds = statistics.median(row.epoch_seconds)
        row.samples_per_second = job.steps * job.cfg.batch_size / seconds


def interleave(
    job: Job, runs: Sequence[tuple[str, Outcome, Callable[[int], None]]], *, unit: str = "epoch"
) -> list[list[float]]:
    """Time round e of every (name, row, run) in turn, e = 0 (the warm-up) .. `epochs`
    (`job.cfg.epochs` rounds timed, each an epoch of training or, with `unit="call"`, one
    call); return each run's timed seconds, warm-up left out ([] for one that failed).

    Each implementation sees the machine in the same state, so their ratios are fair: run
    one after the other, they would see this shared machine drift (by 10-20% over a
    minute). A pause of `SETTLE_SECONDS` before each round lets the previous one's threads
    go idle: without it the epoch after another implementation's ran ~5% slower (measured:
    the same program at 0.94x or 1.05x of its twin depending on the order, 1.00x with it).
    """
    rounds = job.cfg.epochs + 1
    times: list[list[float]] = [[] for _ in runs]
    for e in range(rounds):
        for (name, row, run), seconds in zip(runs, times, strict=True):
            if row.status != "ok":
                continue
            job.progress(f"  {name}: {unit} {e + 1}/{rounds}{' (warm-up)' * (e == 0)}")
            time.sleep(SETTLE_SECONDS)
            start = time.perf_counter()
            attempt(job, row, lambda: run(e))  # noqa: B023 - called at once
            seconds.append(time.perf_counter() - start)
    return [s[1:] if row.status == "ok" else [] for (_, row, _), s in zip(runs, times, strict=True)]


# --------------------------------------------------------------------------- the device


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
