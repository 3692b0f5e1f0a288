"""The fused epoch: the training run's adaptor to `jaxcalc.fused`, for `jaxcalc train
--kernel fused` and `jaxcalc bench --impl fused-scan`, with the XLA epoch's signature
`(TrainState, images, labels, key) -> (TrainState, StepStats)`.

- `options`: whether the fused step runs `cfg` here (`check_config`, the platform, Pallas's
  Triton backend), its block shapes and interpret mode, from the environment, read once;
- `hyper`: `cfg`'s optimiser as the kernels' constants (`fused.Hyper`), its weight decay
  placed by the rule the XLA step follows (`step.weight_decay`);
- `to_fused` / `from_fused`: the `TrainState` to the fused step's padded state and back,
  so that everything outside the epoch (checkpoints, evaluation, `metrics.json`, resuming)
  sees the XLA path's state. Adam's moments are found by their type, the
  `optim.ScaleByAdamState` that `optim.adam` / `adamw` build, wherever a `chain` put it; on
  the way back every counter of the optimiser state advances by the steps taken, as the
  steps of `optim` would have advanced it (saturating at the int32 maximum);
- `make_fused_epoch`: the state padded once, a `lax.scan` over the same batches as
  `training.make_epoch` (the same permutation, per-step keys and distortions, by XLA) with
  the fused step in place of the XLA one, the state given back unpadded. Without
  distortions the kernels gather the batches themselves from the images, resident on the
  device, and XLA only counts the steps.

What the fused step implements: ReLU, softmax cross-entropy with integer labels and label
smoothing, Adam or AdamW (with decoupled or L2 weight decay, any learning-rate schedule),
the weight average (`ema`), augmentation; one device. Anything else (dropout, sigmoid/tanh,
SGD/RMSprop, autodiff gradients, several devices) is refused with a message that points to
the XLA path (`--kernel xla`).

On a GPU the kernels compile with Triton. Elsewhere they run only when asked for, in Pallas
interpret mode (`JAXCALC_PALLAS_INTERPRET=1`): slow, but the same kernels, which is how the
tests check them on a CPU.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxcalc import fused, optim
from jaxcalc.fused import Blocks, FusedState, Layout, Source, Tally
from jaxcalc.training.config import Config
from jaxcalc.training.preprocess import inputs
from jaxcalc.training.step import (
    StepStats,
    TrainState,
    epoch_order,
    learning_rate,
    weight_decay,
)
from jaxcalc.validation import InputError

INTERPRET_ENV = "JAXCALC_PALLAS_INTERPRET"  # "1": run the kernels in interpret mode off a GPU
BLOCKS_ENV = "JAXCALC_FUSED_BLOCKS"  # "batch,k,hidden[,warps[,stages[,precision]]]" (tuning)


# --------------------------------------------------------------------------- the settings


def check_config(cfg: Config, devices: int = 1) -> None:
    """Raise `InputError` unless the fused step implements `cfg` (see the module docstring)."""
    problems = []
    if cfg.activation != "relu":
        problems.append(f"activation {cfg.activation}")
    if cfg.optimizer not in ("adam", "adamw"):
        problems.append(f"optimizer {cfg.optimizer}")
    if cfg.grad != "manual":
        problems.append(f"grad {cfg.grad}")
    if cfg.dropout:
        problems.append(f"dropout {cfg.dropout:g}")
    if devices != 1:
        problems.append(f"{devices} devices (or --devices 1)")
    if problems:
        raise InputError(
            f"--kernel fused implements ReLU, Adam/AdamW, hand-written gradients, no dropout, "
            f"one device; {', '.join(problems)} runs on the XLA path: use --kernel xla"
        )


def interpret_mode(platform: str) -> bool:
    """False on a GPU (Triton, whose backend this JAX must have: `fused.triton_params`);
    True elsewhere if `JAXCALC_PALLAS_INTERPRET=1`; else an `InputError` saying that the
    fused kernels need a GPU."""
    if platform != "gpu" and os.environ.get(INTERPRET_ENV) == "1":
        return True
    try:  # before the platform: no GPU helps a JAX without Triton
        fused.triton_params()
    except InputError as e:
        raise InputError(f"--kernel fused: {e}; use --kernel xla") from None
    if platform == "gpu":
        return False
    raise InputError(
        f"--kernel fused needs a GPU (Pallas kernels compiled by Triton) and JAX runs on "
        f"{platform} here; use --kernel xla (or set {INTERPRET_ENV}=1 to interpret the kernels, "
        "slowly, as the tests do)"
    )


def blocks_from_env(batch_size: int) -> Blocks:
    """The block shapes of `$JAXCALC_FUSED_BLOCKS` when it is set (`Blocks.parse`), else
    `fused.default_blocks(batch_size)`."""
    text = os.environ.get(BLOCKS_ENV)
    if not text:
        return fused.default_blocks(batch_size)
    try:
        return Blocks.parse(text)
    except InputError as e:
        raise InputError(f"{BLOCKS_ENV}={text!r}: {e}") from None


class Options(NamedTuple):
    """How the fused epoch runs here: its kernels' block shapes and interpret mode."""

    blocks: Blocks
    interpret: bool


def options(cfg: Config, *, devices: int, platform: str) -> Options:
    """`check_config`, `interpret_mode` and `blocks_from_env` at once, before any work: the
    environment read once; `InputError` unless the fused epoch runs `cfg` on `devices`
    devices of `platform`."""
    check_config(cfg, devices)
    interpret = interpret_mode(platform)
    return Options(blocks_from_env(cfg.batch_size), interpret)


def hyper(cfg: Config) -> fused.Hyper:
    """The constants of `cfg`'s update, as `training.make_optimizer` and `make_step` use them."""
    decay = weight_decay(cfg)
    return fused.Hyper(weight_decay=decay.decoupled, l2=decay.l2, ema=cfg.ema)


# --------------------------------------------------------------------------- the state


def _is_adam(node: Any) -> bool:
    return isinstance(node, optim.ScaleByAdamState)


#: The states of `optim` that count updates, each in its `count`.
COUNTERS = (optim.ScaleByAdamState, optim.ScaleByScheduleState, optim.WeightDecaySchedule)


def adam_state(opt_state: Any) -> optim.ScaleByAdamState:
    """The one `optim.ScaleByAdamState` (count, mu, nu) of an optimiser state."""
    found = [n for n in jax.tree.leaves(opt_state, is_leaf=_is_adam) if _is_adam(n)]
    if len(found) != 1:
        raise InputError(
            "the fused step needs an Adam optimiser state (count, mu, nu); "
            f"found {len(found)} in {type(opt_state).__name__}"
        )
    return found[0]


def to_fused(state: TrainState, layout: Layout) -> FusedState:
    """The fused step's padded state made from a `TrainState` of the XLA path."""
    adam = adam_state(state.opt_state)
    return fused.padded(FusedState(state.params, adam.mu, adam.nu, state.avg_params), layout)


def from_fused(fs: FusedState, like: TrainState, layout: Layout, steps: int) -> TrainState:
    """The `TrainState` after `steps` fused updates that started from `like`."""
    params, mu, nu, avg = fused.unpadded(fs, layout)

    def advanced(node: Any) -> Any:
        if not isinstance(node, COUNTERS):
            return node
        node = node._replace(count=fused.advance(node.count, steps))
        return node._replace(mu=mu, nu=nu) if _is_adam(node) else node

    is_counter = lambda node: isinstance(node, COUNTERS)  # noqa: E731
    opt_state = jax.tree.map(advanced, like.opt_state, is_leaf=is_counter)
    return TrainState(params, opt_state, avg, like.step + steps)


# --------------------------------------------------------------------------- the epoch


def batch_inputs(cfg: Config, layout: Layout, images, labels, key) -> Source:
    """A batch of uint8 images as the kernels read it: x (Bp, Kp) and labels (Bp,), made as
    `training.make_step` makes them (`preprocess.inputs`, distorted with the first half of
    `key`), padded."""
    k_augment, _ = jax.random.split(key)
    return Source(*fused.pad_batch(inputs(images, cfg.augment, k_augment), labels, layout))


def make_fused_epoch(
    cfg: Config,
    total_steps: int,
    n_classes: int,
    *,
    blocks: Blocks,
    interpret: bool,
    unroll: int = 1,
) -> Callable:
    """One epoch `(state, images, labels, key) -> (state, StepStats)` by the fused step (each
    step's loss and count of right predictions, written by the `head` kernel).

    `total_steps`: the updates of the whole run (the learning-rate schedule's length, as
    for `training.make_optimizer`); `blocks`, `interpret`: the kernels' (`options`);
    `unroll`: steps per iteration of the scan. Without distortions (`augment="none"`) the
    kernels gather each batch from the resident images themselves; with them XLA makes
    each batch, as the XLA step does.
    """
    check_config(cfg)
    blocks = blocks.check()
    lr, hp = learning_rate(cfg, total_steps), hyper(cfg)

    def epoch(state: TrainState, images: jax.Array, labels: jax.Array, key: jax.Array):
        layout = Layout(math.prod(images.shape[1:]), cfg.hidden, n_classes, cfg.batch_size, blocks)
        step = fused.make_fused_step(layout, hp, smoothing=cfg.label_smoothing, interpret=interpret)
        order, keys = epoch_order(key, labels.shape[0], cfg.batch_size)
        steps = order.shape[0]
        coefs = fused.coefficient_table(adam_state(state.opt_state).count, steps, lr, hp)
        source = fused.resident(images, labels, order, layout) if cfg.augment == "none" else None

        def body(carry, xs):
            fs, tally, i = carry
            batch = source
            if batch is None:  # XLA makes the step's batch: distortions
                idx, k = xs
                batch = batch_inputs(cfg, layout, images[idx], labels[idx], k)
            fs, tally = step(fs, batch, coefs, i, tally)
            return (fs, tally, i + 1), None

        tally = Tally(jnp.zeros(steps, jnp.float32), jnp.zeros(steps, jnp.int32))
        init = (to_fused(state, layout), tally, jnp.zeros(1, jnp.int32))
        xs = (order, keys) if source is None else None
        (fs, tally, _), _ = jax.lax.scan(body, init, xs, length=steps, unroll=unroll)
        return from_fused(fs, state, layout, steps), StepStats(tally.losses, tally.correct)

    return epoch
