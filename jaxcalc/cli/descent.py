"""`jaxcalc descent`: gradient descent theory vs measurement, and optimiser paths, as PNGs."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from jaxcalc.cli import check_writable, finite_float, positive_float, positive_int_at_most

#: More steps than this make no figure clearer, only slower (memory grows with the steps).
MAX_STEPS = 100_000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "descent",
        help="gradient descent on a parabola and on 2-D surfaces, with figures",
        description=(
            "Run gradient descent on f(x) = a x^2 + b x + c at several learning rates and "
            "print the per-step contraction |x_t - x*| measured against theory |1 - 2a alpha|; "
            "run gradient descent, momentum, Nesterov, RMSprop and Adam on an ill-conditioned "
            "bowl and on Rosenbrock and print final loss and distance to the minimum. "
            "Writes learning_rates.png and paths.png into --out."
        ),
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG figures")
    parser.add_argument(
        "--lr",
        type=positive_float,
        nargs="+",
        default=[0.1, 0.4, 0.8, 1.05],
        metavar="ALPHA",
        help="learning rates for the parabola (default: 0.1 0.4 0.8 1.05)",
    )
    parser.add_argument("--a", type=positive_float, default=1.0, help="a > 0 (default: 1)")
    parser.add_argument("--b", type=finite_float, default=-2.0, help="b (default: -2)")
    parser.add_argument("--c", type=finite_float, default=3.0, help="c (default: 3)")
    parser.add_argument(
        "--x0", type=finite_float, default=4.0, help="start on the parabola (default: 4)"
    )
    parser.add_argument(
        "--steps", type=positive_int_at_most(MAX_STEPS), default=25, help="parabola steps (25)"
    )
    parser.add_argument(
        "--surface",
        choices=("bowl", "rosenbrock", "both"),
        default="both",
        help="2-D surface(s) for the optimiser paths (default: both)",
    )
    parser.add_argument(
        "--kappa", type=positive_float, default=25.0, help="condition number of the bowl (25)"
    )
    parser.add_argument(
        "--surface-steps",
        type=positive_int_at_most(MAX_STEPS),
        default=None,
        help="steps on the 2-D surfaces (default: 100 on the bowl, 2000 on Rosenbrock)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxcalc import descent
    from jaxcalc.plots import save
    from jaxcalc.plots.descent import learning_rate_figure, paths_figure

    check_writable(args.out, "--out", folder=True)
    if args.surface != "rosenbrock":
        descent.bowl(args.kappa)  # a --kappa float64 cannot hold is refused before any output
    runs = descent.learning_rate_study(args.a, args.b, args.c, args.x0, args.lr, args.steps)
    print(f"f(x) = {args.a:g} x^2 {args.b:+g} x {args.c:+g}: stable for alpha < 1/a = "
          f"{descent.stability_bound(args.a):g}, one step at 1/(2a) = "
          f"{descent.optimal_step(args.a):g}")  # fmt: skip
    print(f"{'alpha':>8}  {'regime':<12} {'theory |1-2a alpha|':>20} {'measured':>10}  outcome")
    for r in runs:
        theory = f"{r.theory:.6f}" if r.theory < 1e6 else f"{r.theory:.6g}"
        measured = "-" if math.isnan(r.measured) else f"{r.measured:.6f}"  # one step: no rate
        print(f"{r.learning_rate:>8g}  {r.regime:<12} {theory:>20} {measured:>10}  "
              f"{r.result.message}")  # fmt: skip

    names = ["bowl", "rosenbrock"] if args.surface == "both" else [args.surface]
    panels = []
    for name in names:
        surf = descent.surface(name, kappa=args.kappa)
        results = descent.compare(surf, args.surface_steps)
        panels.append((surf, results))
        print(f"\n{surf.name} from {tuple(surf.x0.tolist())}, minimum at "
              f"{tuple(surf.minimum.tolist())}")  # fmt: skip
        if name == "bowl":
            gd = results["gradient descent"].trajectory
            rate = descent.measured_rate(((gd - surf.minimum) ** 2).sum(axis=1) ** 0.5)
            print(f"gradient descent at alpha = 2/(1+kappa): rate theory (kappa-1)/(kappa+1) = "
                  f"{descent.bowl_rate(args.kappa):.6f}, measured {rate:.6f}")  # fmt: skip
        print(f"{'method':<18} {'alpha':>8} {'steps':>6} {'final f':>12} {'|x - x*|':>12}")
        for method, res in results.items():
            alpha = surf.learning_rates["gd" if method == "gradient descent" else method]
            dist = float(((res.trajectory[-1] - surf.minimum) ** 2).sum() ** 0.5)
            note = f"  {res.message}" if res.diverged_at is not None or res.stalled else ""
            print(f"{method:<18} {alpha:>8.3g} {len(res.trajectory) - 1:>6} "
                  f"{res.values[-1]:>12.4e} {dist:>12.4e}{note}")  # fmt: skip

    out = args.out
    paths = [
        save(learning_rate_figure(runs, args.a), out / "learning_rates.png"),
        save(paths_figure(panels), out / "paths.png"),
    ]
    print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0
