"""`jaxcalc train`: train the 2-layer network on MNIST or Fashion-MNIST."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
from pathlib import Path

import jax

from jaxcalc import augment, data, mlp
from jaxcalc.cli import (
    Terminated,
    check_writable,
    fraction,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    seconds_since_start,
)
from jaxcalc.files import write_json
from jaxcalc.subprocesses import die_with_parent
from jaxcalc.training import (
    CHECKPOINT,
    DATASET_DEFAULTS,
    GRADS,
    OPTIMIZERS,
    SCHEDULES,
    Config,
    Diverged,
    compile_cache,
    default_config,
    fit,
    processes,
)
from jaxcalc.training.checkpoint import resume_advice
from jaxcalc.training.config import KERNELS
from jaxcalc.training.loop import FIGURES
from jaxcalc.validation import RunError

PROG = "jaxcalc train"


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
    add(
        "--kernel",
        choices=KERNELS,
        help="the step as XLA compiles it, or fused into three Pallas kernels (a GPU; ReLU, "
        f"Adam/AdamW, no dropout, one device) {_default('kernel')}",
    )
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
        "--no-compile-cache",
        action="store_true",
        help="do not keep compiled programs, nor the deskewed images, in $XDG_CACHE_HOME/"
        "jaxcalc (default ~/.cache/jaxcalc), where a second run of the same configuration "
        "finds them",
    )
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
    multi.add_argument(
        "--join-timeout",
        type=positive_float,
        default=processes.JOIN_SECONDS,
        metavar="SECONDS",
        help=f"give up unless every process joins in time (default {processes.JOIN_SECONDS})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = ("hidden", "activation", "optimizer", "lr", "schedule", "weight_decay", "epochs")
    options += ("batch_size", "seed", "grad", "kernel", "dropout", "label_smoothing")
    options += ("augment", "ema", "deskew", "val_size", "val_fold", "train_limit")
    cfg = default_config(args.dataset, **{k: getattr(args, k) for k in options})
    out = check_writable(args.out or Path("runs") / cfg.dataset, "--out", folder=True)
    cache = None
    if not args.no_compile_cache:
        compile_cache.enable()
        cache = compile_cache.default_folder() / "deskewed"
    multi = (args.coordinator_address, args.num_processes, args.process_id)
    if processes.wanted(*multi):
        supervisor = os.environ.get(processes.WORKER)  # set in a worker of `supervise`
        if supervisor is None and args.num_processes != 1:
            processes.check_flags(*multi)
            return processes.supervise(args.argv, out / CHECKPOINT, args.join_timeout)
        if supervisor is not None:
            die_with_parent(int(supervisor))
        processes.join(*multi, timeout=args.join_timeout)
    figures = not args.no_figures
    if figures:  # import matplotlib while the data loads and the programs compile
        threading.Thread(target=importlib.import_module, args=(FIGURES,), daemon=True).start()
    startup = seconds_since_start()
    try:
        result = fit(
            cfg,
            out,
            data_dir=args.data_dir,
            resume=args.resume,
            devices=args.devices,
            figures=figures,
            cache=cache,
        )
    except Diverged as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except jax.errors.JaxRuntimeError as e:  # a collective failed: another process is gone
        if jax.process_count() == 1:
            raise
        first = str(e).strip().splitlines()[0][:200]
        advice = resume_advice(out / CHECKPOINT)
        raise RunError(f"lost contact with another process ({first}); {advice}") from None
    except KeyboardInterrupt as e:
        where = resume_advice(out / CHECKPOINT)
        stopped = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"{PROG}: {stopped}; {where}", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    if jax.process_index() == 0:
        report(result, out, startup)
    return 0


def report(result, out: Path, startup: float) -> None:
    """Complete `metrics.json`'s timings (start-up, the whole command) and print the final
    line (`fit` drew the figures)."""
    m = result.metrics
    m["timings"] = {"startup": startup, **m["timings"], "total": seconds_since_start()}
    write_json(out / "metrics.json", m)
    print(
        f"test accuracy {100 * m['test_accuracy']:.2f}% after {len(m['history'])} epochs: "
        f"train {m['train_seconds']:.1f} s, compile {m['compile_seconds']:.1f} s, "
        f"{m['samples_per_second']:,.0f} samples/s on {m['devices']} x {m['device']}; "
        f"{m['timings']['total']:.1f} s in all; results in {out}/"
    )
