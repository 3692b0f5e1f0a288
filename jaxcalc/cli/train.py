"""`jaxcalc train`: train the 2-layer network on MNIST or Fashion-MNIST."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import jax

from jaxcalc import augment, data, mlp
from jaxcalc.cli import (
    check_writable,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from jaxcalc.train import (
    DATASET_DEFAULTS,
    GRADS,
    OPTIMIZERS,
    SCHEDULES,
    Config,
    Diverged,
    default_config,
    fit,
)
from jaxcalc.validation import InputError

PROG = "jaxcalc train"


def fraction(text: str) -> float:
    """A number in [0, 1)."""
    v = nonnegative_float(text)
    if v >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return v


def _default(name: str) -> str:
    """'(default X)', noting data sets whose recipe differs."""
    others = [f"{d}: {v[name]}" for d, v in DATASET_DEFAULTS.items() if name in v]
    return f"(default {getattr(Config, name)}{'; ' + ', '.join(others) if others else ''})"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the 2-layer network on MNIST / Fashion-MNIST",
        description=(
            "Train the 2-layer network (hand-written backward pass and optimisers) with one "
            "jit-compiled lax.scan per epoch. Writes metrics.json, checkpoint.npz and the "
            "figures (curves, confusion, misclassified, weights) into --out. Defaults are the "
            "recipe chosen on the validation split."
        ),
    )
    add = p.add_argument
    add("--dataset", choices=tuple(data.DATASETS), default="mnist", help="(default mnist)")
    add("--data-dir", metavar="DIR", help="folder holding the four IDX files (gz or raw)")
    add("--hidden", type=positive_int, help=f"hidden units {_default('hidden')}")
    add("--activation", choices=mlp.HIDDEN_ACTIVATIONS, help=_default("activation"))
    add("--optimizer", choices=OPTIMIZERS, help=_default("optimizer"))
    add("--lr", type=positive_float, help=f"(peak) learning rate {_default('lr')}")
    add("--schedule", choices=SCHEDULES, help=f"learning-rate schedule {_default('schedule')}")
    add(
        "--weight-decay",
        type=nonnegative_float,
        help=f"decoupled for adamw, L2 for the others {_default('weight_decay')}",
    )
    add("--epochs", type=positive_int, help=_default("epochs"))
    add("--batch-size", type=positive_int, help=_default("batch_size"))
    add("--seed", type=nonnegative_int, help=_default("seed"))
    add("--grad", choices=GRADS, help=f"hand-written or jax.grad gradients {_default('grad')}")
    add("--dropout", type=fraction, help=f"drop rate of hidden units {_default('dropout')}")
    add("--label-smoothing", type=fraction, help=_default("label_smoothing"))
    add("--augment", choices=tuple(augment.AUGMENTATIONS), help=_default("augment"))
    add("--ema", type=fraction, help=f"weight-averaging decay, 0 = off {_default('ema')}")
    add(
        "--deskew",
        action=argparse.BooleanOptionalAction,
        help=f"straighten and centre every image by its moments first {_default('deskew')}",
    )
    add("--val-size", type=nonnegative_int, help=f"held-out examples {_default('val_size')}")
    add(
        "--val-fold",
        type=nonnegative_int,
        metavar="K",
        help=f"hold out the K-th block of --val-size examples (cross-validation) "
        f"{_default('val_fold')}",
    )
    add("--train-limit", type=positive_int, metavar="N", help="train on N examples only")
    add("--out", metavar="DIR", help="output folder (default runs/<dataset>)")
    add("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    add("--no-figures", action="store_true", help="skip the PNG figures")
    add(
        "--devices",
        type=positive_int,
        metavar="N",
        help="split each batch over N devices, data-parallel (default: all)",
    )
    multi = p.add_argument_group(
        "multi-host",
        "Given any of these, or JAX_COORDINATOR_ADDRESS, jax.distributed.initialize joins the "
        "processes (unset values come from the environment: Slurm, Open MPI, ...). Each host "
        "runs the same command; process 0 writes --out.",
    )
    multi.add_argument("--coordinator-address", metavar="HOST:PORT", help="address of process 0")
    multi.add_argument("--num-processes", type=positive_int, metavar="N")
    multi.add_argument("--process-id", type=nonnegative_int, metavar="I", help="0 .. N-1")
    p.set_defaults(func=run)


def initialize_distributed(args: argparse.Namespace) -> None:
    """Join a multi-host run when asked to by the flags or JAX_COORDINATOR_ADDRESS."""
    flags = (args.coordinator_address, args.num_processes, args.process_id)
    if flags == (None, None, None) and "JAX_COORDINATOR_ADDRESS" not in os.environ:
        return
    try:
        jax.distributed.initialize(*flags)
    except ValueError as e:
        raise InputError(f"cannot start a multi-host run: {e}") from None


def run(args: argparse.Namespace) -> int:
    options = ("hidden", "activation", "optimizer", "lr", "schedule", "weight_decay", "epochs")
    options += ("batch_size", "seed", "grad", "dropout", "label_smoothing", "augment", "ema")
    options += ("deskew", "val_size", "val_fold", "train_limit")
    cfg = default_config(args.dataset, **{k: getattr(args, k) for k in options})
    out = check_writable(args.out or Path("runs") / cfg.dataset, "--out", folder=True)
    initialize_distributed(args)
    try:
        result = fit(cfg, out, data_dir=args.data_dir, resume=args.resume, devices=args.devices)
    except Diverged as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted; --resume continues from {out / 'checkpoint.npz'}",
            file=sys.stderr,
        )
        return 130
    if jax.process_index() != 0:
        return 0
    if not args.no_figures:
        from jaxcalc.plots.training import save_training_figures

        d = result.data
        save_training_figures(
            out,
            result.metrics["history"],
            d.test_images,
            d.test_labels,
            result.test_predictions,
            result.params["W1"],
            d.classes,
        )
    m = result.metrics
    print(
        f"test accuracy {100 * m['test_accuracy']:.2f}% after {len(m['history'])} epochs: "
        f"train {m['train_seconds']:.1f} s, compile {m['compile_seconds']:.1f} s, "
        f"{m['samples_per_second']:,.0f} samples/s on {m['devices']} x {m['device']}; "
        f"results in {out}/"
    )
    return 0
