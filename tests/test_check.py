"""jaxcalc.check: verdicts, patterns, kinks, order 2, pytrees, precision, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcalc import check
from jaxcalc.check import probes, reference
from jaxcalc.check.evaluate import Directions
from jaxcalc.validation import InputError

RNG = np.random.default_rng(7)
M = jnp.asarray(RNG.normal(size=(4, 4)), jnp.float32)
V = jnp.asarray(RNG.normal(size=8), jnp.float32)


def vjp_rule(primal, bwd):
    f = jax.custom_vjp(primal)
    f.defvjp(lambda *a: (primal(*a), a), bwd)
    return f


def jvp_rule(primal, tangent):
    f = jax.custom_jvp(primal)
    f.defjvp(lambda a, t: (primal(*a), tangent(a, t)))
    return f


def failed(report) -> list:
    return [(r.arg, r.pattern) for r in report.failures]


# --------------------------------------------------------------------------- verdicts


def test_a_correct_rule_passes_in_both_modes_and_float32_runs_against_float64():
    report = check.check_grads(lambda a, b: jnp.tanh(a @ b), (M, M))
    assert report.verdict == "ok", report
    assert {(r.arg, r.mode) for r in report.rows} == {
        (a, m) for a in ("a", "b") for m in ("fwd", "rev")
    }
    assert "in float64 (yours run in float32 and float64)" in report.header[0]
    assert all(r.f32 is not None and r.f32 < 1e-5 for r in report.rows)
    assert all(r.bound < 1e-6 for r in report.rows)  # a float64 reference
    assert jnp.zeros(1).dtype == jnp.float32  # x64 was enabled only inside


def test_custom_vjp_is_checked_in_reverse_mode_only():
    f = vjp_rule(jnp.sin, lambda a, g: (g * jnp.cos(a[0]),))
    report = check.check_grads(f, (V,), order=2)
    assert report.verdict == "ok", report
    assert {r.mode for r in report.rows} == {"rev", "fwd∘rev", "rev∘rev"}
    assert any("custom_vjp defines reverse mode only" in n for n in report.notes)


def test_custom_jvp_is_checked_in_both_modes():
    f = jvp_rule(jnp.sin, lambda a, t: 2 * jnp.cos(a[0]) * t[0])  # a dropped factor
    report = check.check_grads(f, (V,))
    assert {r.mode for r in report.failures} == {"fwd", "rev"}
    assert all(r.pattern == "factor" and "2 ×" in r.text for r in report.failures)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pytrees_in_and_out_integer_and_boolean_leaves_held_fixed(dtype):
    def f(p, n, flag, x):
        out = {"a": jnp.sin(p["w"]) * n, "b": jnp.sum(p["v"] ** 2) * flag}
        return out, jnp.argmax(x)  # an integer output: not differentiated

    with jax.enable_x64(dtype == "float64"):
        args = ({"w": jnp.arange(3.0), "v": jnp.ones(2)}, 3, True, jnp.arange(4))
        report = check.check_grads(f, args)
    assert report.verdict == "ok", report
    assert {r.arg for r in report.rows} == {"p['w']", "p['v']"}
    assert {r.out for r in report.rows} == {"out[0]['a']", "out[0]['b']"}
    assert len(report.rows) == 2 * 2 * 2  # args x outputs x modes


def test_grad_fn_and_the_names_of_its_leaves():
    def f(params):
        return jnp.sum(jnp.tanh(M @ params["w"] + params["b"]))

    def grad(params):
        g = 1 - jnp.tanh(M @ params["w"] + params["b"]) ** 2
        return {"w": M.T @ g, "b": 1.01 * g}  # 1 % off in b

    params = {"w": V[:4], "b": V[4:]}
    report = check.check_grads(f, (params,), grad_fn=grad)
    assert failed(report) == [("params['b']", "factor")]
    assert report.summary().startswith("fail: b is off by a factor 1.01")
    assert report.failures[0].leaf == "b"


def test_assert_grads_raises_with_the_report():
    f = jvp_rule(jnp.exp, lambda a, t: -jnp.exp(a[0]) * t[0])
    with pytest.raises(AssertionError, match="wrong sign") as info:
        check.assert_grads(f, (V,))
    assert "worst entries" in str(info.value)
    assert check.assert_grads(jnp.exp, (V,)).verdict == "ok"


def test_reference_function_replaces_finite_differences():
    def plain(x):
        return jnp.sum(jnp.sin(x) ** 2)

    report = check.check_grads(
        plain, (V,), grad_fn=lambda x: jnp.sin(2 * x) * (1 + 1e-5), reference=plain
    )
    assert failed(report) == [("x", "factor")], report
    assert "autodiff of the reference" in report.header[0]
    ok = check.check_grads(plain, (V,), grad_fn=lambda x: jnp.sin(2 * x), reference=plain)
    assert ok.verdict == "ok" and ok.rows[0].bound < 1e-7


# --------------------------------------------------------------------------- diagnosis


def _bias_add(reduce_axis: int):
    return vjp_rule(lambda x, b: x + b[None, :], lambda a, g: (g, g.sum(reduce_axis)))


PATTERNS = {
    "sign": (vjp_rule(jnp.tanh, lambda a, g: (-g * (1 - jnp.tanh(a[0]) ** 2),)), (V,), "x"),
    "factor": (vjp_rule(lambda x: jnp.mean(x), lambda a, g: (jnp.full(a[0].shape, g),)), (M,), "x"),
    "zeros": (
        vjp_rule(lambda a, b: a * b, lambda x, g: (g * x[1], jnp.zeros_like(x[1]))),
        (V, V),
        "b",
    ),
    "transpose": (
        vjp_rule(lambda a, b: a @ b, lambda x, g: (g @ x[1].T, (x[0].T @ g).T)),
        (M, M + 1),
        "b",
    ),
    "reduction": (_bias_add(1), (M, V[:4]), "b"),
    "nan": (vjp_rule(jnp.sin, lambda a, g: (g * jnp.log(-jnp.abs(a[0])),)), (V,), "x"),
}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_pattern_is_named_on_the_right_leaf(pattern):
    f, args, leaf = PATTERNS[pattern]
    report = check.check_grads(f, args)
    assert failed(report) == [(leaf, pattern)], report
    assert report.failures[0].worst, "worst entries listed"


def test_the_constant_factor_is_named_as_a_fraction():
    assert check.diagnosis.name_factor(8.0) == "8"
    assert check.diagnosis.name_factor(0.125) == "1/8"
    assert check.diagnosis.name_factor(-1.5) == "-3/2"
    assert check.diagnosis.name_factor(1.0001) == "1.0001"
    report = check.check_grads(*PATTERNS["factor"][:2])
    assert "yours = 16 × reference" in report.failures[0].text  # a mean taken as a sum


def test_an_off_by_one_entry_is_named_with_its_index():
    def grad(x):
        return (2 * x).at[5].set(2 * x[6])

    report = check.check_grads(lambda x: jnp.sum(x**2), (V,), grad_fn=grad)
    (row,) = report.failures
    assert row.pattern == "entries" and row.text == "1 of 8 entries wrong"
    assert row.worst[0][0] == (5,)
    assert row.worst[0][1] == pytest.approx(2 * float(V[6]))


def test_a_function_nan_at_the_point_fails_naming_where():
    report = check.check_grads(lambda x: jnp.log(x), (jnp.array([1.0, -1.0, 2.0]),))
    assert report.verdict == "fail"
    assert report.rows[0].pattern == "nan"
    assert "nan at out[1]" in report.rows[0].text


def test_the_report_reads_as_a_table():
    text = str(check.check_grads(*PATTERNS["sign"][:2]))
    lines = text.splitlines()
    assert lines[0] == "check_grads: fail"
    assert any(line.startswith("arg") and "verdict" in line for line in lines)
    assert any("FAIL  wrong sign: yours = -1 × reference" in line for line in lines)
    assert "bound: the reference's own error" in text


# --------------------------------------------------------------------------- kinks


@pytest.mark.parametrize(
    "f, x",
    [
        (jnp.max, [1.0, 3.0, 3.0, 0.5]),  # a tie
        (jnp.abs, [0.0, 1.0, -2.0]),
        (jax.nn.relu, [0.0] * 40),  # fast mode: every probe straddles the kink
        (lambda x: jnp.sum(jax.nn.relu(x - 0.5)), [0.5, 0.5 + 1e-7, 2.0]),
    ],
)
def test_no_false_alarm_at_a_kink(f, x):
    report = check.check_grads(f, (jnp.asarray(x),))
    assert report.verdict == "ok", report
    assert any("moved by 2.5e-03" in n for n in report.notes)


def test_a_wrong_slope_at_a_kink_is_still_caught():
    f = jvp_rule(
        lambda x: jnp.where(x > 0, x, 0.1 * x), lambda a, t: jnp.where(a[0] > 0, 1.0, 0.2) * t[0]
    )
    report = check.check_grads(f, (jnp.array([0.0, 1.0, -1.0, 0.0]),))
    assert report.verdict == "fail"


def test_a_kink_within_reach_is_stepped_inside_not_hidden():
    """x + h straddles relu's kink at 1e-7 from x: the step shrinks, the bound stays tight,
    and a 1e-4 error in the slope still fails."""
    x = jnp.array([1e-7, 1.0, 2.0])
    ok = check.check_grads(lambda x: jnp.sum(jax.nn.relu(x)), (x,))
    assert ok.verdict == "ok" and ok.rows[0].bound < 1e-6 and not ok.notes
    bad = check.check_grads(
        lambda x: jnp.sum(jax.nn.relu(x)), (x,), grad_fn=lambda x: (x > 0) * (1 + 1e-4)
    )
    assert failed(bad) == [("x", "factor")]


# --------------------------------------------------------------------------- order 2


def test_order_2_catches_stop_gradient_in_a_backward_pass():
    def bwd(a, g):
        x = a[0]
        return (g * (jnp.sin(x) + x * jnp.cos(jax.lax.stop_gradient(x))),)

    f = vjp_rule(lambda x: x * jnp.sin(x), bwd)
    assert check.check_grads(f, (V,), order=1).verdict == "ok"
    report = check.check_grads(f, (V,), order=2)
    assert {r.order for r in report.failures} == {2}
    assert {r.mode for r in report.failures} == {"fwd∘rev", "rev∘rev"}


def test_order_2_of_a_gradient_function():
    def f(x):
        return jnp.sum(jnp.log(jnp.cosh(x)))

    assert check.check_grads(f, (V,), 2, grad_fn=jnp.tanh).verdict == "ok"
    bad = check.check_grads(f, (V,), 2, grad_fn=lambda x: jnp.tanh(jax.lax.stop_gradient(x)))
    assert {(r.order, r.mode) for r in bad.failures} == {(2, "fwd∘grad_fn"), (2, "rev∘grad_fn")}


# --------------------------------------------------------------------------- fast mode


def test_fast_mode_catches_a_one_percent_bug_in_a_small_leaf_beside_a_large_one():
    W = jnp.asarray(RNG.normal(size=(64, 64)) / 8, jnp.float32)
    x = jnp.asarray(RNG.normal(size=(4, 64)), jnp.float32)

    def f(params):
        return jnp.mean(jnp.tanh(x @ params["W"] + params["b"][None, :]) ** 2)

    def grad(params):
        g = jax.grad(f)(params)
        return {"W": g["W"], "b": 1.01 * g["b"]}

    report = check.check_grads(f, ({"W": W, "b": V[:1] * jnp.ones(64)},), grad_fn=grad)
    assert "fast mode: 3 random probes per block" in report.header[1]
    assert failed(report) == [("params['b']", "factor")]


def test_miss_chance_matches_a_monte_carlo_estimate():
    z = np.random.default_rng(0).standard_normal((2, 400_000))
    tau = 0.05
    empirical = np.mean(np.abs(z[0] * z[1]) <= tau)
    assert probes.miss_chance(tau, 1.0, 1) == pytest.approx(empirical, rel=0.03)
    assert probes.miss_chance(tau, 1.0, 3) == pytest.approx(empirical**3, rel=0.1)
    rho = probes.caught_above(1e-8, 3)
    assert probes.miss_chance(1e-8, rho, 3) == pytest.approx(probes.MISS, rel=1e-3)


def test_the_plan_chooses_full_or_fast_by_size():
    assert probes.choose([16], [1], "auto", None, 0).full
    assert not probes.choose([17], [1], "auto", None, 0).full
    assert not probes.choose([4], [64], "auto", None, 0).full
    assert probes.choose([4096], [1], "full", None, 0).full
    with pytest.raises(InputError, match="unknown mode"):
        probes.choose([1], [1], "quick", None, 0)


# --------------------------------------------------------------------------- the reference


@pytest.mark.parametrize(
    "f, df", [(jnp.sin, jnp.cos), (jnp.exp, jnp.exp), (lambda x: x**5, lambda x: 5 * x**4)]
)
def test_the_error_estimate_covers_the_true_error(f, df, x64):
    x = jnp.asarray([0.3, -1.2, 2.5])
    dirs = Directions((3,), index=np.arange(3), scale=np.maximum(1, np.abs(np.asarray(x))))
    est = reference.finite_differences(lambda xs: [f(xs[0])], [x], 0, dirs, [np.asarray(f(x))])
    exact = np.diag(np.asarray(df(x))) * dirs.scale[:, None]
    assert np.all(np.abs(est.value[0] - exact) <= 3 * est.error[0] + 1e-15)
    assert np.max(np.abs(est.value[0] - exact) / np.abs(exact).max()) < 1e-9


def test_a_function_that_casts_to_float32_is_checked_in_float32():
    def f(x):
        return jnp.sin(x.astype(jnp.float32))

    report = check.check_grads(f, (V,))
    assert report.verdict != "fail", report
    assert any("no float64 reference" in n for n in report.notes)
    assert "(f does not allow float64)" in report.header[0]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: check.check_grads("sin", (V,)), "f must be callable"),
        (lambda: check.check_grads(jnp.sin, [V]), "args must be a tuple"),
        (lambda: check.check_grads(jnp.sin, V), "args must be a tuple"),
        (lambda: check.check_grads(jnp.sin, (jnp.ones(0),)), "x is empty"),
        (lambda: check.check_grads(jnp.sin, (jnp.array([1.0, jnp.nan]),)), "x holds nan"),
        (lambda: check.check_grads(jnp.sin, (jnp.ones(2) * 1j,)), "complex"),
        (lambda: check.check_grads(jnp.sin, (3,)), "no floating-point array"),
        (lambda: check.check_grads(jnp.sin, (V,), order=3), "order must be 1 or 2"),
        (lambda: check.check_grads(jnp.sin, (V,), modes=("sideways",)), "modes must be"),
        (
            lambda: check.check_grads(lambda x: jnp.sum(x**2), (V,), grad_fn=lambda x: x[:3]),
            r"grad_fn returned shape \(3,\) for x, expected \(8,\)",
        ),
        (lambda: check.check_grads(jnp.sin, (V,), grad_fn=jnp.cos), "one scalar"),
        (lambda: check.check_grads(lambda x: x.reshape(3), (V,)), r"f\(\*args\) raised"),
    ],
)
def test_bad_input_is_one_line(call, message):
    with pytest.raises(InputError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_the_readme_example_prints_the_report_shown(capsys):
    """README's "Check your own backward pass": the code, run, prints the report verbatim."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Check your own backward pass") :]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    shown = re.findall(r"prints\n\n```\n(.*?)```", section, re.S)[0]
    with jax.numpy_rank_promotion("allow"):  # the example adds b without [None, :]
        exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == shown
