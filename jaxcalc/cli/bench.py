"""`jaxcalc bench`: one training job timed several ways, its scaling over devices, or what
a gradient costs."""

from __future__ import annotations

import argparse

from jaxcalc.bench.harness import DEVICES, IMPLS, BenchConfig
from jaxcalc.cli import positive_float, positive_int
from jaxcalc.cli.bench_gradcheck import add_gradcheck, run_gradcheck

DEFAULT_PLOT = "runs/bench/bench.png"
DEFAULT_COST_PLOT = "runs/bench/gradient_cost.png"
DEFAULT_SCALING_PLOT = "runs/bench/scaling.png"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="time training several ways (hand-written, jax.grad+optax, PyTorch, NumPy)",
        description=(
            "Train 784-H-10 with Adam on MNIST (synthetic data of its shape when MNIST is not "
            "found) with each implementation in one run; report samples/s (median of the "
            "timed epochs after a warm-up epoch), compile time, peak memory, the fraction of "
            "the machine's measured matmul peak and the ratio to jax.grad + optax. "
            "--devices instead times the scan epoch data-parallel over 1, 2, 4 ... devices; "
            "--gradient-cost times finite differences against reverse mode; --hvp times "
            "Hessian-vector products (hand-written, autodiff, PyTorch) and Lanczos."
        ),
    )
    add = p.add_argument
    add(
        "--impl",
        choices=tuple(IMPLS),
        action="append",
        help="run only this implementation (repeatable; default: all)",
    )
    add("--hidden", type=positive_int, help="hidden units (default 512; 1024 with --hvp)")
    add("--batch-size", type=positive_int, default=128, help="(default 128)")
    add("--epochs", type=positive_int, default=3, help="timed epochs after a warm-up (default 3)")
    add("--device", choices=DEVICES, default="cpu", help="(default cpu)")
    add("--train-size", type=positive_int, metavar="N", help="images per epoch (default all)")
    add("--synthetic", action="store_true", help="random MNIST-shaped data even if MNIST is found")
    add("--data-dir", metavar="DIR", help="folder holding the four MNIST IDX files")
    add(
        "--peak-size",
        type=positive_int,
        default=2048,
        metavar="N",
        help="the (N, N) float32 matmul that measures the peak (default 2048)",
    )
    add("--json", metavar="FILE", help="also write the results as JSON")
    add(
        "--plot",
        metavar="FILE",
        help=f"PNG chart (default {DEFAULT_PLOT}, {DEFAULT_SCALING_PLOT} or {DEFAULT_COST_PLOT})",
    )
    add("--no-plot", action="store_true", help="skip the PNG")
    add(
        "--unroll",
        type=positive_int,
        default=1,
        metavar="K",
        help="steps per iteration of the scan epochs' loop, lax.scan's unroll (default 1; "
        "8 helped on an H100, where a step is bound by launch latency)",
    )
    add(
        "--devices",
        type=positive_int,
        nargs="+",
        metavar="N",
        help="time the scan epoch (manual-scan, or --impl autodiff-scan) on a data-parallel "
        "mesh of each N devices: samples/s, speed-up, efficiency and a scaling plot (default "
        f"{DEFAULT_SCALING_PLOT}); the global --batch-size must be divisible by each N. On "
        "the CPU, with fewer devices than asked, it reruns in a subprocess with XLA_FLAGS="
        "--xla_force_host_platform_device_count=max(N): virtual devices sharing the same cores",
    )
    cost = p.add_argument_group("gradient cost")
    cost.add_argument(
        "--gradient-cost",
        action="store_true",
        help="time finite differences (n + 1 evaluations) against reverse mode over n",
    )
    cost.add_argument(
        "--sizes",
        type=positive_int,
        nargs="+",
        default=[10, 100, 1_000, 10_000, 100_000],
        metavar="N",
        help="the n to time (default 10 100 1000 10000 100000)",
    )
    cost.add_argument(
        "--max-fd-seconds",
        type=positive_float,
        default=3.0,
        help="extrapolate finite differences, as n², where one would take longer (default 3)",
    )
    add_hvp(p)
    add_gradcheck(p)
    p.set_defaults(func=run)


def add_hvp(p: argparse.ArgumentParser) -> None:
    """The `--hvp` flag (`jaxcalc.bench.hvp`), which reuses --hidden, --train-size, --epochs."""
    p.add_argument_group("Hessian-vector products").add_argument(
        "--hvp",
        action="store_true",
        help="time the hand-written H v against jax.jvp of jax.grad, one gradient, PyTorch's "
        "double backward and Lanczos, on 784-H-10 over --train-size images at once (default "
        "10000); --epochs timed calls each (no plot)",
    )


def run(args: argparse.Namespace) -> int:
    from jaxcalc.cli import check_writable
    from jaxcalc.validation import InputError

    if args.devices and args.gradient_cost:
        raise InputError("--devices and --gradient-cost are separate runs; choose one")
    if args.json:
        check_writable(args.json, "--json", folder=False)
    if args.plot:
        check_writable(args.plot, "--plot", folder=False)
    if args.gradcheck:
        return run_gradcheck(args)
    if args.hvp:
        return run_hvp(args)
    if args.gradient_cost:
        return run_gradient_cost(args)
    return run_scaling(args) if args.devices else run_training(args)


def given(**options):
    """The options given on the command line (not None): the rest keep the defaults of the
    function they are passed to, where they live."""
    return {name: value for name, value in options.items() if value is not None}


def bench_config(args: argparse.Namespace, default_impls: tuple[str, ...]) -> BenchConfig:
    return BenchConfig(
        impls=tuple(dict.fromkeys(args.impl or default_impls)),
        **given(hidden=args.hidden),
        batch_size=args.batch_size,
        epochs=args.epochs,
        device=args.device,
        train_size=args.train_size,
        synthetic=args.synthetic,
        data_dir=args.data_dir,
        matmul_size=args.peak_size,
        unroll=args.unroll,
    )


def run_training(args: argparse.Namespace) -> int:
    from jaxcalc.bench.harness import require_results
    from jaxcalc.bench.report import training_table
    from jaxcalc.bench.training import run_bench
    from jaxcalc.cli import progress_to_stderr
    from jaxcalc.plots.bench import throughput_figure

    result = run_bench(bench_config(args, tuple(IMPLS)), progress_to_stderr)
    print(training_table(result))
    require_results(result.rows)
    return write_outputs(args, result.to_json(), lambda: throughput_figure(result), DEFAULT_PLOT)


def run_scaling(args: argparse.Namespace) -> int:
    from jaxcalc.bench.harness import require_results
    from jaxcalc.bench.report import scaling_table
    from jaxcalc.bench.scaling import run_scaling
    from jaxcalc.cli import progress_to_stderr
    from jaxcalc.plots.bench import scaling_figure

    cfg = bench_config(args, ("manual-scan",))
    result = run_scaling(cfg, args.devices, progress_to_stderr)
    print(scaling_table(result))
    require_results(result.rows)
    figure = lambda: scaling_figure(result)  # noqa: E731
    return write_outputs(args, result.to_json(), figure, DEFAULT_SCALING_PLOT)


def run_gradient_cost(args: argparse.Namespace) -> int:
    import jax

    from jaxcalc.bench.gradient_cost import CostPoint, gradient_cost
    from jaxcalc.bench.harness import jax_device
    from jaxcalc.bench.report import cost_table
    from jaxcalc.cli import progress_to_stderr
    from jaxcalc.plots.bench import gradient_cost_figure

    device = jax_device(args.device)

    def progress(p: CostPoint) -> None:
        fd = f"fd {p.finite_difference_seconds:.2e} s" + " (extrapolated)" * (
            not p.finite_difference_measured
        )
        progress_to_stderr(f"n = {p.n}: reverse {p.reverse_seconds:.2e} s, {fd}")

    with jax.default_device(device):
        points = gradient_cost(
            sorted(set(args.sizes)), max_fd_seconds=args.max_fd_seconds, progress=progress
        )
    print(cost_table(points))
    out = {"device": str(device), "points": [p._asdict() for p in points]}
    return write_outputs(args, out, lambda: gradient_cost_figure(points), DEFAULT_COST_PLOT)


def write_outputs(
    args: argparse.Namespace, json_obj, figure=None, default_plot: str | None = None
) -> int:
    """Write `--json` (if asked) and the PNG from `figure()` (unless `--no-plot`; none
    without a `figure`)."""
    from jaxcalc.files import write_json

    if args.json:
        print(f"wrote {write_json(args.json, json_obj)}")
    if figure is not None and not args.no_plot:
        from jaxcalc.plots import save

        print(f"wrote {save(figure(), args.plot or default_plot)}")
    return 0


def run_hvp(args: argparse.Namespace) -> int:
    """`--hvp`: the products of `jaxcalc.bench.hvp`, their table, and `--json`."""
    from jaxcalc.bench.hvp import run_hvp_bench
    from jaxcalc.bench.report import hvp_table
    from jaxcalc.cli import progress_to_stderr
    from jaxcalc.validation import InputError

    other = [f for f, on in (("--devices", args.devices), ("--gradient-cost", args.gradient_cost),
                             ("--impl", args.impl), ("--plot", args.plot)) if on]  # fmt: skip
    if other:
        raise InputError(f"--hvp is a run of its own; drop {', '.join(other)}")
    result = run_hvp_bench(
        **given(examples=args.train_size, hidden=args.hidden),
        repeats=args.epochs,
        device=args.device,
        synthetic=args.synthetic,
        data_dir=args.data_dir,
        progress=progress_to_stderr,
    )
    print(hvp_table(result))
    return write_outputs(args, result.to_json())
