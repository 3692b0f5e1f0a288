"""One training step and one epoch, pure functions that jit into a single `lax.scan`.

- `learning_rate`, `make_optimizer`, `weight_decay`: the run's schedule, its optimiser, and
  where its weight decay goes (decoupled for adamw, added to the gradient otherwise), the
  one rule the XLA step and the fused one (`training.fused_epoch`) both follow;
- `make_step(cfg, opt)`: one update `(state, batch) -> (state, StepStats)` on a batch of
  uint8 images: scale to [0, 1], distort (`training.preprocess`), dropout mask, label
  smoothing, the gradient (hand-written `mlp.loss_grad_and_logits` or its autodiff twin),
  the optimiser's update, the running average of the weights; it reports the batch's loss
  and how many of its rows its own logits classified right (`StepStats`).
- `make_epoch(step, batch_size, mesh=None)`: one epoch as a `lax.scan` over the mini-batches
  of a permutation drawn on the device; the training set stays on the device as uint8.
  With a mesh the same program is data-parallel (`jaxcalc.training.parallel`).
- `running_accuracy(stats)`: an epoch's running train accuracy from its steps' counts.

Randomness: the key of epoch e is `fold_in(k_train, e)` (`run_keys`), so a run resumed
from the checkpoint of epoch e continues bitwise like an uninterrupted one (on CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxcalc import mlp, optim, schedules
from jaxcalc.data import DATASETS, PIXELS
from jaxcalc.losses import smooth_labels
from jaxcalc.training.config import Config
from jaxcalc.training.parallel import BATCH_AXIS, check_batch
from jaxcalc.training.preprocess import inputs

Batch = tuple[jax.Array, jax.Array, jax.Array]  # uint8 images (B, h, w), labels (B,), key


class StepStats(NamedTuple):
    """What a step reports of its batch (an epoch stacks them: each field (steps,)).

    `loss`: the batch's mean loss; `correct`: how many of its rows the step's own logits,
    the z2 its gradient came from (distorted images, dropout mask), put in their labelled
    class, argmax z2 = label (int32; padded rows of the fused step are not counted).
    """

    loss: jax.Array
    correct: jax.Array


class TrainState(NamedTuple):
    """What the scan carries: the weights, the optimiser state, their running average."""

    params: mlp.Params
    opt_state: Any
    avg_params: mlp.Params | None  # EMA of params from 0 (see eval_params); None if ema == 0
    step: jax.Array  # updates made so far (int32)


def learning_rate(cfg: Config, total_steps: int) -> optim.ScalarOrSchedule:
    """The learning rate of `cfg`: a constant, or a schedule over `total_steps` updates."""
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        return schedules.cosine_decay_schedule(cfg.lr, total_steps)
    warmup = max(1, (3 * total_steps) // 100)  # 3% of the updates
    return schedules.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, max(total_steps, 2 * warmup))


class WeightDecay(NamedTuple):
    """`Config.weight_decay` as the run applies it: decoupled for adamw, L2 for the others."""

    decoupled: float  # λ inside adamw: u ← u − α λ θ, beside the Adam direction
    l2: float  # ℓ added to the gradient before the optimiser: g ← g + ℓ θ (PyTorch's)


def weight_decay(cfg: Config) -> WeightDecay:
    """Where `cfg.weight_decay` goes: the one home of that rule, for the XLA step
    (`make_optimizer`, `make_step`) and the fused one (`training.fused_epoch`)."""
    if cfg.optimizer == "adamw":
        return WeightDecay(decoupled=cfg.weight_decay, l2=0.0)
    return WeightDecay(decoupled=0.0, l2=cfg.weight_decay)


def make_optimizer(cfg: Config, total_steps: int) -> optim.GradientTransformation:
    """`cfg.optimizer` with `cfg`'s learning rate (adamw: with its decoupled weight decay)."""
    lr = learning_rate(cfg, total_steps)
    if cfg.optimizer == "adamw":
        return optim.adamw(lr, weight_decay=weight_decay(cfg).decoupled)
    return getattr(optim, cfg.optimizer)(lr)


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(k_init, k_train) of a run; epoch e uses fold_in(k_train, e)."""
    k_init, k_train = jax.random.split(jax.random.PRNGKey(seed))
    return k_init, k_train


def init_state(cfg: Config, opt: optim.GradientTransformation, n_in: int, n_out: int) -> TrainState:
    """Fresh weights from `cfg.seed`, the optimiser's initial state, a zero average."""
    params = mlp.init_params(
        run_keys(cfg.seed)[0], (n_in, cfg.hidden, n_out), activation=cfg.activation
    )
    avg = jax.tree.map(jnp.zeros_like, params) if cfg.ema > 0 else None
    return TrainState(params, opt.init(params), avg, jnp.zeros([], jnp.int32))


def fresh_state(cfg: Config) -> TrainState:
    """The state `jaxcalc train` starts from with `cfg`: 28 x 28 inputs, one output per class
    of `cfg.dataset` (the shapes a checkpoint of `cfg` holds)."""
    n_out = len(DATASETS[cfg.dataset].classes)
    return init_state(cfg, make_optimizer(cfg, 1), PIXELS, n_out)


def epoch_order(key: jax.Array, n: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """(order (steps, batch_size), keys (steps,)): an epoch's batches, a permutation of the
    n examples drawn from `key` (the last incomplete batch dropped), and a key per step."""
    steps = n // batch_size
    k_order, k_steps = jax.random.split(key)
    order = jax.random.permutation(k_order, n)[: steps * batch_size]
    return order.reshape(steps, batch_size), jax.random.split(k_steps, steps)


def make_step(cfg: Config, opt: optim.GradientTransformation, n_classes: int = 10) -> Callable:
    """One training update `(state, (images, labels, key)) -> (state, StepStats)`.

    The count of right predictions is the argmax of the logits the gradient needed anyway
    (one reduction over n_classes columns per row, no second forward pass).
    """
    manual = cfg.grad == "manual"
    loss_and_grad = mlp.loss_grad_and_logits if manual else mlp.loss_grad_and_logits_autodiff
    l2 = weight_decay(cfg).l2
    keep = 1.0 - cfg.dropout
    eps = cfg.label_smoothing

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, StepStats]:
        images, labels, key = batch
        k_augment, k_dropout = jax.random.split(key)
        x = inputs(images, cfg.augment, k_augment)
        y = labels if eps == 0 else smooth_labels(labels, n_classes, eps)
        mask = None
        if cfg.dropout > 0:
            shape = (x.shape[0], state.params["b1"].shape[0])
            mask = jax.random.bernoulli(k_dropout, keep, shape).astype(jnp.float32) / keep
        loss, grads, logits = loss_and_grad(
            state.params, x, y, activation=cfg.activation, hidden_mask=mask
        )
        correct = jnp.sum(jnp.argmax(logits, axis=1) == labels, dtype=jnp.int32)
        if l2:
            grads = jax.tree.map(lambda g, p: g + l2 * p, grads, state.params)
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        params = optim.apply_updates(state.params, updates)
        avg = state.avg_params
        if avg is not None:
            avg = jax.tree.map(lambda a, p: cfg.ema * a + (1.0 - cfg.ema) * p, avg, params)
        return TrainState(params, opt_state, avg, state.step + 1), StepStats(loss, correct)

    return step


def make_epoch(
    step: Callable, batch_size: int, *, mesh: Mesh | None = None, unroll: int = 1
) -> Callable:
    """One epoch `(state, images, labels, key) -> (state, what each step reports)` as a
    `lax.scan` (`make_step`'s steps report `StepStats`, stacked: each field (steps,)).

    The batches are a random permutation of the training set (drawn from `key` on the
    device); the last incomplete batch is dropped (a new permutation each epoch).

    With a `mesh` (`parallel.make_mesh`) the epoch is data-parallel when jitted: the
    arguments must be on the mesh (`parallel.replicate`), each batch is split along its
    `BATCH_AXIS` (each device gathers its own rows), and the state and losses come back
    replicated. On a 1-device mesh it compiles to the same program as without one.

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
        order, keys = epoch_order(key, labels.shape[0], batch_size)
        order = constrain(order, None, BATCH_AXIS)

        def body(state: TrainState, xs: tuple[jax.Array, jax.Array]):
            idx, k = xs
            batch = constrain((images[idx], labels[idx]), BATCH_AXIS)
            return step(state, (*batch, k))

        return constrain(jax.lax.scan(body, state, (order, keys), unroll=unroll))

    return epoch


def running_accuracy(stats: StepStats, batch_size: int) -> float:
    """An epoch's running train accuracy: Σ correct / (steps × batch_size), the fraction of
    its (distorted) training examples that the steps themselves classified right, each by
    the weights of its own step (the usual "train accuracy" of a progress bar)."""
    correct = np.asarray(stats.correct, dtype=np.int64)
    return int(correct.sum()) / (correct.size * batch_size)


def make_predict(activation: str) -> Callable[[mlp.Params, jax.Array], jax.Array]:
    """`(params, uint8 images) -> predicted classes`, as the network sees undistorted images."""

    def predict(params: mlp.Params, images: jax.Array) -> jax.Array:
        return mlp.predict(params, inputs(images), activation=activation)

    return predict


def eval_params(state: TrainState, ema: float) -> mlp.Params:
    """The weights to evaluate: the params, or their average debiased for its zero start.

    avg_t = ema · avg_(t−1) + (1 − ema) · θ_t with avg_0 = 0, so avg_t / (1 − emaᵗ) is a
    weighted mean of θ_1..θ_t: the bias correction of Adam's moments (`optim.debias`).
    """
    if state.avg_params is None:
        return state.params
    return optim.debias(state.avg_params, ema, jnp.maximum(state.step, 1))
