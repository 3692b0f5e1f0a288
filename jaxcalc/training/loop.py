"""`fit`: a whole training run, as prepare → compile → epochs → finish, and its timings.

- prepare: load the data and build the mesh and the initial (or resumed) state; meanwhile
  the epoch and the predictions compile on a background thread, from the shapes alone,
  while the images are deskewed (`preprocess.deskewed`, one program over all three splits)
  and put on the devices;
- compile: the epoch is XLA's (`make_epoch`) or, with `kernel="fused"`, the Pallas kernels'
  (`fused_epoch.make_fused_epoch`, its options read before any data is loaded); on a GPU
  the scan runs `GPU_UNROLL` steps per loop iteration;
- epochs: one call of the compiled scan each; a non-finite loss stops the run; then the
  epoch's record: its mean loss, its running train accuracy (what the steps' own
  predictions got right on the epoch's distorted batches, counted inside the scan:
  `step.running_accuracy`) and the validation split's accuracy (a separate pass), and its
  checkpoint, written on another thread while the next epoch trains (atomically, process
  0 only);
- finish: score the test set once, draw the figures (with `figures`) while it is scored
  and the last checkpoint is written, and write `metrics.json`, with `timings`: the seconds
  of each part (parts that overlap others are marked so in `TIMINGS`).

The figures' module (`jaxcalc.plots.training`, matplotlib) is imported only when figures
are drawn: an optional, heavy backend.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from jaxcalc import mlp
from jaxcalc.data import Data, load
from jaxcalc.files import write_json
from jaxcalc.training import checkpoint, fused_epoch, parallel, processes
from jaxcalc.training.config import MAX_STEPS, Config
from jaxcalc.training.preprocess import deskewed
from jaxcalc.training.step import (
    StepStats,
    TrainState,
    eval_params,
    fresh_state,
    make_epoch,
    make_optimizer,
    make_predict,
    make_step,
    run_keys,
    running_accuracy,
)
from jaxcalc.validation import InputError

GPU_UNROLL = 8  # scan steps per loop iteration on a GPU, where a step is bound by launches
#: The parts of `metrics.json`'s `timings`, in seconds (the command line adds the rest).
TIMINGS = {
    "load": "reading and verifying the data files",
    "preprocess": "deskewing (or reading the deskewed images kept), copying to the devices",
    "compile": "the epoch and predictions, on a thread beside load/preprocess",
    "train": "the epochs (the sum of history's seconds)",
    "eval": "scoring the validation split after each epoch, and the test set (what is waited for)",
    "checkpoint": "writing checkpoints, on a thread beside training and the figures",
    "figures": "drawing the figures, beside the test set's scoring and the last checkpoint",
}
FIGURES = "jaxcalc.plots.training"  # the figures' module: matplotlib, imported when needed


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and what to do."""


class Result(NamedTuple):
    params: mlp.Params  # the weights evaluated (the running average when cfg.ema > 0)
    metrics: dict[str, Any]
    test_predictions: np.ndarray
    data: Data


@dataclass
class Run:
    """A run in progress: its settings, its data on the devices, its state and history."""

    cfg: Config
    mesh: Mesh
    checkpoint: Path
    data: Data  # on the host, after preprocessing
    state: TrainState
    history: list[dict]
    train: tuple[jax.Array, jax.Array]  # images, labels on the mesh
    eval_sets: dict[str, tuple[jax.Array, jax.Array]]  # "val" -> images, labels on the mesh
    test_images: jax.Array
    steps: int  # per epoch
    seconds: dict[str, float]

    @property
    def chief(self) -> bool:
        return jax.process_index() == 0

    def epoch_key(self, epoch: int) -> jax.Array:
        return parallel.replicate(self.mesh, jax.random.fold_in(run_keys(self.cfg.seed)[1], epoch))


class Programs(NamedTuple):
    """The compiled epoch, and one compiled prediction per input shape."""

    epoch: Any
    predict: dict[tuple[int, ...], Any]


def prepare(
    cfg: Config,
    out_dir: Path,
    data: Data | None,
    data_dir: str | os.PathLike | None,
    resume: bool,
    devices: int | None,
    kernel: fused_epoch.Options | None,
    cache: str | os.PathLike | None = None,
) -> tuple[Run, Programs]:
    """Load and preprocess the data, build the state (or resume it), put it all on the mesh,
    and compile the programs meanwhile (`kernel`: the fused epoch's options, with
    `cfg.kernel == "fused"`; `cache`: where the deskewed images are kept, if anywhere)."""
    mesh = parallel.make_mesh(devices)
    parallel.check_batch(cfg.batch_size, mesh.size)
    processes.agree(dataclasses.asdict(cfg))
    path = out_dir / checkpoint.CHECKPOINT
    if resume and not path.is_file():
        raise InputError(f"no checkpoint {path} to resume; start without --resume")
    t0 = time.perf_counter()
    if data is None:
        data = load(cfg.dataset, data_dir=data_dir, val_size=cfg.val_size, val_fold=cfg.val_fold)
    seconds = {"load": time.perf_counter() - t0}
    if not len(data.test_labels):
        raise InputError("the data has no test examples: the test set is scored at the end")
    n_train = len(data.train_labels[: cfg.train_limit])
    if cfg.batch_size > n_train:
        raise InputError(f"batch_size {cfg.batch_size} exceeds the {n_train} training examples")
    steps = n_train // cfg.batch_size
    if steps * cfg.epochs > MAX_STEPS:
        raise InputError(
            f"epochs {cfg.epochs} x {steps} steps per epoch exceeds 2**31 - 1 updates, what the "
            "optimiser's int32 step count holds; use fewer --epochs"
        )
    if resume:
        state, history = checkpoint.load_checkpoint(path, cfg)
    else:
        state, history = fresh_state(cfg), []
    with ThreadPoolExecutor(1, thread_name_prefix="jaxcalc-compile") as pool:
        shapes = _shapes(mesh, _host_arrays(cfg, state, data))
        compiling = pool.submit(
            compile_programs, cfg, mesh, steps, len(data.classes), shapes, kernel
        )
        t0 = time.perf_counter()
        if cfg.deskew:
            data = deskewed(data, cache=cache)
        state, train, eval_sets, test_x = parallel.replicate(mesh, _host_arrays(cfg, state, data))
        seconds["preprocess"] = time.perf_counter() - t0
        programs, seconds["compile"] = compiling.result()
    run = Run(cfg, mesh, path, data, state, history, train, eval_sets, test_x, steps, seconds)
    return run, programs


def _host_arrays(cfg: Config, state: TrainState, data: Data) -> tuple:
    """(state, (train images, labels), {"val": (images, labels)} to score after each epoch
    (empty without a validation split), test images): what goes onto the mesh, as host
    arrays."""
    train_x, train_y = data.train_images[: cfg.train_limit], data.train_labels[: cfg.train_limit]
    train_y = train_y.astype(np.int32)
    eval_sets = {}
    if len(data.val_labels):
        eval_sets["val"] = (data.val_images, data.val_labels.astype(np.int32))
    return state, (train_x, train_y), eval_sets, data.test_images


def _shapes(mesh: Mesh, arrays: tuple) -> dict:
    """Shapes and shardings of the programs' arguments (from `_host_arrays`): all that
    compiling needs."""
    replicated = NamedSharding(mesh, P())

    def like(a) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(np.shape(a), a.dtype, sharding=replicated)

    state, train, eval_sets, test_x = jax.tree.map(like, arrays)
    return {
        "state": state,
        "train": train,
        "key": like(jax.random.PRNGKey(0)),
        "images": [x for x, _ in eval_sets.values()] + [test_x],
    }


def compile_programs(
    cfg: Config,
    mesh: Mesh,
    steps: int,
    n_classes: int,
    shapes: dict,
    kernel: fused_epoch.Options | None,
) -> tuple[Programs, float]:
    """Compile the epoch (its state donated: updated in place) and the predictions;
    return them with the seconds it took. The epoch is the fused one with `kernel` (its
    `fused_epoch.options`), else XLA's."""
    t0 = time.perf_counter()
    platform = mesh.devices.flat[0].platform
    unroll = GPU_UNROLL if platform == "gpu" else 1  # the CPU's program stays as it was
    if kernel is not None:
        total = steps * cfg.epochs
        epoch = fused_epoch.make_fused_epoch(
            cfg, total, n_classes, blocks=kernel.blocks, interpret=kernel.interpret, unroll=unroll
        )
    else:
        opt = make_optimizer(cfg, steps * cfg.epochs)
        step = make_step(cfg, opt, n_classes)
        epoch = make_epoch(step, cfg.batch_size, mesh=mesh, unroll=unroll)
    epoch = jax.jit(epoch, donate_argnums=0).lower(shapes["state"], *shapes["train"], shapes["key"])
    predict = jax.jit(make_predict(cfg.activation))
    params = jax.eval_shape(lambda s: eval_params(s, cfg.ema), shapes["state"])
    compiled = {}
    for x in shapes["images"]:
        if x.shape not in compiled:
            compiled[x.shape] = predict.lower(params, x).compile()
    return Programs(epoch.compile(), compiled), time.perf_counter() - t0


def run_epochs(run: Run, programs: Programs, progress: bool, writer: checkpoint.Writer) -> None:
    """Train the remaining epochs: each one recorded, then checkpointed by `writer` (on its
    thread, while the next epoch trains)."""
    cfg = run.cfg
    bar = tqdm(
        total=cfg.epochs,
        initial=len(run.history),
        desc=cfg.dataset,
        unit="epoch",
        disable=not (progress and run.chief),
    )
    run.seconds["eval"] = 0.0
    with bar:
        for epoch in range(len(run.history), cfg.epochs):
            t0 = time.perf_counter()
            state, stats = programs.epoch(run.state, *run.train, run.epoch_key(epoch))
            stats = StepStats(*map(np.asarray, stats))  # waits for the epoch
            seconds = time.perf_counter() - t0
            _check_finite(run, epoch, stats.loss)
            run.state = state
            record = {
                "epoch": epoch + 1,
                "loss": float(stats.loss.mean()),
                "train_running_accuracy": running_accuracy(stats, cfg.batch_size),
            }
            t0 = time.perf_counter()
            record.update(_score(run, programs))
            run.seconds["eval"] += time.perf_counter() - t0
            record["seconds"] = seconds
            run.history.append(record)
            if run.chief:  # a copy of the state now; the file is written meanwhile
                writer.submit(run.checkpoint, run.state, cfg, run.history)
            val = record["val_accuracy"]
            bar.set_postfix(
                loss=f"{record['loss']:.4f}",
                train_running=f"{record['train_running_accuracy']:.4f}",
                val="-" if val is None else f"{val:.4f}",
            )
            bar.update()


def _score(run: Run, programs: Programs) -> dict[str, float | None]:
    """Accuracy on the validation split, None without one: `{"val_accuracy": ...}`."""
    params = eval_params(run.state, run.cfg.ema)
    scores: dict[str, float | None] = {}
    for name, (x, y) in run.eval_sets.items():
        pred = programs.predict[x.shape](params, x)
        scores[f"{name}_accuracy"] = int(jnp.sum(pred == y)) / y.shape[0]
    scores.setdefault("val_accuracy", None)
    return scores


def _check_finite(run: Run, epoch: int, losses: np.ndarray) -> None:
    """Raise `Diverged` when a loss of `epoch` is NaN or infinite (the state is not kept)."""
    if np.isfinite(losses).all():
        return
    bad = int(np.argmin(np.isfinite(losses)))
    kept = (
        f"the checkpoint of epoch {epoch} is kept in {run.checkpoint}"
        if epoch
        else "no checkpoint was written"
    )
    raise Diverged(
        f"loss became {losses[bad]} in epoch {epoch + 1} (step {bad + 1} of {run.steps}); "
        f"{kept}; try a smaller learning rate than --lr {run.cfg.lr:g}"
    )


def finish(
    run: Run, programs: Programs, out_dir: Path, writer: checkpoint.Writer, *, figures: bool
) -> Result:
    """Score the test set once; meanwhile draw the figures (process 0, with `figures`) and let
    `writer` finish the last checkpoint; then write `metrics.json` (process 0)."""
    cfg, history, data = run.cfg, run.history, run.data
    t0 = time.perf_counter()
    params = eval_params(run.state, cfg.ema)
    test_pred = programs.predict[run.test_images.shape](params, run.test_images)  # dispatched
    params = jax.device_get(params)
    run.seconds["eval"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    if figures and run.chief:  # the figures that need no test predictions are drawn first
        importlib.import_module(FIGURES).save_training_figures(
            out_dir, history, data.test_images, data.test_labels, test_pred, params["W1"],
            data.classes,
        )  # fmt: skip
    run.seconds["figures"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_pred = np.asarray(test_pred)
    run.seconds["eval"] += time.perf_counter() - t0
    writer.wait()
    run.seconds["checkpoint"] = writer.seconds
    run.seconds["train"] = sum(h["seconds"] for h in history)
    metrics = {
        **dataclasses.asdict(cfg),
        "device": parallel.describe(run.mesh.devices.flat[0]),
        "devices": run.mesh.size,
        "processes": jax.process_count(),
        "jax_version": jax.__version__,
        "train_size": run.train[1].shape[0],
        "steps_per_epoch": run.steps,
        "test_accuracy": float(np.mean(test_pred == data.test_labels)),
        "val_accuracy": history[-1]["val_accuracy"],
        "train_seconds": run.seconds["train"],
        "compile_seconds": run.seconds["compile"],
        "eval_seconds": run.seconds["eval"],
        "preprocess_seconds": run.seconds["preprocess"],
        "samples_per_second": run.steps * cfg.batch_size * len(history) / run.seconds["train"],
        "timings": {k: run.seconds[k] for k in TIMINGS},
        "history": history,
    }
    if run.chief:
        write_json(out_dir / "metrics.json", metrics)
    return Result(params, metrics, test_pred, data)


def fit(
    cfg: Config,
    out_dir: str | os.PathLike,
    *,
    data: Data | None = None,
    data_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    devices: int | None = None,
    figures: bool = False,
    cache: str | os.PathLike | None = None,
) -> Result:
    """Train `cfg`, with checkpoints and `metrics.json` in `out_dir` (see the module docstring).

    `data` skips loading (its validation split is used as is). `devices`: how many devices
    share each batch (default: all); only process 0 writes files. `figures`: draw the run's
    figures (`jaxcalc.plots.training.FIGURES`) into `out_dir` too. `cache`: a folder where
    the deskewed images are kept for the next run (`preprocess.cached_deskew`). Raises
    `Diverged` when the loss is not finite, leaving the checkpoint of the last good epoch.
    """
    cfg.check()
    kernel = None
    if cfg.kernel == "fused":  # before any data is loaded; the environment read here, once
        platform = jax.devices()[0].platform
        kernel = fused_epoch.options(cfg, devices=devices or jax.device_count(), platform=platform)
    out_dir = Path(out_dir)
    run, programs = prepare(cfg, out_dir, data, data_dir, resume, devices, kernel, cache)
    with checkpoint.Writer() as writer:
        run_epochs(run, programs, progress, writer)
        return finish(run, programs, out_dir, writer, figures=figures)
