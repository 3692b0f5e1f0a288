"""Jit-compiled training of the 2-layer network on MNIST / Fashion-MNIST.

The pieces, from the inside out:

- `make_step(cfg, opt)`: one pure update `(state, batch) -> (state, loss)` on a batch of
  uint8 images: scale to [0, 1], distort (`jaxcalc.augment`), dropout mask, label
  smoothing, the gradient (hand-written `mlp.loss_and_grad` or its autodiff twin),
  the optimiser's update, the running average of the weights.
- `make_epoch(step, batch_size, mesh=None)`: one epoch as a single `lax.scan` over the
  mini-batches of a permutation drawn on the device; the training set stays on the device
  as uint8.
- Data parallelism (`make_mesh`, `replicate`): with a mesh of N devices the same jitted
  epoch is SPMD: every device holds the training set and the (replicated) state, gathers
  only its 1/N slice of each global batch, and XLA all-reduces the gradients. The step sees
  the global batch, so its random draws, and the result up to float rounding, do not
  depend on N. Across hosts, process p's devices hold the p-th slice of each batch.
- `fit(cfg, out_dir)`: compiles the epoch ahead of time (compile time reported apart),
  runs the epochs, evaluates on the validation split after each, writes a checkpoint
  after each (atomically), scores the test set once at the end and writes `metrics.json`.

Randomness: the key of epoch e is `fold_in(k_train, e)`, so a run resumed from the
checkpoint of epoch e continues bitwise like an uninterrupted one (on CPU, same seed).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from jaxcalc import augment, mlp, optim, schedules
from jaxcalc.data import DATASETS, Data, load
from jaxcalc.files import atomic_write, write_json
from jaxcalc.losses import one_hot
from jaxcalc.validation import InputError, check_choice, check_positive_finite

OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
GRADS = ("manual", "autodiff")
CHECKPOINT = "checkpoint.npz"
TRAIN_EVAL_SIZE = 5000  # training examples scored (undistorted) after each epoch
BATCH_AXIS = "data"  # the mesh axis along which each global batch is split


@dataclass(frozen=True)
class Config:
    """Every setting of a training run. The defaults are the MNIST recipe.

    `weight_decay` is decoupled for adamw and added to the gradient (L2, as PyTorch's
    `weight_decay`) for the other optimisers. `ema` is the decay of an exponential moving
    average of the weights used for evaluation (0: off). `train_limit` trains on the first
    examples of the training split only (quick runs, tests).
    """

    dataset: str = "mnist"
    hidden: int = 1024
    activation: str = "relu"
    optimizer: str = "adamw"
    lr: float = 3e-3
    schedule: str = "warmup_cosine"
    weight_decay: float = 1e-4
    epochs: int = 20
    batch_size: int = 256
    seed: int = 0
    grad: str = "manual"
    dropout: float = 0.0
    label_smoothing: float = 0.1
    augment: str = "affine"
    ema: float = 0.998
    deskew: bool = True
    val_size: int = 5000
    val_fold: int = 0
    train_limit: int | None = None

    def check(self) -> Config:
        """Raise `InputError` for any nonsense setting; return self."""
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("activation", self.activation, mlp.HIDDEN_ACTIVATIONS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("grad", self.grad, GRADS)
        check_choice("augment", self.augment, augment.AUGMENTATIONS)
        check_positive_finite("lr", self.lr)
        for name in ("hidden", "epochs", "batch_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) <= 0:
                raise InputError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("seed", "val_size", "val_fold"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise InputError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.train_limit is not None and (
            not _is_int(self.train_limit) or self.train_limit <= 0
        ):
            raise InputError(f"train_limit must be a positive integer, got {self.train_limit!r}")
        for name, hi in (("weight_decay", math.inf), ("dropout", 1), ("label_smoothing", 1)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < hi):
                raise InputError(f"{name} must be a number in [0, {hi}), got {value!r}")
        if not (isinstance(self.ema, (int, float)) and 0 <= self.ema < 1):
            raise InputError(f"ema must be a number in [0, 1), got {self.ema!r}")
        if not isinstance(self.deskew, bool):
            raise InputError(f"deskew must be True or False, got {self.deskew!r}")
        return self


#: Per-data-set defaults that differ from `Config`'s (the MNIST recipe).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist": {},
    "fashion-mnist": {"augment": "none", "dropout": 0.2, "deskew": False, "lr": 2e-3},
}


def default_config(dataset: str = "mnist", **overrides: Any) -> Config:
    """The recipe for `dataset` with `overrides` (None values are ignored)."""
    check_choice("dataset", dataset, DATASETS)
    fields = {**DATASET_DEFAULTS[dataset], **{k: v for k, v in overrides.items() if v is not None}}
    return Config(dataset=dataset, **fields).check()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class TrainState(NamedTuple):
    """What the scan carries: the weights, the optimiser state, their running average."""

    params: mlp.Params
    opt_state: Any
    avg_params: mlp.Params | None  # EMA of params from 0 (see _eval_params); None if ema == 0


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and what to do."""


class Result(NamedTuple):
    params: mlp.Params  # the weights evaluated (the running average when cfg.ema > 0)
    metrics: dict[str, Any]
    test_predictions: np.ndarray
    data: Data


# --------------------------------------------------------------------------- the step


def learning_rate(cfg: Config, total_steps: int) -> optim.ScalarOrSchedule:
    """The learning rate of `cfg`: a constant, or a schedule over `total_steps` updates."""
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        return schedules.cosine_decay_schedule(cfg.lr, total_steps)
    warmup = max(1, (3 * total_steps) // 100)  # 3% of the updates
    return schedules.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, max(total_steps, 2 * warmup))


def make_optimizer(cfg: Config, total_steps: int) -> optim.Optimizer:
    lr = learning_rate(cfg, total_steps)
    if cfg.optimizer == "adamw":
        return optim.adamw(lr, weight_decay=cfg.weight_decay)
    return getattr(optim, cfg.optimizer)(lr)


def make_step(
    cfg: Config, opt: optim.Optimizer, n_classes: int = 10
) -> Callable[[TrainState, tuple[jax.Array, jax.Array, jax.Array]], tuple[TrainState, jax.Array]]:
    """One training update on a batch `(images uint8 (B, h, w), labels (B,), key)`."""
    loss_and_grad = mlp.loss_and_grad if cfg.grad == "manual" else mlp.loss_and_grad_autodiff
    distort = augment.AUGMENTATIONS[cfg.augment]
    l2 = cfg.weight_decay if cfg.optimizer != "adamw" else 0.0
    keep = 1.0 - cfg.dropout
    eps = cfg.label_smoothing

    def step(state: TrainState, batch: tuple[jax.Array, jax.Array, jax.Array]):
        images, labels, key = batch
        k_augment, k_dropout = jax.random.split(key)
        x = images.astype(jnp.float32) / 255.0
        if cfg.augment != "none":
            x = distort(k_augment, x)
        x = x.reshape(x.shape[0], -1)
        y = labels if eps == 0 else one_hot(labels, n_classes) * (1.0 - eps) + eps / n_classes
        mask = None
        if cfg.dropout > 0:
            shape = (x.shape[0], state.params["b1"].shape[0])
            mask = jax.random.bernoulli(k_dropout, keep, shape).astype(jnp.float32) / keep
        loss, grads = loss_and_grad(state.params, x, y, activation=cfg.activation, hidden_mask=mask)
        if l2:
            grads = jax.tree.map(lambda g, p: g + l2 * p, grads, state.params)
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        params = optim.apply_updates(state.params, updates)
        avg = state.avg_params
        if avg is not None:
            avg = jax.tree.map(lambda a, p: cfg.ema * a + (1.0 - cfg.ema) * p, avg, params)
        return TrainState(params, opt_state, avg), loss

    return step


def make_epoch(
    step: Callable, batch_size: int, *, mesh: Mesh | None = None, unroll: int = 1
) -> Callable:
    """One epoch `(state, images, labels, key) -> (state, losses per step)` as a `lax.scan`.

    The batches are a random permutation of the training set (drawn from `key` on the
    device); the last incomplete batch is dropped (a new permutation each epoch).

    With a `mesh` (`make_mesh`) the epoch is data-parallel when jitted: the arguments must
    be on the mesh (`replicate`), each batch is split along its `BATCH_AXIS` (each device
    gathers its own rows), and the state and losses come back replicated. On a 1-device
    mesh it compiles to the same program as without one.

    `unroll` steps run per iteration of the scan's loop (`lax.scan`'s `unroll`): fewer loop
    iterations, a larger program; it can help where a step is bound by launch latency (GPU).
    """
    if mesh is not None:
        check_batch(batch_size, mesh.size)

    def constrain(tree: Any, *spec: str | None) -> Any:
        if mesh is None:
            return tree
        return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, P(*spec)))

    def epoch(state: TrainState, images: jax.Array, labels: jax.Array, key: jax.Array):
        steps = labels.shape[0] // batch_size
        k_order, k_steps = jax.random.split(key)
        order = jax.random.permutation(k_order, labels.shape[0])[: steps * batch_size]
        order = constrain(order.reshape(steps, batch_size), None, BATCH_AXIS)
        keys = jax.random.split(k_steps, steps)

        def body(state: TrainState, xs: tuple[jax.Array, jax.Array]):
            idx, k = xs
            batch = constrain((images[idx], labels[idx]), BATCH_AXIS)
            return step(state, (*batch, k))

        return constrain(jax.lax.scan(body, state, (order, keys), unroll=unroll))

    return epoch


def make_predict(activation: str) -> Callable[[mlp.Params, jax.Array], jax.Array]:
    """`(params, uint8 images) -> predicted classes`, as the network sees undistorted images."""

    def predict(params: mlp.Params, images: jax.Array) -> jax.Array:
        x = images.reshape(images.shape[0], -1).astype(jnp.float32) / 255.0
        return mlp.predict(params, x, activation=activation)

    return predict


def deskewed(data: Data) -> Data:
    """`data` with every image deskewed (`augment.deskew`): training, validation, test alike."""

    def fix(images: np.ndarray) -> np.ndarray:
        return np.asarray(augment.deskew(images)) if len(images) else images

    return data._replace(
        train_images=fix(data.train_images),
        val_images=fix(data.val_images),
        test_images=fix(data.test_images),
    )


def init_state(cfg: Config, opt: optim.Optimizer, n_in: int, n_out: int) -> TrainState:
    params = mlp.init_params(
        _keys(cfg.seed)[0], (n_in, cfg.hidden, n_out), activation=cfg.activation
    )
    avg = jax.tree.map(jnp.zeros_like, params) if cfg.ema > 0 else None
    return TrainState(params, opt.init(params), avg)


def _keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(k_init, k_train) of a run; epoch e uses fold_in(k_train, e)."""
    k_init, k_train = jax.random.split(jax.random.PRNGKey(seed))
    return k_init, k_train


# --------------------------------------------------------------------------- devices


def make_mesh(devices: int | None = None) -> Mesh:
    """A 1-D mesh (axis `BATCH_AXIS`) over the first `devices` devices (default: all).

    Devices are ordered by process, so in a multi-host run (which uses every device)
    process p's devices hold the p-th contiguous slice of each global batch.
    """
    available = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    n = len(available) if devices is None else devices
    if not (_is_int(n) and 1 <= n <= len(available)):
        raise InputError(
            f"devices {n!r} requested but {len(available)} {available[0].platform} "
            "device(s) are available"
        )
    if jax.process_count() > 1 and n != len(available):
        raise InputError(
            f"devices {n} requested: a run over {jax.process_count()} processes uses all "
            f"{len(available)} devices"
        )
    return Mesh(np.array(available[:n]), (BATCH_AXIS,))


def check_batch(batch_size: int, n_devices: int) -> None:
    """Raise `InputError` unless the global batch splits evenly over the devices."""
    if batch_size % n_devices:
        raise InputError(
            f"batch_size {batch_size} is not divisible by the {n_devices} devices; use a "
            f"multiple of {n_devices} or a number of devices that divides {batch_size}"
        )


def replicate(mesh: Mesh, tree: Any) -> Any:
    """Copy the host arrays of `tree` (the same in every process) onto every mesh device."""
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)),
        tree,
    )


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, state: TrainState, cfg: Config, history: list[dict]) -> Path:
    """Write the state, config and history after `len(history)` epochs, atomically."""
    arrays = {f"leaf_{i}": np.asarray(a) for i, a in enumerate(jax.tree.leaves(state))}
    arrays["config"] = np.array(json.dumps(dataclasses.asdict(cfg)))
    arrays["history"] = np.array(json.dumps(history))
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: Path, template: TrainState, cfg: Config) -> tuple[TrainState, list]:
    """The state and history saved at `path` by a run with the same config as `cfg`."""
    try:
        with np.load(path, allow_pickle=False) as f:
            saved = json.loads(str(f["config"]))
            history = json.loads(str(f["history"]))
            leaves = [f[f"leaf_{i}"] for i in range(len(jax.tree.leaves(template)))]
    except (OSError, KeyError, ValueError) as e:
        raise InputError(
            f"{path}: not a usable checkpoint ({e}); start again without --resume"
        ) from None
    changed = [k for k, v in dataclasses.asdict(cfg).items() if saved.get(k) != v]
    if changed:
        diffs = ", ".join(f"{k} {saved.get(k)!r} -> {getattr(cfg, k)!r}" for k in changed)
        raise InputError(
            f"{path} was written with other options ({diffs}); resume with the same options "
            "or choose another --out"
        )
    treedef = jax.tree.structure(template)
    return jax.tree.unflatten(treedef, [jnp.asarray(a) for a in leaves]), history


# --------------------------------------------------------------------------- the run


def fit(
    cfg: Config,
    out_dir: str | os.PathLike,
    *,
    data: Data | None = None,
    data_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    devices: int | None = None,
) -> Result:
    """Train `cfg` (checkpoints and `metrics.json` in `out_dir`); see the module docstring.

    `data` skips loading (its validation split is used as is). `devices`: how many devices
    share each batch (default: all); only process 0 writes files. Raises `Diverged` when
    the loss is not finite, leaving the checkpoint of the last good epoch.
    """
    cfg.check()
    mesh = make_mesh(devices)
    check_batch(cfg.batch_size, mesh.size)
    chief = jax.process_index() == 0
    out_dir = Path(out_dir)
    checkpoint = out_dir / CHECKPOINT
    if resume and not checkpoint.is_file():
        raise InputError(f"no checkpoint {checkpoint} to resume; start without --resume")
    if data is None:
        data = load(cfg.dataset, data_dir=data_dir, val_size=cfg.val_size, val_fold=cfg.val_fold)
    t0 = time.perf_counter()
    if cfg.deskew:
        data = deskewed(data)
    preprocess_seconds = time.perf_counter() - t0
    train_x, train_y = data.train_images[: cfg.train_limit], data.train_labels[: cfg.train_limit]
    if cfg.batch_size > len(train_y):
        raise InputError(
            f"batch_size {cfg.batch_size} exceeds the {len(train_y)} training examples"
        )
    steps = len(train_y) // cfg.batch_size
    n_in, n_out = int(np.prod(train_x.shape[1:])), len(data.classes)

    opt = make_optimizer(cfg, steps * cfg.epochs)
    state, history = init_state(cfg, opt, n_in, n_out), []
    if resume:
        state, history = load_checkpoint(checkpoint, state, cfg)

    state = replicate(mesh, state)
    train_y = train_y.astype(np.int32)
    eval_sets = {"train": (train_x[:TRAIN_EVAL_SIZE], train_y[:TRAIN_EVAL_SIZE])}
    if len(data.val_labels):
        eval_sets["val"] = (data.val_images, data.val_labels.astype(np.int32))
    train_x, train_y, eval_sets, test_x = replicate(
        mesh, (train_x, train_y, eval_sets, data.test_images)
    )

    k_train = _keys(cfg.seed)[1]

    def epoch_key(epoch: int) -> jax.Array:
        return replicate(mesh, jax.random.fold_in(k_train, epoch))

    # Ahead-of-time compilation, timed apart from training.
    t0 = time.perf_counter()
    # The state is donated: each epoch updates it in place (no second copy on a GPU).
    epoch_fn = jax.jit(
        make_epoch(make_step(cfg, opt, n_out), cfg.batch_size, mesh=mesh), donate_argnums=0
    )
    epoch_fn = epoch_fn.lower(state, train_x, train_y, epoch_key(0)).compile()
    predict = jax.jit(make_predict(cfg.activation))
    eval_params = _eval_params(state, cfg.ema)
    compiled = {}  # one executable per input shape
    for x in [x for x, _ in eval_sets.values()] + [test_x]:
        if x.shape not in compiled:
            compiled[x.shape] = predict.lower(eval_params, x).compile()
    compile_seconds = time.perf_counter() - t0

    bar = tqdm(
        total=cfg.epochs,
        initial=len(history),
        desc=f"{cfg.dataset}",
        unit="epoch",
        disable=not (progress and chief),
    )
    eval_seconds = 0.0
    try:
        for epoch in range(len(history), cfg.epochs):
            key = epoch_key(epoch)
            t0 = time.perf_counter()
            new_state, losses = epoch_fn(state, train_x, train_y, key)
            losses = np.asarray(losses)  # waits for the epoch
            seconds = time.perf_counter() - t0
            if not np.isfinite(losses).all():
                bad = int(np.argmin(np.isfinite(losses)))
                kept = (
                    f"the checkpoint of epoch {epoch} is kept in {checkpoint}"
                    if epoch
                    else "no checkpoint was written"
                )
                raise Diverged(
                    f"loss became {losses[bad]} in epoch {epoch + 1} (step {bad + 1} of {steps}); "
                    f"{kept}; try a smaller learning rate than --lr {cfg.lr:g}"
                )
            state = new_state
            t0 = time.perf_counter()
            eval_params = _eval_params(state, cfg.ema)
            record = {"epoch": epoch + 1, "loss": float(losses.mean())}
            for name, (x, y) in eval_sets.items():
                record[f"{name}_accuracy"] = _accuracy(compiled[x.shape](eval_params, x), y)
            record.setdefault("val_accuracy", None)
            record["seconds"] = seconds
            history.append(record)
            if chief:
                save_checkpoint(checkpoint, state, cfg, history)
            eval_seconds += time.perf_counter() - t0
            bar.set_postfix(
                loss=f"{record['loss']:.4f}",
                train=f"{record['train_accuracy']:.4f}",
                val="-" if record["val_accuracy"] is None else f"{record['val_accuracy']:.4f}",
            )
            bar.update()
    finally:
        bar.close()

    eval_params = _eval_params(state, cfg.ema)
    test_pred = np.asarray(compiled[test_x.shape](eval_params, test_x))
    train_seconds = sum(h["seconds"] for h in history)
    metrics = {
        **dataclasses.asdict(cfg),
        "device": _describe(mesh.devices.flat[0]),
        "devices": mesh.size,
        "processes": jax.process_count(),
        "jax_version": jax.__version__,
        "train_size": len(train_y),
        "steps_per_epoch": steps,
        "test_accuracy": float(np.mean(test_pred == data.test_labels)),
        "val_accuracy": history[-1]["val_accuracy"],
        "train_seconds": train_seconds,
        "compile_seconds": compile_seconds,
        "eval_seconds": eval_seconds,
        "preprocess_seconds": preprocess_seconds,
        "samples_per_second": steps * cfg.batch_size * len(history) / train_seconds,
        "history": history,
    }
    if chief:
        write_json(out_dir / "metrics.json", metrics)
    return Result(jax.device_get(eval_params), metrics, test_pred, data)


def _describe(device: jax.Device) -> str:
    if device.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    return f"{device.platform} ({device.device_kind})"


def _eval_params(state: TrainState, ema: float) -> mlp.Params:
    """The weights to evaluate: the params, or their average debiased for its zero start.

    avg_t = ema · avg_(t−1) + (1 − ema) · θ_t with avg_0 = 0, so avg_t / (1 − emaᵗ) is a
    weighted mean of θ_1..θ_t (as Adam's moments and optax's `ema(debias=True)`).
    """
    if state.avg_params is None:
        return state.params
    correction = 1.0 - ema ** jnp.maximum(state.opt_state.count, 1).astype(jnp.float32)
    return jax.tree.map(lambda a: a / correction, state.avg_params)


def _accuracy(pred: jax.Array, labels: jax.Array) -> float:
    return int(jnp.sum(pred == labels)) / labels.shape[0]
