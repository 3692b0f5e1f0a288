"""`jaxcalc gradcheck`: the MLP's hand-written derivatives checked by `jaxcalc.check`, or, with
`--target`, any function of yours on random inputs."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jaxcalc.cli import nonnegative_int, positive_int
from jaxcalc.mlp import HIDDEN_ACTIVATIONS, LOSSES, PARAM_NAMES
from jaxcalc.validation import InputError, RunError

if TYPE_CHECKING:
    from jaxcalc.gradcheck import Check

#: One heading per group of rows: what is checked, and as the derivative of what.
GROUPS = {
    "gradient": "gradient: the hand-written backward pass (mlp.loss_and_grad) as the gradient "
    "of the loss (mlp.loss_fn)",
    "H v": "H v: the R-operator's Hessian-vector product (mlp.hvp) as the derivative of the "
    "hand-written gradient",
    "G v": "G v: the Gauss-Newton product (mlp.ggn_vp) as the derivative of Jᵀ ∇ℓ(z2) with J "
    "frozen",
    "dz2/dx": "dz2/dx: the input Jacobian (mlp.input_jacobian) as the derivative of the logits, "
    "forward and reverse",
}
LEGEND = """\
columns: W1 b1 W2 b2 (x): the relative error ‖yours − reference‖ / ‖reference‖ of each array,
  over every entry, computed in float64 (the network is float32; yours runs in both);
  reference: "autodiff" = JAX's derivative of a plain twin (exact up to rounding), "finite
  diff" = central differences with Richardson's extrapolation; bound: the largest error the
  reference's own accuracy explains (a row fails above it); f32: yours in float32 against
  yours in float64 (warn above √eps of float32, 3.5e-4); verdict: ok, warn or FAIL."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gradcheck",
        help="check derivatives: the MLP's hand-written ones, or any function (--target)",
        description=(
            "Without --target: the MLP's hand-written gradient, H v, G v and input Jacobian, "
            "for every activation (sigmoid, relu, tanh) x loss (cross-entropy with softmax, "
            "MSE with a sigmoid or identity output), each as the derivative of a plain function "
            "checked by jaxcalc.check against JAX's autodiff of a twin and against float64 "
            "central differences, every entry; a table per quantity with a legend. With "
            "--target package.module:function (or file.py:function): that function on random "
            "N(0, 1) inputs of --shapes, checked by jaxcalc.check.check_grads and its report "
            "printed. Exit status 1 if a check fails, 2 on bad input."
        ),
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    mlp_group = parser.add_argument_group("the MLP table")
    mlp_group.add_argument(
        "--sizes",
        type=positive_int,
        nargs=3,
        metavar=("N_IN", "N_HIDDEN", "N_OUT"),
        help="network layer sizes (default: 6 5 3)",
    )
    mlp_group.add_argument("--batch", type=positive_int, help="rows (default: 8)")
    mlp_group.add_argument(
        "--activation",
        choices=HIDDEN_ACTIVATIONS,
        action="append",
        help="check only this hidden activation (repeatable; default: all)",
    )
    mlp_group.add_argument(
        "--loss", choices=LOSSES, action="append", help="check only this loss (default: all)"
    )
    parser.add_argument(
        "--order",
        type=int,
        choices=(1, 2),
        action="append",
        help="MLP: 1 the gradient, 2 H v, G v and dz2/dx (repeatable; default: both); "
        "--target: check up to this order (default 1)",
    )
    target = parser.add_argument_group("your function")
    target.add_argument(
        "--target",
        metavar="MODULE:FUNCTION",
        help="the function to check: package.module:function or path/to/file.py:function",
    )
    target.add_argument(
        "--shapes",
        nargs="+",
        metavar="SHAPE",
        help="one shape per argument, e.g. 8x16 16 (a scalar: 1x or ())",
    )
    target.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="(default float32)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.target is not None or args.shapes is not None:
        return run_target(args)
    from jaxcalc.gradcheck import run as run_checks
    from jaxcalc.gradcheck import run_second_order

    orders = set(args.order or (1, 2))
    kwargs = {
        "seed": args.seed,
        "sizes": tuple(args.sizes or (6, 5, 3)),
        "batch": args.batch or 8,
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
    """The checks grouped by quantity, one aligned table each, and the legend."""
    from jaxcalc.bench.report import aligned_rows

    parts = []
    for quantity, heading in GROUPS.items():
        rows = [c for c in checks if c.quantity == quantity]
        if not rows:
            continue
        names = dict.fromkeys(k for c in rows for k in c.errors)
        arrays = sorted(names, key=lambda k: (PARAM_NAMES + (k,)).index(k))
        head = ("activation", "loss", "output", "reference", *arrays, "bound", "f32", "verdict")
        lines = [
            (
                c.activation,
                c.loss,
                c.output,
                c.reference,
                *(f"{c.errors[k]:.1e}" if k in c.errors else "-" for k in arrays),
                f"{c.bound:.0e}",
                "-" if c.f32 is None else f"{c.f32:.1e}",
                "FAIL" if c.verdict == "fail" else c.verdict,
                "" if c.verdict == "ok" or c.report is None else c.report.summary(),
            )
            for c in rows
        ]
        parts += [heading, *aligned_rows(head, lines, left=range(4)), ""]
    return "\n".join(parts + [LEGEND])


# --------------------------------------------------------------------------- --target


def parse_shape(text: str) -> tuple[int, ...]:
    """ "8x16" -> (8, 16); "16" -> (16,); "()" or "1x" -> () (a scalar)."""
    if text.strip() in ("()", "1x", "scalar"):
        return ()
    parts = text.lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(n < 1 for n in shape):
        raise InputError(
            f"--shapes: {text!r} is not a shape; write positive sizes joined by x, e.g. 8x16"
        )
    return shape


def load_target(spec: str) -> Callable:
    """The function named by `module:function` or `path.py:function`: InputError (exit 2)
    when it cannot be found or is not a function, RunError (exit 1) when its module fails
    while it is imported."""
    where, _, name = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if where.endswith(".py"):
        module = _load_file(Path(where))
    elif not name:
        raise InputError(
            f"--target {spec!r}: write package.module:function or path/to/file.py:function"
        )
    else:
        try:
            found = importlib.util.find_spec(where)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise InputError(f"--target: no module named {where!r}")
        module = _import(lambda: importlib.import_module(where), where)
    if not name:
        funcs = [
            n
            for n, v in vars(module).items()
            if inspect.isfunction(v)
            and getattr(v, "__module__", None) == module.__name__
            and not n.startswith("_")
        ]
        if len(funcs) != 1:
            raise InputError(
                f"--target {spec!r}: name the function, path.py:function (found: "
                f"{', '.join(funcs[:8]) or 'none'}{', ...' * (len(funcs) > 8)})"
            )
        name = funcs[0]
    if not hasattr(module, name):
        raise InputError(f"--target: {module.__name__} has no {name!r}")
    f = getattr(module, name)
    if not callable(f):
        raise InputError(f"--target: {module.__name__}.{name} is not a function")
    return f


def _load_file(path: Path):
    if not path.is_file():
        raise InputError(f"--target: no file {path}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise InputError(f"--target: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(path.stem, module)
    return _import(lambda: spec.loader.exec_module(module) or module, str(path))


def _import(load: Callable, name: str):
    try:
        return load()
    except Exception as e:  # noqa: BLE001 - the user's module failed on import: exit 1
        detail = str(e).strip().splitlines()
        raise RunError(
            f"--target: {name} failed on import: {type(e).__name__}"
            + (f": {detail[0]}" if detail else "")
        ) from None


def run_target(args: argparse.Namespace) -> int:
    """Check the --target function on random inputs of --shapes; exit 1 on "fail"."""
    import jax
    import numpy as np

    from jaxcalc import check

    if args.target is None or not args.shapes:
        raise InputError("--target and --shapes go together: --target m:f --shapes 8x16 16")
    mlp_flags = [
        f
        for f, v in (
            ("--sizes", args.sizes),
            ("--batch", args.batch),
            ("--activation", args.activation),
            ("--loss", args.loss),
        )
        if v
    ]
    if mlp_flags:
        raise InputError(f"{', '.join(mlp_flags)} belong to the MLP table, not to --target")
    if args.order and len(set(args.order)) > 1:
        raise InputError("--target takes one --order, 1 or 2")
    shapes = [parse_shape(s) for s in args.shapes]
    f = load_target(args.target)
    rng = np.random.default_rng(args.seed)
    with jax.enable_x64(args.dtype == "float64"):
        inputs = tuple(np.asarray(rng.standard_normal(s), dtype=args.dtype) for s in shapes)
        report = check.check_grads(f, inputs, max(args.order or (1,)), seed=args.seed)
    print(report)
    return 1 if report.verdict == "fail" else 0
