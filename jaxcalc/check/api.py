"""`check_grads` and `assert_grads`: the public face of the checker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.check import engine, kinks, probes, second_order
from jaxcalc.check.problem import Problem, build
from jaxcalc.check.report import Report, Row
from jaxcalc.validation import InputError

MODES = ("fwd", "rev")


def check_grads(
    f: Callable,
    args: tuple,
    order: int = 1,
    *,
    grad_fn: Callable | None = None,
    reference: Callable | None = None,
    modes: Sequence[str] | None = None,
    mode: str = "auto",
    probes: int | None = None,
    seed: int = 0,
    x64: bool = True,
) -> Report:
    """Check the derivatives of f(*args) against a reference, block by block.

    Every block of the Jacobian, one per (argument leaf, output leaf), is compared in each
    mode, forward (JVPs) and reverse (VJPs), or, given `grad_fn`, the user's gradient, with
    central differences (Richardson's extrapolation, step and error from the float type and
    from f itself), in float64 for float32 arguments when f allows it; `order=2` also checks
    the derivatives of the first derivative. A block fails when yours differs from the
    reference by more than the reference's own error can explain; the report names the
    worst entries and the pattern (a flipped sign, a constant factor, zeros, a transpose, a
    wrong reduction axis, NaN).

    Args:
      f: any JAX function of `args`; pytrees in and out, a `custom_vjp` (reverse mode only)
        or `custom_jvp` rule inside is what is checked.
      args: a tuple of f's arguments (pytrees). Float leaves are differentiated; integer
        and boolean leaves are held fixed; complex leaves are refused.
      order: 1, or 2 for the derivative of the derivative as well.
      grad_fn: a hand-written gradient of a scalar f: grad_fn(*args) returns the structure
        of args (for one argument, of that argument).
      reference: a plain implementation of the same f whose autodiff is exact; its JVPs
        replace the finite differences.
      modes: the subset of ("fwd", "rev") to check (default: every mode f allows).
      mode: "full" (every entry), "fast" (random probes per block) or "auto" (full when
        the inputs and outputs each hold at most 16 numbers).
      probes: random probes per block in fast mode (default 3).
      seed: the seed of the probes.
      x64: use a float64 reference for float32 arguments where f allows it.

    Returns:
      A `Report`: `verdict` ("ok" | "warn" | "fail"), `rows`, `notes`, `summary()`; print it.
    """
    if not isinstance(order, int) or isinstance(order, bool) or order not in (1, 2):
        raise InputError(f"order must be 1 or 2, got {order!r}")
    problem, out = build(f, args, grad_fn=grad_fn, reference=reference)
    modes = _modes(modes, grad_fn)
    rows, notes = _not_finite(problem, out)
    keep = [i for i, n in enumerate(problem.out_names) if n not in {r.out for r in rows}]
    if not keep:
        return Report(rows, notes, [])
    problem = problem.outputs(keep) if len(keep) < len(problem.out_names) else problem
    rng = np.random.default_rng(seed + 1)
    plan = _plan(problem, mode, probes, seed)
    first, problem = _with_moves(problem, modes, plan, x64, notes, rng)
    rows += first.rows
    plans = [plan]
    if order == 2:
        inner = ["grad_fn"] if grad_fn else [m for m in ("rev", "fwd") if m in first.available]
        for p2 in second_order.derivatives(problem, inner, rng):
            plans.append(_plan(p2, mode, probes, seed))
            second, _ = _with_moves(p2, list(MODES), plans[-1], x64, notes, rng)
            rows += second.rows
    return Report(rows, notes, _header(problem, reference, plans, rows, notes))


def assert_grads(f: Callable, args: tuple, order: int = 1, **kwargs: Any) -> Report:
    """`check_grads`, raising an AssertionError that carries the report when it fails."""
    report = check_grads(f, args, order, **kwargs)
    if report.verdict == "fail":
        raise AssertionError("\n" + str(report))
    return report


def _modes(modes, grad_fn) -> list[str]:
    if grad_fn is not None:
        if modes is not None:
            raise InputError("modes applies to f's own derivatives, not to grad_fn")
        return ["grad_fn"]
    if modes is None:
        return list(MODES)
    if isinstance(modes, str) or not modes or any(m not in MODES for m in modes):
        raise InputError(f"modes must be a non-empty subset of ('fwd', 'rev'), got {modes!r}")
    return [m for m in MODES if m in modes]


def _plan(problem: Problem, mode: str, k: int | None, seed: int) -> probes.Plan:
    sizes = [int(np.prod(s)) for s in problem.in_shapes]
    out_sizes = [int(np.prod(s)) for s in problem.out_shapes]
    return probes.choose(sizes, out_sizes, mode, k, seed)


def _not_finite(problem: Problem, out: Any) -> tuple[list[Row], list[str]]:
    """A failed row per argument leaf for every output leaf that is NaN or inf at args."""
    rows = []
    float_outs = [o for o in jax.tree_util.tree_leaves(out) if _is_float(o)]
    for name, value in zip(problem.out_names, float_outs, strict=True):
        v = np.asarray(value)
        if np.all(np.isfinite(v)):
            continue
        i = tuple(int(j) for j in np.argwhere(~np.isfinite(v))[0]) if v.ndim else ()
        where = f"{name}[{', '.join(map(str, i))}]" if i else name
        text = f"f(*args) is {v[i]} at {where}: nothing to differentiate there"
        rows += [
            Row(
                arg,
                name,
                "-",
                1,
                shape,
                np.nan,
                np.nan,
                None,
                "fail",
                "nan",
                text,
                f"gives f = {v[i]} at {where}",
            )
            for arg, shape in zip(problem.in_names, problem.in_shapes, strict=True)
        ]
    return rows, []


def _is_float(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _with_moves(problem, modes, plan, x64, notes, rng) -> tuple[engine.Outcome, Problem]:
    """`engine.run`, moving the point off a kink up to `kinks.MOVES` times (see `kinks`)."""
    for attempt in range(kinks.MOVES + 1):
        outcome = engine.run(problem, modes=modes, plan=plan, x64=x64, final=attempt == kinks.MOVES)
        if outcome.rows or not outcome.rough:
            notes += [n for n in outcome.notes if n not in notes]
            return outcome, problem
        note = (
            f"{'order 2: ' if problem.inner else ''}the reference could not resolve f at the "
            f"given point along {outcome.rough} probe(s) (not differentiable there?): checked "
            f"at a point moved by {kinks.distance(outcome.dtype):.1e} (relative)"
        )
        moved = kinks.move(problem.point, problem.F, rng, outcome.dtype)
        if moved is None:
            outcome = engine.run(problem, modes=modes, plan=plan, x64=x64, final=True)
            notes += [n for n in outcome.notes if n not in notes]
            return outcome, problem
        if note not in notes:
            notes.append(note)
        problem = problem.at(moved)
    raise AssertionError("unreachable")


def _header(problem: Problem, reference, plans, rows: list[Row], notes: list[str]) -> list[str]:
    low = sorted({str(p.dtype) for p in problem.point} - {"float64"})
    fallback = any(n.startswith("no float64 reference") for n in notes)
    if reference is not None:
        ref = "autodiff of the reference function (exact up to rounding)"
    else:
        ref = "central differences with Richardson's extrapolation"
    if low and not fallback:
        ref += f", in float64 (yours run in {', '.join(low)} and float64)"
    elif low:
        ref += f", in {', '.join(low)} (f does not allow float64)"
    lines = [f"reference: {ref}"]
    plan = plans[0]
    if all(p.full for p in plans):
        lines.append("full mode: every entry of every block")
    else:
        bounds = [r.bound for r in rows if np.isfinite(r.bound)]
        above = probes.caught_above(max(bounds, default=0.0), plan.probes)
        lines.append(
            f"fast mode: {plan.probes} random probes per block; an error above {above:.0e} "
            f"(relative) in any block is caught with probability > 1 - {probes.MISS:.0e}"
        )
    return lines
