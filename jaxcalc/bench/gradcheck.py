"""Three gradient checkers on one corpus: jaxcalc.check, jax.test_util, torch.autograd.

Each case of a corpus (`jaxcalc.bench.corpus`, or any module with `CASES`) runs in float32
and in float64, through each checker at its defaults, as a new user would call it:

    jaxcalc.check      check_grads(f, args, order, grad_fn=...)      "fail" = caught
    jax.test_util      check_grads(f, args, order, modes)            AssertionError = caught
                       modes ("fwd", "rev") where f allows forward mode, else ("rev",); a
                       grad_fn becomes the backward rule of a custom_vjp
    torch gradcheck    gradcheck(port, inputs) (order 2: gradgradcheck), and fast_mode=True,
                       on the cases with a torch port                 False = caught

A bug is caught when the checker says so; a correct rule (a twin or a JAX control) that it
fails is a false alarm; any other exception is a crash. For jaxcalc.check it also scores
whether the failed rows name exactly the leaves the bug lives in, and the pattern the case
asks for. Every call is timed from cold, as a new user's first check would run: JAX's
caches are cleared before each (`jax.clear_caches`), so no checker reuses what another
compiled (most of a check's time on a CPU is compiling JAX's primitives for new shapes); the
checkers alternate which goes first, case by case.

`network` checks a 1,000,000-parameter network's hand-written gradient, and the same with a
1 % bug in its smallest leaf (b2, 10 numbers).
"""

from __future__ import annotations

import importlib
import importlib.util
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.bench.corpus import Case
from jaxcalc.validation import InputError

CHECKERS = ("jaxcalc.check", "jax.test_util", "torch gradcheck", "torch fast_mode")
DTYPES = ("float32", "float64")


class Result(NamedTuple):
    case: str
    dtype: str
    checker: str
    buggy: bool
    outcome: str  # "caught" | "passed" | "crash"
    seconds: float
    leaf_ok: bool | None = None  # jaxcalc.check on a bug: the failed rows name its leaves
    pattern_ok: bool | None = None  # ... and the pattern the case asks for
    message: str = ""


def load(module: str | None) -> list[Case]:
    """The cases of a corpus module (default: jaxcalc's own)."""
    name = module or "jaxcalc.bench.corpus"
    try:
        cases = importlib.import_module(name).CASES
    except ImportError as e:
        raise InputError(f"cannot import corpus {name}: {e}") from None
    except AttributeError:
        raise InputError(f"corpus {name} has no CASES") from None
    return list(cases)


def cast(tree: Any, dtype: str) -> Any:
    """The float leaves of a tree of NumPy values as jax arrays of `dtype`; ints stay."""

    def one(x):
        a = np.asarray(x)
        return jnp.asarray(a, dtype) if np.issubdtype(a.dtype, np.floating) else jnp.asarray(a)

    return jax.tree.map(one, tree)


def run_jaxcalc(case: Case, args: tuple) -> tuple[str, bool | None, bool | None, str]:
    from jaxcalc import check

    report = check.check_grads(case.f, args, case.order, grad_fn=case.grad_fn)
    failed = report.failures
    outcome = "caught" if report.verdict == "fail" else "passed"
    leaf_ok = pattern_ok = None
    if case.buggy:
        leaf_ok = {r.arg for r in failed} == set(case.leaves)
        if case.pattern:
            pattern_ok = bool(failed) and all(r.pattern == case.pattern for r in failed)
    return outcome, leaf_ok, pattern_ok, report.summary()


def _forward_allowed(f: Callable, args: tuple) -> bool:
    try:
        jax.jvp(f, args, args)
    except Exception:  # noqa: BLE001 - no forward mode (a custom_vjp)
        return False
    return True


def as_custom_vjp(f: Callable, grad_fn: Callable, count: int) -> Callable:
    """f with grad_fn as its reverse rule: how jax.test_util can check a gradient function."""
    wrapped = jax.custom_vjp(f)

    def bwd(args, ct):
        g = grad_fn(*args)
        g = g if count > 1 else (g,)
        return tuple(jax.tree.map(lambda t: ct * t, gi) for gi in g)

    wrapped.defvjp(lambda *args: (f(*args), args), bwd)
    return wrapped


def run_jax(case: Case, args: tuple) -> tuple[str, str]:
    from jax.test_util import check_grads

    f = case.f if case.grad_fn is None else as_custom_vjp(case.f, case.grad_fn, len(args))
    modes = ("fwd", "rev") if _forward_allowed(f, args) else ("rev",)
    try:
        check_grads(f, args, case.order, modes=modes)
    except AssertionError as e:
        return "caught", str(e).strip().splitlines()[0]
    return "passed", ""


def run_torch(case: Case, args: tuple, dtype: str, *, fast: bool) -> tuple[str, str]:
    import torch

    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    inputs = tuple(torch.tensor(np.asarray(a), dtype=tdtype, requires_grad=True) for a in args)
    check = torch.autograd.gradgradcheck if case.order == 2 else torch.autograd.gradcheck
    with warnings.catch_warnings():  # "not double precision": the float32 rows say so
        warnings.simplefilter("ignore", UserWarning)
        ok = check(case.torch, inputs, fast_mode=fast, raise_exception=False)
    return ("passed" if ok else "caught"), ""


def _timed(run: Callable[[], tuple]) -> tuple[float, tuple | None, str]:
    jax.clear_caches()
    start = time.perf_counter()
    try:
        out = run()
    except Exception as e:  # noqa: BLE001 - a checker that raises has crashed: scored
        return time.perf_counter() - start, None, f"{type(e).__name__}: {e}".splitlines()[0]
    return time.perf_counter() - start, out, ""


def run_case(case: Case, dtype: str, first: int, *, torch: bool) -> list[Result]:
    """Every checker on one case in one dtype; `first` (0 or 1) picks who goes first."""
    results = []
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    raw = case.args(rng)
    with jax.enable_x64(dtype == "float64"):
        args = cast(raw, dtype)
        runs = [
            ("jaxcalc.check", lambda: run_jaxcalc(case, args)),
            ("jax.test_util", lambda: run_jax(case, args)),
        ]
        for name, run in runs[first:] + runs[:first]:
            seconds, out, err = _timed(run)
            if out is None:
                results.append(
                    Result(case.name, dtype, name, case.buggy, "crash", seconds, message=err)
                )
            elif name == "jaxcalc.check":
                outcome, leaf_ok, pattern_ok, msg = out
                results.append(
                    Result(
                        case.name,
                        dtype,
                        name,
                        case.buggy,
                        outcome,
                        seconds,
                        leaf_ok,
                        pattern_ok,
                        msg,
                    )
                )
            else:
                results.append(
                    Result(case.name, dtype, name, case.buggy, out[0], seconds, message=out[1])
                )
    if torch and case.torch is not None:
        for name, fast in (("torch gradcheck", False), ("torch fast_mode", True)):
            seconds, out, err = _timed(lambda fast=fast: run_torch(case, raw, dtype, fast=fast))
            outcome, msg = ("crash", err) if out is None else out
            results.append(
                Result(case.name, dtype, name, case.buggy, outcome, seconds, message=msg)
            )
    return results


def have_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


def run_bench(
    cases: Sequence[Case], progress: Callable[[str], None] = lambda s: None
) -> list[Result]:
    """Every case in float32 and float64 through every checker (module docstring)."""
    torch = have_torch()
    results = []
    for i, case in enumerate(cases):
        for j, dtype in enumerate(DTYPES):
            results += run_case(case, dtype, (i + j) % 2, torch=torch)
        progress(f"{i + 1}/{len(cases)} {case.name}")
    return results


class Score(NamedTuple):
    checker: str
    bugs: int
    caught: int
    correct: dict[str, int]  # dtype -> correct cases run
    false_alarms: dict[str, int]  # dtype -> correct cases failed
    crashes: int
    seconds: float
    leaves: tuple[int, int] | None  # (named right, bugs) for jaxcalc.check
    patterns: tuple[int, int] | None


def score(results: Sequence[Result]) -> list[Score]:
    out = []
    for checker in CHECKERS:
        mine = [r for r in results if r.checker == checker]
        if not mine:
            continue
        bugs = [r for r in mine if r.buggy]
        correct = {d: [r for r in mine if not r.buggy and r.dtype == d] for d in DTYPES}
        leaves = patterns = None
        if checker == "jaxcalc.check":
            leaves = (sum(bool(r.leaf_ok) for r in bugs), len(bugs))
            asked = [r for r in bugs if r.pattern_ok is not None]
            patterns = (sum(bool(r.pattern_ok) for r in asked), len(asked))
        out.append(
            Score(
                checker,
                len(bugs),
                sum(r.outcome == "caught" for r in bugs),
                {d: len(c) for d, c in correct.items()},
                {d: sum(r.outcome == "caught" for r in c) for d, c in correct.items()},
                sum(r.outcome == "crash" for r in mine),
                sum(r.seconds for r in mine),
                leaves,
                patterns,
            )
        )
    return out


def table(scores: Sequence[Score]) -> list[str]:
    from jaxcalc.bench.report import aligned_rows

    head = (
        "checker",
        "bugs caught",
        "false alarms f32",
        "false alarms f64",
        "crashes",
        "seconds",
        "leaf named",
        "pattern named",
    )
    lines = [
        (
            s.checker,
            f"{s.caught}/{s.bugs}",
            f"{s.false_alarms['float32']}/{s.correct['float32']}",
            f"{s.false_alarms['float64']}/{s.correct['float64']}",
            str(s.crashes),
            f"{s.seconds:.1f}",
            "-" if s.leaves is None else f"{s.leaves[0]}/{s.leaves[1]}",
            "-" if s.patterns is None else f"{s.patterns[0]}/{s.patterns[1]}",
            "",
        )
        for s in scores
    ]
    return aligned_rows(head, lines)


def misses(results: Sequence[Result]) -> list[str]:
    """One line per bug missed, false alarm, crash, or (jaxcalc) leaf or pattern not named."""
    lines = []
    for r in results:
        what = None
        if r.outcome == "crash":
            what = "crash"
        elif r.buggy and r.outcome != "caught":
            what = "missed"
        elif not r.buggy and r.outcome == "caught":
            what = "false alarm"
        elif r.leaf_ok is False:
            what = "wrong leaf"
        elif r.pattern_ok is False:
            what = "wrong pattern"
        if what:
            lines.append(f"{r.checker}: {what}: {r.case} ({r.dtype}) {r.message}".rstrip())
    return lines


# --------------------------------------------------------------------------- the network

NETWORK_SIZES = (784, 1262, 10)  # 1,003,300 parameters
NETWORK_BATCH = 64


def network(seed: int = 0) -> list[tuple[str, str, float, int]]:
    """The hand-written gradient of a 1,000,000-parameter ReLU network (`mlp`), checked as
    it is and with a 1 % bug in b2: (case, verdict, seconds, parameters) for each."""
    from jaxcalc import check, mlp

    key = jax.random.key(seed)
    params = mlp.init_params(key, NETWORK_SIZES, activation="relu")
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(NETWORK_BATCH, NETWORK_SIZES[0])), jnp.float32)
    y = jnp.asarray(rng.integers(0, NETWORK_SIZES[2], NETWORK_BATCH))
    kw = {"activation": "relu", "loss": "cross_entropy"}

    def loss(p):  # the data follow the parameters' float type (float64 in the reference)
        return mlp.loss_fn(p, x.astype(p["W1"].dtype), y, **kw)

    def grad(p):
        return mlp.loss_and_grad(p, x.astype(p["W1"].dtype), y, **kw)[1]

    def buggy(p):
        g = grad(p)
        return {**g, "b2": 1.01 * g["b2"]}

    count = sum(int(v.size) for v in params.values())
    out = []
    for name, g in (("hand-written", grad), ("1% bug in b2", buggy)):
        start = time.perf_counter()
        report = check.check_grads(loss, (params,), grad_fn=g)
        out.append((name, report.summary(), time.perf_counter() - start, count))
    return out
