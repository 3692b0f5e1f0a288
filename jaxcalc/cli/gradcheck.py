"""`jaxcalc gradcheck`: the MLP's hand-written gradients (and Hessian-vector products, Gauss-Newton
products and input Jacobians) against autodiff and finite differences."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jaxcalc.cli import nonnegative_int, positive_int
from jaxcalc.mlp import HIDDEN_ACTIVATIONS, LOSSES, PARAM_NAMES

if TYPE_CHECKING:
    from jaxcalc.gradcheck import Check


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gradcheck",
        help="check the hand-written backward pass against jax.grad and finite differences",
        description=(
            "For every activation (sigmoid, relu, tanh) x loss (cross-entropy with softmax, "
            "MSE with a sigmoid or identity output), compare the MLP's hand-written gradients "
            "with jax.grad in float32 (tolerance 1e-6) and float64 (1e-12) and with central "
            "differences in float64 (1e-7) on a small random network; then (order 2) the "
            "hand-written Hessian-vector product H v against jax.jvp of jax.grad (float32 1e-5, "
            "float64 1e-12) and central differences of the gradient (1e-7), the Gauss-Newton "
            "product G v against jax.jvp/jax.vjp, and the input Jacobian dz2/dx against "
            "jax.jacrev and jax.jacfwd; print the maximum relative error per parameter array. "
            "Exit status 1 if any check fails."
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
    parser.add_argument(
        "--order",
        type=int,
        choices=(1, 2),
        action="append",
        help="1: gradients; 2: H v, G v and dz2/dx (repeatable; default: both)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxcalc.gradcheck import run as run_checks
    from jaxcalc.gradcheck import run_second_order

    orders = set(args.order or (1, 2))
    kwargs = {
        "seed": args.seed,
        "sizes": tuple(args.sizes),
        "batch": args.batch,
        "activations": tuple(args.activation or HIDDEN_ACTIVATIONS),
        "losses": tuple(args.loss or LOSSES),
    }
    checks = (run_checks(**kwargs) if 1 in orders else []) + (
        run_second_order(**kwargs) if 2 in orders else []
    )
    print(table(checks))
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed")
    return 1 if failed else 0


def table(checks: Sequence[Check]) -> str:
    """A text table: one row per check, the max relative error per parameter array."""
    from jaxcalc.bench.report import aligned_rows

    head = ("activation", "loss", "output", "quantity", "reference", "dtype", *PARAM_NAMES)
    head += ("max", "tol", "ok")
    lines = [
        (
            c.activation,
            c.loss,
            c.output,
            c.quantity,
            c.reference,
            c.dtype,
            *(f"{c.errors[k]:.1e}" if k in c.errors else "-" for k in PARAM_NAMES),
            f"{c.max_error:.1e}",
            f"{c.tolerance:.0e}",
            "ok" if c.ok else "FAIL",
            "",  # no note
        )
        for c in checks
    ]
    return "\n".join(aligned_rows(head, lines, left=range(6)))
