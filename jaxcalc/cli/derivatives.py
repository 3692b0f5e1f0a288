"""`jaxcalc derivatives`: the error of finite differences against the step size h."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxcalc.cli import check_writable
from jaxcalc.step_size import FUNCTIONS, step_size_study
from jaxcalc.validation import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "derivatives",
        help="plot the finite-difference error against the step size (the V shape)",
        description=(
            "Measure the error of forward and central differences of a function's derivative "
            "for h from 1e-1 to 1e-15 in float32 and float64, print the step of least error "
            "beside the default rule eps^(1/(p+1)) * max(1, |x|), and write the log-log plot."
        ),
    )
    parser.add_argument(
        "--function", choices=sorted(FUNCTIONS), default="sin", help="function (default: sin)"
    )
    parser.add_argument("--x", type=float, default=1.0, help="the point x (default: 1)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/derivatives"),
        help="folder for the figure (default: runs/derivatives)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxcalc.plots import save
    from jaxcalc.plots.calculus import step_size_figure

    check_writable(args.out, "--out", folder=True)
    study = step_size_study(args.function, args.x)
    print(
        f"Error of finite differences for {study.function}'(x) at x = {study.x:g}, "
        f"h from {study.steps[0]:.0e} to {study.steps[-1]:.0e} ({study.steps.size} steps)"
    )
    print(f"{'dtype':8} {'method':8} {'best h':>9} {'its error':>10} {'default h':>10}")
    for dtype, by_method in study.errors.items():
        for method, err in by_method.items():
            print(
                f"{dtype:8} {method:8} {study.best_step[dtype][method]:9.1e} "
                f"{err.min():10.1e} {study.default_step[dtype][method]:10.1e}"
            )
    for dtype, spacing in study.spacing.items():
        if study.steps[-1] < spacing:
            print(
                f"note: in {dtype}, h below {spacing:.1e} (the float spacing at x) leaves "
                "x + h = x, so the difference is 0 and its error is |f'(x)| itself: the flat "
                f"line at the left of the {dtype} plot"
            )
    path = args.out / f"step_size_{study.function}.png"
    try:
        save(step_size_figure(study), path)
    except OSError as e:
        raise InputError(f"cannot write to --out {args.out}: {e.strerror or e}") from None
    print(f"wrote {path}")
    return 0
