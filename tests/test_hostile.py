"""Issue 16, case by case: no NaN passes a check, no traceback, no silent nonsense.

Each test is one case of the issue (or of its class): what a hostile user tried, and what
must happen now. The fuzz test (`test_fuzz.py`) tries the classes at random.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import matplotlib.figure
import numpy as np
import pytest
from test_data import idx_bytes

from jaxcalc import calculus, cli, data, descent, gradcheck, losses, mlp, step_size
from jaxcalc.bench import harness, peers, scaling
from jaxcalc.cli import main
from jaxcalc.files import atomic_write, write_json
from jaxcalc.validation import DataError, InputError


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """`jaxcalc …` in-process: (exit status, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, command: str) -> str:
    """The one line of stderr a failure may print (after any progress lines)."""
    lines = err.strip().splitlines()
    assert lines and "Traceback" not in err and "Warning" not in err, err
    assert lines[-1].startswith(f"jaxcalc {command}: error: "), err
    assert sum("error" in line for line in lines) == 1, err
    return lines[-1]


def mnist_like(folder, labels_max: int = 9, n: int = 12):
    """Four gzip IDX files of a tiny MNIST-shaped set (28x28 uint8 images) in `folder`."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, count in zip(data.FILES, (n, n, n // 2, n // 2), strict=True):
        if "images" in stem:
            array = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        else:
            array = rng.integers(0, labels_max + 1, count, dtype=np.uint8)
            array[0] = labels_max
        (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(array)))
    return folder


# --------------------------------------------------------------------------- §1 NaN


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf, -jnp.inf])
def test_check_grad_fails_a_gradient_that_is_not_finite(bad):
    report = calculus.check_grad(lambda x: jnp.sum(x**2), jnp.ones(3), lambda x: jnp.full(3, bad))
    assert report.verdict == "fail" and math.isnan(report.max_error)
    assert "fail" in str(report)


def test_check_grad_fails_whichever_array_holds_the_nan():
    f = lambda p: jnp.sum(p["a"] ** 2) + jnp.sum(p["b"] ** 2)  # noqa: E731
    for bad in ("a", "b"):
        grad = lambda p, bad=bad: {k: 2 * v if k != bad else v * jnp.nan for k, v in p.items()}  # noqa: E731
        report = calculus.check_grad(f, {"a": jnp.ones(2), "b": jnp.ones(3)}, grad)
        assert report.verdict == "fail" and math.isnan(report.max_error), bad
    # a function that is NaN at x makes the numerical side NaN: a failure too
    report = calculus.check_grad(lambda x: jnp.sum(jnp.log(x)), -jnp.ones(2), lambda x: 1 / x)
    assert report.verdict == "fail"


@pytest.mark.parametrize("a, r", [([np.nan], [1.0]), ([1.0], [np.nan]), ([np.inf], [np.inf])])
def test_gradcheck_relative_error_of_a_non_finite_side_is_nan(a, r):
    assert math.isnan(gradcheck.relative_error(np.array(a), np.array(r)))
    assert math.isnan(calculus.relative_error(jnp.array(a), jnp.array(r)))
    errors = {"W1": 0.0, "b1": float("nan"), "W2": 0.0, "b2": 0.0}
    check = gradcheck.Check("relu", "mse", "-", "gradient", "finite diff", errors, 1e-7, None, "ok")
    assert math.isnan(check.max_error)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("label", [3, 200, -1])
def test_out_of_range_labels_give_nan_under_jit(loss, label):
    params = mlp.init_params(jax.random.key(0), (4, 5, 3))
    x = jax.random.normal(jax.random.key(1), (4, 4))
    y = jnp.array([0, 1, label, 2])
    for fn in (mlp.loss_and_grad, mlp.loss_and_grad_autodiff):
        value, grads = jax.jit(fn, static_argnames="loss")(params, x, y, loss=loss)
        assert jnp.isnan(value), fn.__name__
        assert all(jnp.isnan(g).any() for g in grads.values()), fn.__name__
    good, _ = jax.jit(mlp.loss_and_grad)(params, x, jnp.array([0, 1, 2, 2]))
    assert jnp.isfinite(good)
    np.testing.assert_array_equal(losses.one_hot(jnp.array([1, 3]), 3)[0], [0.0, 1.0, 0.0])
    assert jnp.isnan(losses.one_hot(jnp.array([1, 3]), 3)[1]).all()


def test_labels_beyond_the_classes_are_a_data_error(tmp_path, capsys):
    folder = mnist_like(tmp_path / "mnist", labels_max=12)
    with pytest.raises(DataError, match="label 12 is out of range for the 10 classes"):
        data.load("mnist", data_dir=folder, val_size=2)
    code, _, err = run(["train", "--data-dir", str(folder), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "out of range" in one_error_line(err, "train")
    assert not (tmp_path / "o").exists()


def test_descent_refuses_a_bowl_float64_cannot_hold(tmp_path, capsys):
    argv = ["descent", "--out", str(tmp_path / "o"), "--kappa", "1e300", "--surface", "bowl"]
    code, out, err = run(argv, capsys)
    assert code == 2 and "kappa" in one_error_line(err, "descent") and out == ""
    assert not (tmp_path / "o").exists()
    descent.bowl(descent.KAPPA_MAX)  # the largest is fine


def test_a_learning_rate_that_underflows_is_monotone_and_flagged(tmp_path, capsys):
    argv = ["descent", "--out", str(tmp_path), "--lr", "1.0", "0.5", "1e-300"]
    code, out, _ = run([*argv, "--surface", "bowl", "--surface-steps", "5"], capsys)
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert rows["1"].split()[1] == "diverging" and "one step" in rows["0.5"]
    assert rows["1e-300"].split()[1] == "monotone"  # 1 − 2aα < 1, though it rounds to 1
    assert "did not move in 25 steps" in rows["1e-300"] and "float64 spacing" in rows["1e-300"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--x0", "1e200"], "f(x0)"),
        (["--a", "1e-300"], "a (x0 - x*)^2"),
        (["--a", "5e-324"], "1/a"),
        (["--a", "1e300", "--lr", "1e10"], "2 a alpha"),
    ],
)
def test_a_parabola_that_overflows_float64_is_refused(tmp_path, capsys, args, needle):
    code, out, err = run(["descent", "--out", str(tmp_path / "o"), *args], capsys)
    assert code == 2 and needle in one_error_line(err, "descent") and out == ""


def test_descent_reports_an_overflow_of_f_as_divergence():
    f = lambda x: jnp.sum(jnp.exp(x**2))  # noqa: E731
    with jax.enable_x64(True):
        res = descent.descend(f, jnp.array([1.0]), 5.0, 3)  # |x| stays below 1e6, f does not
        assert res.diverged_at == 2 and "x or f(x) overflowed" in res.message
        assert np.isfinite(res.values).all() and np.abs(res.trajectory).max() < 1e6
        with pytest.raises(InputError, match="f\\(x0\\) must be finite"):
            descent.descend(f, jnp.array([30.0]), 0.1, 3)


def test_a_run_that_cannot_move_is_flagged_not_converged():
    res = descent.descend(lambda x: (x - 3.0) ** 2, jnp.float32(1e8), 1e-20, 10)
    assert res.stalled and res.diverged_at is None and "did not move" in res.message
    at_minimum = descent.descend(lambda x: (x - 3.0) ** 2, jnp.float32(3.0), 0.1, 10)
    assert not at_minimum.stalled  # no gradient, nothing to move


@pytest.mark.parametrize("method", ["central", "forward", "backward", "five-point"])
def test_a_step_below_the_float_spacing_is_refused(method):
    with pytest.raises(InputError, match="below the float32 spacing at x = 1"):
        calculus.derivative(jnp.sin, 1.0, h=1e-9, method=method)
    with pytest.raises(InputError, match="below the float32 spacing"):
        calculus.derivative(jnp.sin, 1.0, h=1e-50, method=method)  # h itself rounds to 0
    assert calculus.derivative(jnp.sin, 1.0, h=1e-3, method=method) == pytest.approx(
        math.cos(1.0), abs=1e-3
    )


@pytest.mark.parametrize(
    "fn", [calculus.numerical_gradient, calculus.numerical_jacobian, calculus.numerical_hessian]
)
def test_steps_are_checked_for_every_numerical_derivative(fn):
    f = lambda v: jnp.sum(v**2)  # noqa: E731
    with pytest.raises(InputError, match="spacing"):
        fn(f, jnp.array([1.0, 1e6]), h=1e-3)  # below the spacing at 1e6 (0.0625)
    with pytest.raises(InputError, match="leaves float32"):
        fn(f, jnp.array([1.0, 3.4e38]))  # the default step steps past the largest float32
    assert np.isfinite(fn(f, jnp.array([1.0, 2.0]), h=1e-2)).all()


def test_derivatives_study_suits_any_x_and_flags_steps_below_the_spacing(tmp_path, capsys):
    study = step_size.step_size_study("sin", 1e6)
    assert study.steps[0] == pytest.approx(1e5) and study.steps[-1] == pytest.approx(1e-9)
    assert study.best_step["float64"]["central"] > study.spacing["float64"]
    assert study.errors["float64"]["central"].min() < 1e-6  # a V, not a flat line of |f'|
    code, out, _ = run(["derivatives", "--x", "1e6", "--out", str(tmp_path)], capsys)
    assert code == 0 and "note: in float32, h below 6.2e-02" in out
    assert "float64, h below" not in out  # the float64 sweep stays above its spacing


def test_x_beyond_the_float_type_is_one_line(tmp_path, capsys):
    code, _, err = run(["derivatives", "--x", "1e308", "--out", str(tmp_path)], capsys)
    assert code == 2 and "x must be finite in float32" in one_error_line(err, "derivatives")
    with pytest.raises(InputError, match="finite"):
        calculus.derivative(jnp.sin, 2**2000)


# --------------------------------------------------------------------------- §2 tracebacks


def test_idx_dimensions_past_int64_are_a_data_error(tmp_path, capsys):
    dims = np.array([2**32 - 1] * 3, ">u4").tobytes()  # (2³² − 1)³ > 2⁶³: wrapped in int64
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.parse_idx(bytes([0, 0, 0x08, 3]) + dims + b"\0" * 16)
    folder = mnist_like(tmp_path / "mnist")
    header = bytes([0, 0, 0x08, 3]) + dims
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + b"\0" * 784))
    for argv in (["bench", "--impl", "numpy", "--no-plot"], ["train", "--out", str(tmp_path)]):
        code, _, err = run([*argv, "--data-dir", str(folder)], capsys)
        assert code == 1 and "train-images" in one_error_line(err, argv[0])


TINY_SCALING = ["--synthetic", "--train-size", "64", "--batch-size", "32", "--epochs", "1"]
TINY_SCALING += ["--hidden", "4", "--no-plot"]


def test_a_measurement_subprocess_that_dies_is_one_line(monkeypatch, tmp_path, capsys):
    crash = "import sys; print('progress started', flush=True); sys.exit('MemoryError: boom')"
    monkeypatch.setattr(scaling, "_child_command", lambda request: [sys.executable, "-c", crash])
    json_path = tmp_path / "s.json"
    argv = ["bench", "--devices", "1", "2", *TINY_SCALING, "--json", str(json_path)]
    code, _, err = run(argv, capsys)
    line = one_error_line(err, "bench")
    assert code == 1 and "subprocess failed (exit 1: MemoryError: boom)" in line
    assert not json_path.exists() and os.listdir(tmp_path) == []


def test_a_measurement_subprocess_that_hangs_is_killed(monkeypatch, capsys):
    hang = "import time; time.sleep(60)"
    monkeypatch.setattr(scaling, "_child_command", lambda request: [sys.executable, "-c", hang])
    monkeypatch.setattr(scaling, "SUBPROCESS_TIMEOUT", 1.0)
    start = time.monotonic()
    code, _, err = run(["bench", "--devices", "1", "2", *TINY_SCALING], capsys)
    assert code == 1 and "killed after 1 s" in one_error_line(err, "bench")
    assert time.monotonic() - start < 30


def test_the_measurement_subprocess_exits_when_its_parent_is_gone():
    cfg = harness.BenchConfig(("manual-scan",), hidden=4, batch_size=32, epochs=1, train_size=64)
    config = {**dataclasses.asdict(cfg), "synthetic": True}
    request = {"config": config, "devices": [1], "parent": -1}  # not its parent: gone
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "jaxcalc.bench.scaling", json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "result" not in done.stdout
    assert time.monotonic() - start < 60


# --------------------------------------------------------------------------- §3 faults


def test_sigterm_during_a_write_is_one_line_143_and_leaves_no_temporary(
    monkeypatch, tmp_path, capsys
):
    def savefig(self, f, **kwargs):
        f.write(b"\x89PNG partial")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this returns

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    before = signal.getsignal(signal.SIGTERM)
    code, _, err = run(["derivatives", "--out", str(tmp_path)], capsys)
    assert code == 143 and err.strip() == "jaxcalc derivatives: terminated"
    assert os.listdir(tmp_path) == []  # neither the PNG nor its temporary file
    assert signal.getsignal(signal.SIGTERM) is before  # restored for the caller


def test_sigterm_stops_the_measurement_subprocess(monkeypatch, capsys):
    child = "import os, time; print('progress pid', os.getpid(), flush=True); time.sleep(60)"
    monkeypatch.setattr(scaling, "_child_command", lambda request: [sys.executable, "-c", child])
    pids = []

    def progress(message):
        if message.startswith("pid "):
            pids.append(int(message.split()[1]))
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cli, "progress_to_stderr", progress)
    code, _, err = run(["bench", "--devices", "1", "2", *TINY_SCALING], capsys)
    assert code == 143 and err.strip() == "jaxcalc bench: terminated"
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)  # killed and reaped


def test_a_stale_temporary_file_is_removed_by_the_next_write(tmp_path):
    dead = tmp_path / ".m.json.999999999.abcd1234.tmp"  # beyond any pid_max: not running
    legacy = tmp_path / ".m.json.k2j4h5g6.tmp"  # before the PID was in the name
    alive = tmp_path / f".m.json.{os.getpid()}.zzzz9999.tmp"  # a writer at work
    other = tmp_path / ".other.json.999999999.abcd1234.tmp"  # another target's
    for path in (dead, legacy, alive, other):
        path.write_bytes(b"")
    write_json(tmp_path / "m.json", {"a": 1})
    assert sorted(os.listdir(tmp_path)) == sorted(["m.json", alive.name, other.name])


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_temporary_file_that_cannot_be_made_names_the_target():
    with pytest.raises(OSError) as e:  # /proc takes no new files, even from root
        atomic_write("/proc/jaxcalc-test.json", lambda f: None)
    assert e.value.filename == "/proc/jaxcalc-test.json"


def test_bench_with_every_implementation_failed_is_exit_1_and_writes_nothing(
    monkeypatch, tmp_path, capsys
):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(peers, "numpy_trainer", broken)
    json_path, png = tmp_path / "b.json", tmp_path / "b.png"
    argv = ["bench", "--impl", "numpy", "--synthetic", "--train-size", "64", "--batch-size"]
    argv += ["32", "--epochs", "1", "--hidden", "4", "--peak-size", "16"]
    code, out, err = run([*argv, "--json", str(json_path), "--plot", str(png)], capsys)
    line = one_error_line(err, "bench")
    assert code == 1 and "no implementation produced a result" in line and "out of memory" in line
    assert "FAILED" in out and os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--devices", "1000000", "--batch-size", "1000000"], "devices must be at most 64"),
        (["--devices", "2", "--hidden", "100000000"], "of memory"),
        (["--train-size", "1000000000000"], "of memory"),
        (["--epochs", "1000000000"], "--epochs"),
        (["--peak-size", "1000000"], "--peak-size"),
        (["--unroll", "1000000"], "--unroll"),
        (["--gradient-cost", "--sizes", "100000000000000"], "--sizes"),
    ],
)
def test_bench_sizes_are_checked_against_memory_at_once(args, needle, capsys):
    start = time.monotonic()
    code, _, err = run(["bench", "--synthetic", "--no-plot", *args], capsys)
    assert code == 2 and needle in one_error_line(err, "bench")
    assert time.monotonic() - start < 10


# --------------------------------------------------------------------------- §4 false alarms


def test_gradcheck_relu_at_a_large_batch_passes_and_a_planted_bug_still_fails(monkeypatch):
    """4000 rows: many pre-activations lie within a difference's reach of relu's kink; the
    checker steps inside their distance, so the right backward pass passes, a wrong fails."""

    def verdicts():
        checks = gradcheck.check_quantity(
            "gradient", "relu", "cross_entropy", "softmax", seed=(0, 3), batch=4000
        )
        return [c.verdict for c in checks]

    assert verdicts() == ["ok", "ok"]
    monkeypatch.setattr(mlp.network, "activation_grad", lambda activation, h1: jnp.ones_like(h1))
    assert verdicts() == ["fail", "fail"]


def test_gradcheck_refuses_a_finite_difference_check_that_would_run_for_hours(capsys):
    code, _, err = run(["gradcheck", "--sizes", "6", "300000", "3", "--batch", "100"], capsys)
    assert code == 2 and "too big for the gradient check" in one_error_line(err, "gradcheck")
