"""`jaxcalc gradcheck`: the MLP table passes on the real derivatives and fails on planted bugs;
`--target` checks a user's function and exits 0, 1 or 2."""

from __future__ import annotations

import re
import textwrap

import jax.numpy as jnp
import pytest

from jaxcalc import gradcheck, mlp
from jaxcalc.cli import main
from jaxcalc.cli.gradcheck import GROUPS, parse_shape


def test_cli_passes_and_prints_the_grouped_table(capsys):
    assert main(["gradcheck", "--activation", "tanh"]) == 0
    out = capsys.readouterr().out
    assert "20/20 checks passed" in out  # 3 losses x 2 references x 3 quantities, dz2/dx x 2
    for heading in GROUPS.values():
        assert heading in out
    for word in ("W1", "b1", "W2", "b2", "finite diff", "autodiff", "bound", "f32", "columns:"):
        assert word in out
    rows = [r for r in out.splitlines() if r.startswith("tanh")]
    assert len(rows) == 20 and all(r.rstrip().endswith("ok") for r in rows)


def test_the_checks_cover_every_array_at_float64_precision():
    (auto, fd) = gradcheck.check_quantity("gradient", "relu", "cross_entropy", "softmax")
    assert (auto.reference, fd.reference) == ("autodiff", "finite diff")
    assert set(auto.errors) == set(mlp.PARAM_NAMES)
    assert auto.max_error < 1e-14 and fd.max_error < 1e-7  # float64, though the net is float32
    assert 0 < auto.f32 < 1e-5  # the float32 run of the hand-written pass


@pytest.fixture
def planted_bug(monkeypatch):
    """The backward pass forgets the hidden activation's derivative (dL/dz1 = dL/da1)."""
    monkeypatch.setattr(mlp.network, "activation_grad", lambda activation, h1: jnp.ones_like(h1))


def test_cli_exits_1_on_a_planted_bug(planted_bug, capsys):
    argv = ["gradcheck", "--order", "1", "--activation", "tanh", "--loss", "cross_entropy"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    rows = [r for r in out.splitlines() if r.startswith("tanh")]
    assert len(rows) == 2 and all("FAIL" in r for r in rows)  # both references
    assert all("W1" in r.split("FAIL")[1] for r in rows)  # the diagnosis names the array
    assert "0/2 checks passed" in out


@pytest.fixture
def dropped_f2(monkeypatch):
    """The R-backward pass forgets the hidden activation's f''(z1) term of R{dz1}."""
    monkeypatch.setattr(mlp.second_order, "_activation_grad2", lambda a, h1: jnp.zeros_like(h1))


def test_cli_exits_1_on_a_dropped_second_derivative(dropped_f2, capsys):
    argv = ["gradcheck", "--order", "2", "--activation", "tanh", "--loss", "cross_entropy"]
    assert main(argv) == 1
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("tanh")]
    assert len(rows) == 6
    verdicts = [(r.split()[1], "FAIL" in r) for r in rows]  # (loss column, failed)
    assert (
        verdicts
        == [("cross_entropy", True)] * 2 + [("cross_entropy", False)] * 2 + [("-", False)] * 2
    )  # H v fails; G v has no f''; dz2/dx neither


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


# --------------------------------------------------------------------------- --target

LAYER = """
import jax, jax.numpy as jnp

@jax.custom_vjp
def layer(x, w):
    return jnp.tanh(x @ w)

def fwd(x, w):
    y = jnp.tanh(x @ w)
    return y, (x, w, y)

def bwd(res, g):
    x, w, y = res
    dz = g * (1 - y**2)
    return dz @ w.T, {sign}(x.T @ dz)

layer.defvjp(fwd, bwd)
"""


@pytest.fixture
def layer_file(tmp_path):
    def write(sign: str = "") -> str:
        path = tmp_path / f"layer{len(sign)}.py"
        path.write_text(LAYER.format(sign=sign))
        return str(path)

    return write


def test_target_file_passes_and_a_planted_sign_fails(layer_file, capsys):
    argv = ["gradcheck", "--target", f"{layer_file()}:layer", "--shapes", "4x6", "6x3"]
    assert main(argv) == 0
    assert "check_grads: ok" in capsys.readouterr().out
    argv = ["gradcheck", "--target", f"{layer_file('-')}:layer", "--shapes", "4x6", "6x3"]
    assert main([*argv, "--order", "2", "--dtype", "float64"]) == 1
    out = capsys.readouterr().out
    assert "wrong sign" in out and "custom_vjp defines reverse mode only" in out


def test_target_module_function(capsys):
    assert main(["gradcheck", "--target", "jax.numpy:tanh", "--shapes", "5"]) == 0
    assert "check_grads: ok" in capsys.readouterr().out


@pytest.mark.parametrize(
    "target, shapes, message",
    [
        ("nonexistent_pkg_xyz:f", ["3"], "no module named"),
        ("jax.numpy:no_such_function", ["3"], "has no"),
        ("jax.numpy:pi", ["3"], "is not a function"),
        ("/nonexistent/file.py:f", ["3"], "no file"),
        ("jax.numpy", ["3"], "package.module:function"),
        ("jax.numpy:tanh", ["8x"], "is not a shape"),
        ("jax.numpy:tanh", ["0x3"], "is not a shape"),
        ("jax.numpy:matmul", ["3"], r"f\(\*args\) raised"),
    ],
)
def test_bad_target_or_shapes_exit_2_in_one_line(target, shapes, message, capsys):
    assert main(["gradcheck", "--target", target, "--shapes", *shapes]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err


def test_a_module_failing_on_import_exits_1(tmp_path, capsys):
    path = tmp_path / "broken.py"
    path.write_text(textwrap.dedent("import jax\nraise RuntimeError('no GPU here')\n"))
    assert main(["gradcheck", "--target", f"{path}:f", "--shapes", "3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("failed on import: RuntimeError: no GPU here")


def test_mlp_flags_do_not_mix_with_target(capsys):
    argv = ["gradcheck", "--target", "jax.numpy:tanh", "--shapes", "3", "--batch", "4"]
    assert main(argv) == 2
    assert "--batch belong to the MLP table" in capsys.readouterr().err


def test_parse_shape():
    assert parse_shape("8x16") == (8, 16)
    assert parse_shape("16") == (16,)
    assert parse_shape("()") == ()
