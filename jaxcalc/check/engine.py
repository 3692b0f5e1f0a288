"""One check of one `Problem`: yours and the reference, at the right precision, compared.

1. Yours, in every mode asked (forward: JVPs along the directions; reverse: VJPs of the
   cotangents; or grad_fn's gradient), at the point as given (float32, say). A mode that JAX
   cannot run on f for a known reason (a `custom_vjp` function has no forward mode, a
   `while_loop` no reverse mode) is skipped with a note; any other error fails its rows.
2. If the point holds a type below float64, everything again in float64 under a local
   `jax.enable_x64(True)`, where f allows it (it runs, and returns float64): the reference is
   then float64 central differences (or the twin's float64 autodiff), yours is compared in
   float64, and the float32 run is kept as the "f32" column. Where f does not allow it, the
   check runs in f's own type, with a bound to match.
3. The reference (`reference`); a probe where f is not differentiable at the point makes the
   caller move the point (`kinks`).
4. Each block (`compare`) with a verdict, and a diagnosis (`diagnosis`) of every failure; in
   fast reverse mode the diagnosis first differentiates up to `DIAG_MAX` entries of the leaf
   one by one, so that it can name entries and patterns.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.check import compare, diagnosis, evaluate, probes, reference
from jaxcalc.check.evaluate import Directions
from jaxcalc.check.problem import Problem, first_line
from jaxcalc.check.report import Row

#: Known limits of JAX's autodiff (a fragment of the error) -> the note the report prints.
LIMITS = {
    "can't apply forward-mode autodiff (jvp) to a custom_vjp": "custom_vjp defines reverse "
    "mode only",
    "Reverse-mode differentiation does not work for lax.while_loop": "lax.while_loop has no "
    "reverse mode",
}
DIAG_MAX = 256  # entries of one leaf the diagnosis differentiates one by one
F32_DRIFT = float(np.sqrt(jnp.finfo(jnp.float32).eps))


class Unavailable(NamedTuple):
    reason: str


class Broken(NamedTuple):
    message: str


class Outcome(NamedTuple):
    rows: list[Row]
    notes: list[str]
    rough: int  # probes along which f is not differentiable at the point
    available: list[str]  # the modes of yours that ran
    dtype: np.dtype  # the float type the reference worked in


def _classify(e: Exception) -> Unavailable | Broken:
    text = str(e)
    for fragment, reason in LIMITS.items():
        if fragment in text:
            return Unavailable(reason)
    return Broken(f"raised {type(e).__name__}: {first_line(e)}")


def yours(problem: Problem, x: list, modes, dirs: list[Directions], cots: list[Directions]):
    """mode -> yours (fwd: [a][o] (B, *out); rev: [o][a] (C, *in); grad_fn: [a] (*in)),
    or Unavailable / Broken."""
    out = {}
    numbers = sum(int(np.prod(xi.shape)) for xi in x)
    for mode in modes:
        try:
            if mode == "fwd":
                out[mode] = [evaluate.jvps(problem.F, x, a, dirs[a]) for a in range(len(x))]
            elif mode == "rev":
                outs, pullback = evaluate.linearize_vjp(problem.F, x)
                out[mode] = [
                    evaluate.vjps(pullback, outs, o, cots[o], numbers) for o in range(len(outs))
                ]
            else:
                out[mode] = [np.asarray(g) for g in problem.grad(x)]
        except Exception as e:  # noqa: BLE001 - the user's derivative failed: reported
            out[mode] = _classify(e)
    return out


class _NoX64(Exception):
    pass


def _x64(on: bool):
    return jax.enable_x64(True) if on else contextlib.nullcontext()


def _references(problem: Problem, x: list, dirs: list[Directions]) -> list[reference.Estimate]:
    if problem.ref is not None:
        return [reference.autodiff(problem.ref, x, a, d) for a, d in enumerate(dirs)]
    g0 = [np.asarray(o) for o in problem.F(x)]
    return [reference.finite_differences(problem.F, x, a, d, g0) for a, d in enumerate(dirs)]


def run(
    problem: Problem, *, modes: list[str], plan: probes.Plan, x64: bool, final: bool
) -> Outcome:
    """Steps 1-4 of the module docstring at `problem.point`. Returns early, with no rows,
    when some probe is rough and the caller may still move the point (`final` False)."""
    notes = []
    point = problem.point
    rng = np.random.default_rng(plan.seed)
    dirs = probes.directions(plan, point, rng)
    cots = probes.cotangents(plan, problem.out_shapes, rng)
    native_x = [jnp.asarray(p) for p in point]
    native = yours(problem, native_x, modes, dirs, cots)
    ran = [m for m in modes if isinstance(native[m], list)]
    for m in modes:
        if isinstance(native[m], Unavailable):
            notes.append(f"{_label(m, problem)}: not checked, {native[m].reason}")
    dual = x64 and any(p.dtype != np.float64 for p in point)
    work, estimates = native, None
    if dual:
        try:
            with jax.enable_x64(True):
                x = [jnp.asarray(p.astype(np.float64)) for p in point]
                kinds = {str(o.dtype) for o in problem.F(x)}
                if kinds != {"float64"}:
                    raise _NoX64(f"f returns {', '.join(sorted(kinds))} for float64 arguments")
                work = {**native, **yours(problem, x, ran, dirs, cots)}
                for m in ran:
                    if not isinstance(work[m], list):
                        raise _NoX64(f"{_label(m, problem)} {work[m].message}")
                estimates = _references(problem, x, dirs)
        except Exception as e:  # noqa: BLE001 - f does not allow float64: its own type
            reason = str(e) if isinstance(e, _NoX64) else f"{type(e).__name__}: {first_line(e)}"
            notes.append(f"no float64 reference ({reason}); checked in {point[0].dtype}")
            dual, work, estimates = False, native, None
    if estimates is None:
        estimates = _references(problem, native_x, dirs)
    rough = int(sum(int(e.rough.sum()) for e in estimates))
    work_dtype = np.dtype(np.float64) if dual else min((p.dtype for p in point), key=_eps_of)
    if rough and not final:
        return Outcome([], notes, rough, ran, work_dtype)
    if rough:
        notes.append(
            f"the reference could not resolve f near the point along {rough} probe(s) (a "
            "kink, a jump, or rounding noise): their bounds are loose"
        )
    with _x64(dual):
        x = [jnp.asarray(p.astype(np.float64) if dual else p) for p in point]
        rows = [
            row
            for m in modes
            for row in _rows(
                problem, m, work[m], native[m] if dual else None, estimates, dirs, cots, x, plan
            )
        ]
    return Outcome(rows, notes, rough, ran, work_dtype)


def _eps_of(dtype) -> float:
    return -float(jnp.finfo(dtype).eps)


def _label(mode: str, problem: Problem) -> str:
    return f"{mode}∘{problem.inner}" if problem.inner else mode


def _rows(problem, mode, mine, native, estimates, dirs, cots, x, plan) -> list[Row]:
    """The rows of one mode: a block per (argument leaf, output leaf)."""
    label = _label(mode, problem)
    order = 2 if problem.inner else 1
    pairs = [(a, o) for a in range(len(problem.in_names)) for o in range(len(problem.out_names))]
    if isinstance(mine, Unavailable):
        return []
    if isinstance(mine, Broken):
        return [
            Row(
                problem.in_names[a],
                problem.out_names[o],
                label,
                order,
                problem.in_shapes[a],
                np.nan,
                np.nan,
                None,
                "fail",
                "error",
                mine.message,
                "raises an error",
            )
            for a, o in pairs
        ]
    rows = []
    for a, o in pairs:
        est = estimates[a]
        block = _block(mode, plan, a, o, mine, native, est, dirs, cots, problem)
        eps = max(est.eps, _eps(mine, mode, a, o))
        floor = reference.floor(eps)
        m = compare.measure(block, floor)
        verdict, pattern, text, hint, worst = "ok", "", "", "", ()
        if m.failed:
            d = _diagnose(block, floor, plan, mode, problem, x, a, o, mine, cots, est)
            verdict, pattern, text, hint, worst = "fail", d.pattern, d.text, d.hint, d.worst
        elif m.f32_failed:
            verdict, pattern = "fail", "nan"
            text, hint = "NaN or inf in the float32 run only (overflow?)", "is NaN in float32"
        else:
            reasons = []
            if m.bound > compare.WEAK:
                reasons.append(f"weak: the reference resolves only {m.bound:.0e} here")
            if m.f32 is not None and m.f32 > F32_DRIFT:
                reasons.append(f"the float32 run loses more than half its digits ({m.f32:.0e})")
            if not block.mask.all():
                reasons.append("f is not finite next to the point along some probes (left out)")
            if reasons:
                verdict, text = "warn", "; ".join(reasons)
        rows.append(
            Row(
                problem.in_names[a],
                problem.out_names[o],
                label,
                order,
                problem.in_shapes[a],
                m.error,
                m.bound,
                m.f32,
                verdict,
                pattern,
                text,
                hint,
                worst,
                *((block.y, block.r) if plan.full else (None, None)),
            )
        )
    return rows


def _eps(mine, mode: str, a: int, o: int) -> float:
    """eps of the float type yours was computed in (it may be below the working type)."""
    arr = mine[a][o] if mode == "fwd" else mine[o][a] if mode == "rev" else mine[a]
    return float(jnp.finfo(arr.dtype).eps) if jnp.issubdtype(arr.dtype, jnp.floating) else 0.0


def _block(mode, plan, a, o, mine, native, est, dirs, cots, problem) -> compare.Block:
    out_shape = problem.out_shapes[o]
    value, error = est.value[o], est.error[o]
    pick = {
        "fwd": lambda ys: ys[a][o],
        "rev": lambda ys: ys[o][a],
        "grad_fn": lambda ys: ys[a],
    }[mode]
    y = pick(mine).astype(np.float64)
    y32 = None if native is None else pick(native).astype(np.float64)
    if plan.full:
        scale = dirs[a].scale.reshape(problem.in_shapes[a])
        return compare.full_block(mode == "fwd", y, y32, value, error, scale, out_shape)
    if mode == "fwd":
        return compare.fast_fwd(y, y32, value, error, out_shape)
    d = dirs[a].dense
    k = d.shape[0]

    def project(g):  # (v_kᵀ J)_a · d_k, or ∇_a f · d_k
        if g is None:
            return None
        g = g.reshape(k, -1) if mode == "rev" else np.broadcast_to(g.reshape(1, -1), (k, g.size))
        return np.sum(g * d.reshape(k, -1), axis=1)

    cot = cots[o].dense if mode == "rev" else np.ones((k,))
    return compare.fast_projected(project(y), project(y32), value, error, cot)


def _diagnose(block, floor, plan, mode, problem, x, a, o, mine, cots, est):
    """The diagnosis of a failed block; fast reverse mode first samples entries one by one."""
    if plan.full or mode == "fwd":
        return diagnosis.diagnose(
            block.y,
            block.r,
            block.e,
            floor,
            mask=block.mask,
            square=block.square,
            whole=block.whole,
        )
    shape = problem.in_shapes[a]
    n = int(np.prod(shape))
    if mode == "rev":
        v = cots[o].dense[0]
        y = mine[o][a][0].astype(np.float64)
    else:
        v = np.ones(())
        y = mine[a].astype(np.float64)
    if not np.all(np.isfinite(y)):
        return diagnosis.diagnose(y, np.zeros_like(y), np.zeros_like(y), floor)
    rng = np.random.default_rng(plan.seed + 1)
    if n <= DIAG_MAX:
        idx = np.arange(n)
    else:
        idx = rng.choice(n, DIAG_MAX // 2, replace=False)
        if len(shape) == 2 and shape[0] == shape[1]:
            i, j = np.unravel_index(idx, shape)
            idx = np.unique(np.concatenate([idx, np.ravel_multi_index((j, i), shape)]))
    s = np.maximum(1.0, np.abs(np.asarray(x[a], np.float64))).ravel()[idx]
    units = Directions(shape, index=idx, scale=s)
    sample = reference.finite_differences(
        problem.F, x, a, units, [np.asarray(g) for g in problem.F(x)]
    )
    k = len(idx)
    r_flat = np.sum(sample.value[o].reshape(k, -1) * v.reshape(1, -1), axis=1) / s
    e_flat = np.sum(sample.error[o].reshape(k, -1) * np.abs(v).reshape(1, -1), axis=1) / s
    r, e = np.zeros(n), np.zeros(n)
    mask = np.zeros(n, bool)
    r[idx], e[idx], mask[idx] = r_flat, e_flat, np.isfinite(r_flat) & np.isfinite(e_flat)
    return diagnosis.diagnose(
        y,
        r.reshape(shape),
        e.reshape(shape),
        floor,
        mask=mask.reshape(shape),
        square=compare._squares(shape, 0),
        whole=n <= DIAG_MAX,
    )
