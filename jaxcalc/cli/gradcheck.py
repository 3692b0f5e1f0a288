"""`jaxcalc gradcheck`: the MLP's hand-written gradients against jax.grad and finite differences."""

from __future__ import annotations

import argparse

from jaxcalc.cli import nonnegative_int, positive_int
from jaxcalc.mlp import HIDDEN_ACTIVATIONS, LOSSES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gradcheck",
        help="check the hand-written backward pass against jax.grad and finite differences",
        description=(
            "For every activation (sigmoid, relu, tanh) x loss (cross-entropy with softmax, "
            "MSE with a sigmoid or identity output), compare the MLP's hand-written gradients "
            "with jax.grad in float32 (tolerance 1e-6) and float64 (1e-12) and with central "
            "differences in float64 (1e-7) on a small random network; print the maximum "
            "relative error per parameter array. Exit status 1 if any check fails."
        ),
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--sizes",
        type=positive_int,
        nargs=3,
        default=(6, 5, 3),
        metavar=("N_IN", "N_HIDDEN", "N_OUT"),
        help="network layer sizes (default: 6 5 3)",
    )
    parser.add_argument("--batch", type=positive_int, default=8, help="rows (default: 8)")
    parser.add_argument(
        "--activation",
        choices=HIDDEN_ACTIVATIONS,
        action="append",
        help="check only this hidden activation (repeatable; default: all)",
    )
    parser.add_argument(
        "--loss", choices=LOSSES, action="append", help="check only this loss (default: all)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxcalc.gradcheck import run as run_checks
    from jaxcalc.gradcheck import table

    checks = run_checks(
        seed=args.seed,
        sizes=tuple(args.sizes),
        batch=args.batch,
        activations=tuple(args.activation or HIDDEN_ACTIVATIONS),
        losses=tuple(args.loss or LOSSES),
    )
    print(table(checks))
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed")
    return 1 if failed else 0
