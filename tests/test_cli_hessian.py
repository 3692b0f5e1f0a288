"""`jaxcalc hessian`: the spectrum at a checkpoint, sharpness under gradient descent, and
bad input (one line, exit 2; exit 1 for a missing or broken checkpoint; nothing written)."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from test_training import fake_data

from jaxcalc import data, hessian, training
from jaxcalc.cli import main
from jaxcalc.data import Data

TINY = {"hidden": 8, "ema": 0.9, "label_smoothing": 0.1}


def _fake_data(*args, **kwargs) -> Data:
    """Random 28x28 images whose label is the brightest of 10 bands (no data set needed)."""
    return fake_data(n_train=96, n_val=8, n_test=8)


@pytest.fixture
def fake_mnist(monkeypatch):
    monkeypatch.setattr(data, "load", _fake_data)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A checkpoint of a 784-8-10 network after one (pretend) epoch, with an EMA."""
    cfg = training.default_config("mnist", **TINY)
    state = training.init_state(cfg, training.make_optimizer(cfg, 10), 784, 10)
    state = state._replace(
        avg_params=jax.tree.map(lambda p: 0.5 * p, state.params), step=state.step + 3
    )
    path = tmp_path / "run" / "checkpoint.npz"
    training.save_checkpoint(path, state, cfg, [{"epoch": 1}])
    return path, state, cfg


def test_trained_network_gives_the_evaluated_weights(tiny_checkpoint):
    path, state, cfg = tiny_checkpoint
    params, read_cfg, epochs = hessian.trained_network(path)
    assert read_cfg == cfg and epochs == 1
    want = training.eval_params(state, cfg.ema)  # the EMA, debiased
    for k in want:
        np.testing.assert_array_equal(params[k], want[k])


def test_spectrum_of_a_checkpoint(tiny_checkpoint, fake_mnist, tmp_path, capsys):
    path, _, _ = tiny_checkpoint
    out = tmp_path / "out"
    argv = ["hessian", "--checkpoint", str(path), "--examples", "64", "--top", "2"]
    argv += ["--density", "--ggn", "--runs", "1", "--lanczos-steps", "12"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for word in ("Hessian H", "Gauss-Newton G", "λ2", "mass λ < 0", "1 epochs", "± residual"):
        assert word in printed
    result = json.loads((out / "hessian.json").read_text())
    assert result["sizes"] == [784, 8, 10] and "label smoothing 0.1" in result["loss"]
    for name in ("H", "G"):
        top, bounds = result[name]["top"], result[name]["top_bounds"]
        assert len(top) == 2 and top[0] >= top[1] and result[name]["lanczos_steps"] == 12
        assert len(bounds) == 2 and min(bounds) > 0
        assert f"{top[1]:.6g} ± {bounds[1]:.1g}" in printed
        grid, values = np.asarray(result[name]["density"]["grid"]), result[name]["density"]
        assert np.trapezoid(values["values"], grid) == pytest.approx(1.0, abs=1e-3)
    assert result["G"]["density"]["negative_mass"] == pytest.approx(0.0, abs=1e-6)  # G ⪰ 0
    assert (out / "density.png").stat().st_size > 0 and (out / "saliency.png").stat().st_size > 0


def test_tol_continues_lanczos_until_the_bounds_are_within_it(
    tiny_checkpoint, fake_mnist, tmp_path, capsys
):
    path, _, _ = tiny_checkpoint
    argv = ["hessian", "--checkpoint", str(path), "--examples", "32", "--top", "2"]
    assert main([*argv, "--tol", "1e-4", "--out", str(tmp_path / "a")]) == 0
    result = json.loads((tmp_path / "a" / "hessian.json").read_text())["H"]
    assert max(result["top_bounds"]) <= 1e-4 and result["lanczos_steps"] >= 20
    capsys.readouterr()
    assert main([*argv, "--tol", "1e-12", "--lanczos-steps", "12", "--out", str(tmp_path)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "after 12 steps (the cap)" in errors[0]
    assert "> tol 1e-12" in errors[0] and not (tmp_path / "hessian.json").exists()


def test_sharpness_run(fake_mnist, tmp_path, capsys):
    out = tmp_path / "sharp"
    argv = ["hessian", "--sharpness", "--lr", "0.5", "4", "--examples", "48", "--steps", "4"]
    argv += ["--every", "2", "--hidden", "6", "--lanczos-steps", "6", "--loss", "mse"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "λ/(2/η) last half" in capsys.readouterr().out
    result = json.loads((out / "sharpness.json").read_text())
    assert [r["lr"] for r in result["runs"]] == [0.5, 4.0]
    first = result["runs"][0]
    assert first["steps"] == [0, 2, 4] and len(first["loss"]) == 4 and first["threshold"] == 4.0
    summary = first["summary"]
    assert summary["initial"] == first["sharpness"][0] > 0
    assert summary["least"] == min(first["sharpness"]) and summary["least_at"] in first["steps"]
    assert (out / "sharpness.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["--sharpness"], 2, "--sharpness needs --lr"),
        (["--lr", "0.1"], 2, "--lr need --sharpness"),
        (["--sharpness", "--lr", "0.1", "--trace", "--top", "3"], 2, "--top, --trace belong"),
        (["--sharpness", "--lr", "0.1", "--tol", "1e-3"], 2, "--tol belong"),
        (["--sharpness", "--lr", "0.1", "--steps", "100", "--every", "30"], 2, "multiple"),
        (["--top", "5", "--lanczos-steps", "3"], 2, "fewer than --top 5"),
        (["--checkpoint", "{missing}"], 1, "no such checkpoint"),
        (["--checkpoint", "{broken}"], 1, "not a readable checkpoint"),
        (["--checkpoint", "{other}"], 2, "another architecture"),
        (["--checkpoint", "{config}"], 1, "config is not one of jaxcalc train's"),
        (["--out", "{file}"], 2, "is a file, not a folder"),
        (["--seed", str(2**32)], 2, "--seed must be below 2**32"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(argv, code, says, tmp_path, capsys):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    cfg = training.default_config("mnist", hidden=8)
    other = training.init_state(
        training.default_config("mnist", hidden=16), training.make_optimizer(cfg, 1), 784, 10
    )
    training.save_checkpoint(tmp_path / "other.npz", other, cfg, [])  # says 8, holds 16
    np.savez(tmp_path / "config.npz", config=np.array('{"hiden": 3}'), history=np.array("[]"))
    (tmp_path / "file").write_text("x")
    paths = {"missing": tmp_path / "nope.npz", "broken": broken, "other": tmp_path / "other.npz"}
    paths.update(config=tmp_path / "config.npz", file=tmp_path / "file")
    argv = [a.format(**paths) for a in argv]
    out = tmp_path / "out"
    if "--out" not in argv:
        argv += ["--out", str(out)]
    assert main(["hessian", *argv]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err
    assert not out.exists()


def test_bad_numbers_are_refused_while_parsing(capsys):
    for argv in (["--top", "0"], ["--lr", "-1"], ["--examples", "x"], ["--tol", "inf"]):
        with pytest.raises(SystemExit) as exc:
            main(["hessian", *argv])
        assert exc.value.code == 2
    assert "expected a positive integer <= 1000, got '0'" in capsys.readouterr().err


def test_summarise_sees_the_dip_and_the_return():
    run = {"threshold": 10.0, "steps": [0, 10, 20, 30, 40]}
    run["sharpness"] = [14.0, 9.0, 9.8, 10.2, 10.1]  # a start above 2/η, a dip, the return
    s = hessian.summarise(run)
    assert s["least"] == 9.0 and s["least_at"] == 10 and s["reached_at"] == 20  # 9.8 >= 9.5
    assert s["late_mean_ratio"] == pytest.approx((0.98 + 1.02 + 1.01) / 3)  # steps >= 20
    assert s["late_max_ratio"] == pytest.approx(1.02)
    assert hessian.summarise({**run, "threshold": 20.0})["reached_at"] is None


def test_spectrum_table_with_a_trace():
    """(`--trace` itself: `tests/test_curvature.py`; its row of the table here.)"""
    from jaxcalc.cli.hessian import spectrum_table

    info = {"network": "n", "sizes": [784, 8, 10], "activation": "relu", "data": "d"}
    info.update(loss="cross-entropy", loss_value=0.5, accuracy=0.9)
    one = {"top": [2.0, 1.0], "top_bounds": [3e-4, 2e-3], "lanczos_steps": 20, "top_seconds": 1.0}
    one["trace"] = {"estimate": 41.29, "stderr": 1.51}
    text = spectrum_table(info, {"H": one, "G": {**one, "top": [1.9, 0.9]}})
    assert "41.29 ± 1.5" in text and "1.9 ± 0.0003" in text and "± 1 standard error" in text
    assert "1 ± 0.002" in text and "20, 1.00 s" in text
