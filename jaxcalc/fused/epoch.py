"""The fused epoch: what `jaxcalc train --kernel fused` and `jaxcalc bench --impl fused-scan`
run, with the XLA path's signature `(TrainState, images, labels, key) -> (TrainState, losses)`.

The epoch pads the state once (`fused.state.to_fused`), runs a `lax.scan` over the same
batches as `training.make_epoch` (the same permutation, the same per-step keys, the same
distortions of each batch, by XLA), with the fused step in place of the XLA one, and gives
the state back unpadded. Without distortions the kernels gather the batches themselves
from the images, resident on the device, and XLA only counts the steps.

What it implements: ReLU, softmax cross-entropy with integer labels and label smoothing,
Adam or AdamW (with decoupled or L2 weight decay, any learning-rate schedule), the weight
average (`ema`), augmentation; one device. Anything else (dropout, sigmoid/tanh,
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

import jax
import jax.numpy as jnp

from jaxcalc.fused import adam
from jaxcalc.fused.batch import Source
from jaxcalc.fused.layout import Blocks, Layout, pad_batch, pad_to
from jaxcalc.fused.state import adam_state, from_fused, to_fused
from jaxcalc.fused.step import make_fused_step
from jaxcalc.training.config import Config
from jaxcalc.training.step import TrainState, epoch_order, inputs, learning_rate
from jaxcalc.validation import InputError

INTERPRET_ENV = "JAXCALC_PALLAS_INTERPRET"  # "1": run the kernels in interpret mode off a GPU
BLOCKS_ENV = "JAXCALC_FUSED_BLOCKS"  # "batch,k,hidden[,warps[,stages[,precision]]]" (tuning)


def interpret_mode(platform: str) -> bool:
    """False on a GPU (Triton); True elsewhere if `JAXCALC_PALLAS_INTERPRET=1`; else an
    `InputError` saying that the fused kernels need a GPU."""
    if platform == "gpu":
        return False
    if os.environ.get(INTERPRET_ENV) == "1":
        return True
    raise InputError(
        f"--kernel fused needs a GPU (Pallas kernels compiled by Triton) and JAX runs on "
        f"{platform} here; use --kernel xla (or set {INTERPRET_ENV}=1 to interpret the kernels, "
        "slowly, as the tests do)"
    )


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


def check_fused(cfg: Config, devices: int, platform: str) -> None:
    """`check_config` and `interpret_mode` at once, before any work: `InputError` unless
    the fused epoch can run `cfg` on `devices` devices of `platform`."""
    check_config(cfg, devices)
    interpret_mode(platform)


def hyper(cfg: Config) -> adam.Hyper:
    """The constants of `cfg`'s update, as `training.make_optimizer` and `make_step` use them."""
    decoupled = cfg.optimizer == "adamw"
    return adam.Hyper(
        weight_decay=cfg.weight_decay if decoupled else 0.0,
        l2=0.0 if decoupled else cfg.weight_decay,
        ema=cfg.ema,
    )


def default_blocks(batch_size: int = 128) -> Blocks:
    """The block shapes of `$JAXCALC_FUSED_BLOCKS` when it is set, else a first guess, not
    yet tuned on a GPU (`scripts/gpu_bench.sh` with SWEEP=1 times others): `Blocks()` for
    small batches (many programs for few rows), larger tiles from a batch of 512 on (fewer
    re-reads of W1 and of the partial logits)."""
    text = os.environ.get(BLOCKS_ENV)
    if not text:
        return Blocks(64, 64, 64, num_warps=8) if batch_size >= 512 else Blocks()
    names = ("batch", "k", "hidden", "num_warps", "num_stages", "precision")
    try:
        parts = text.split(",")
        if not 3 <= len(parts) <= len(names):
            raise ValueError(f"{len(parts)} values")
        values = [int(v) for v in parts[:5]] + parts[5:]
        return Blocks(**dict(zip(names, values, strict=False))).check()
    except (ValueError, TypeError) as e:
        raise InputError(
            f"{BLOCKS_ENV}={text!r}: expected batch,k,hidden[,warps[,stages[,precision]]] ({e})"
        ) from None


def batch_inputs(cfg: Config, layout: Layout, images, labels, key) -> tuple[jax.Array, jax.Array]:
    """x (Bp, Kp) and labels (Bp,) of a batch of uint8 images, as `training.make_step`
    prepares them (`training.step.inputs`, distorted with the first half of `key`), padded."""
    k_augment, _ = jax.random.split(key)
    return pad_batch(inputs(images, cfg.augment, k_augment), labels, layout)


def resident(images: jax.Array, labels: jax.Array, order: jax.Array, layout: Layout) -> Source:
    """The training set as the kernels gather it (no distortion): images (N, Kp) uint8,
    labels int32, the order padded to (steps, Bp) (padded rows: image 0, masked)."""
    x = pad_to(images.reshape(images.shape[0], -1), (images.shape[0], layout.k_pad))
    order = pad_to(order.astype(jnp.int32), (order.shape[0], layout.b_pad))
    return Source(x, labels.astype(jnp.int32), order)


def make_fused_epoch(
    cfg: Config,
    total_steps: int,
    n_classes: int,
    *,
    platform: str,
    unroll: int = 1,
    blocks: Blocks | None = None,
) -> Callable:
    """One epoch `(state, images, labels, key) -> (state, losses per step)` by the fused step.

    `total_steps`: the updates of the whole run (the learning-rate schedule's length, as
    for `training.make_optimizer`); `platform`: that of the device it runs on (interpret
    mode off a GPU, see `interpret_mode`); `unroll`: steps per iteration of the scan.
    Without distortions (`augment="none"`) the kernels gather each batch from the resident
    images themselves; with them XLA makes each batch, as the XLA step does.
    """
    check_config(cfg)
    interpret = interpret_mode(platform)
    blocks = (blocks or default_blocks(cfg.batch_size)).check()
    lr, hp = learning_rate(cfg, total_steps), hyper(cfg)

    def epoch(state: TrainState, images: jax.Array, labels: jax.Array, key: jax.Array):
        layout = Layout(math.prod(images.shape[1:]), cfg.hidden, n_classes, cfg.batch_size, blocks)
        step = make_fused_step(layout, hp, smoothing=cfg.label_smoothing, interpret=interpret)
        order, keys = epoch_order(key, labels.shape[0], cfg.batch_size)
        steps = order.shape[0]
        coefs = adam.coefficient_table(adam_state(state.opt_state).count, steps, lr, hp)
        source = resident(images, labels, order, layout) if cfg.augment == "none" else None

        def body(carry, xs):
            fs, losses, i = carry
            batch = source
            if batch is None:  # XLA makes the step's batch: distortions
                idx, k = xs
                batch = Source(*batch_inputs(cfg, layout, images[idx], labels[idx], k))
            fs, losses = step(fs, batch, coefs, i, losses)
            return (fs, losses, i + 1), None

        init = (to_fused(state, layout), jnp.zeros(steps, jnp.float32), jnp.zeros(1, jnp.int32))
        xs = (order, keys) if source is None else None
        (fused, losses, _), _ = jax.lax.scan(body, init, xs, length=steps, unroll=unroll)
        return from_fused(fused, state, layout, steps), losses

    return epoch
