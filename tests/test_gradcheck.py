"""`jaxcalc gradcheck`: passes on the real backward pass, fails on a planted bug."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from jaxcalc import gradcheck, mlp
from jaxcalc.cli import main


@pytest.fixture
def planted_bug(monkeypatch):
    """The backward pass forgets the hidden activation's derivative (dL/dz1 = dL/da1).

    The jitted checks get a fresh cache, so they retrace the buggy backward pass, and the
    real one's compiled checks stay cached for the other tests.
    """
    monkeypatch.setattr(mlp, "_activation_grad", lambda activation, h1: jnp.ones_like(h1))
    wrapped = gradcheck._gradients.__wrapped__
    fresh = jax.jit(  # a new function object: JAX caches traces per function
        lambda *args, **kwargs: wrapped(*args, **kwargs),
        static_argnames=("activation", "loss", "output", "finite_diff"),
    )
    monkeypatch.setattr(gradcheck, "_gradients", fresh)


def test_cli_passes_and_prints_the_table(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert "27/27 checks passed" in out
    for word in ("W1", "b1", "W2", "b2", "finite diff", "float32", "relu", "identity"):
        assert word in out


def test_cli_exits_1_on_a_planted_bug(planted_bug, capsys):
    assert main(["gradcheck", "--activation", "tanh", "--loss", "cross_entropy"]) == 1
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


@pytest.mark.parametrize(
    "argv", [["--sizes", "0", "3", "2"], ["--activation", "gelu"], ["--batch", "x"]]
)
def test_cli_bad_input_exits_2(argv):
    with pytest.raises(SystemExit) as info:
        main(["gradcheck", *argv])
    assert info.value.code == 2
