"""`jaxcalc gradcheck`: passes on the real backward pass, fails on a planted bug."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from jaxcalc import gradcheck, mlp
from jaxcalc.cli import main


def retrace(monkeypatch, name: str) -> None:
    """Swap the jitted `gradcheck.<name>` for a fresh jit of the same function, so that it
    retraces (a planted bug included), and the real one's compiled checks stay cached for the
    other tests."""
    wrapped = getattr(gradcheck, name).__wrapped__
    fresh = jax.jit(  # a new function object: JAX caches traces per function
        lambda *args, **kwargs: wrapped(*args, **kwargs),
        static_argnames=("activation", "loss", "output", "finite_diff"),
    )
    monkeypatch.setattr(gradcheck, name, fresh)


@pytest.fixture
def planted_bug(monkeypatch):
    """The backward pass forgets the hidden activation's derivative (dL/dz1 = dL/da1)."""
    monkeypatch.setattr(mlp.network, "activation_grad", lambda activation, h1: jnp.ones_like(h1))
    retrace(monkeypatch, "_gradients")


def test_cli_passes_and_prints_the_table(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert "84/84 checks passed" in out  # 27 gradients, 45 H v and G v, 12 dz2/dx
    for word in ("W1", "b1", "W2", "b2", "finite diff", "float32", "relu", "identity"):
        assert word in out
    for word in ("H v", "G v", "dz2/dx", "jvp of grad", "jvp/vjp", "jax.jacrev", "jax.jacfwd"):
        assert word in out


def test_cli_exits_1_on_a_planted_bug(planted_bug, capsys):
    argv = ["gradcheck", "--order", "1", "--activation", "tanh", "--loss", "cross_entropy"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    rows = [r for r in out.splitlines() if r.startswith("tanh")]
    assert len(rows) == 3 and all(r.endswith("FAIL") for r in rows)  # every reference
    assert "0/3 checks passed" in out


def test_relative_error_floor():
    zero = {k: jnp.zeros(2) for k in mlp.PARAM_NAMES}
    assert gradcheck.gradient_errors(zero, zero) == dict.fromkeys(mlp.PARAM_NAMES, 0.0)
    assert gradcheck.relative_error(jnp.array([0.0, 1.0]), jnp.array([0.0, 2.0])) == 0.5
    r = {**zero, "W1": jnp.array([1.0, 2.0]), "b1": jnp.array([1e-9, 0.0])}
    a = {**r, "b1": jnp.array([2e-9, 0.0])}
    errors = gradcheck.gradient_errors(a, r)  # b1 is judged on the gradient's scale, 2
    assert errors["b1"] == pytest.approx(5e-10) and errors["W1"] == 0.0
    assert gradcheck.relative_error(a["b1"], r["b1"]) == pytest.approx(0.5)  # bare cs231n
    nan = jnp.array([0.0, jnp.nan])  # a NaN anywhere, either side: NaN, which fails every tolerance
    assert jnp.isnan(gradcheck.relative_error(nan, r["b1"]))
    assert jnp.isnan(gradcheck.relative_error(r["b1"], nan))


@pytest.mark.parametrize(
    "argv", [["--sizes", "0", "3", "2"], ["--activation", "gelu"], ["--batch", "x"]]
)
def test_cli_bad_input_exits_2(argv):
    with pytest.raises(SystemExit) as info:
        main(["gradcheck", *argv])
    assert info.value.code == 2


@pytest.fixture
def dropped_f2(monkeypatch):
    """The R-backward pass forgets the hidden activation's f''(z1) term of R{dz1}."""
    monkeypatch.setattr(mlp.second_order, "_activation_grad2", lambda a, h1: jnp.zeros_like(h1))
    retrace(monkeypatch, "_second_order")


def test_cli_exits_1_on_a_dropped_second_derivative(dropped_f2, capsys):
    argv = ["gradcheck", "--order", "2", "--activation", "tanh", "--loss", "cross_entropy"]
    assert main(argv) == 1
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("tanh")]
    verdicts = {(q, r.split()[-1]) for r in rows for q in ("H v", "G v", "dz2/dx") if q in r}
    assert verdicts == {("H v", "FAIL"), ("G v", "ok"), ("dz2/dx", "ok")}  # G has no f''
    assert sum(r.endswith("FAIL") for r in rows) == 3  # float32, float64, finite differences
