"""`jaxcalc bench`: FLOP count, the orchestrator on a tiny job, skipped / failed peers, CLI,
scaling over devices (`--devices`, 2 virtual CPU devices in a subprocess).

Benchmarks are programs, not timed tests: nothing here asserts a timing.
"""

from __future__ import annotations

import json
import statistics
import sys

import jax
import pytest

from jaxcalc.bench import hardware, peers
from jaxcalc.bench.harness import IMPLS, BenchConfig
from jaxcalc.bench.report import training_table
from jaxcalc.bench.training import BASELINE, run_bench
from jaxcalc.cli import main
from jaxcalc.validation import InputError

TINY = dict(hidden=16, batch_size=32, epochs=1, train_size=256, synthetic=True, nojit_steps=1)
TINY_ARGS = ["--hidden", "16", "--batch-size", "32", "--epochs", "1", "--train-size", "256"]
TINY_ARGS += ["--peak-size", "128"]


def test_flops_per_sample_matches_a_hand_count():
    # 784-512-10: forward x@W1 and a1@W2, backward dW2, dL/da1 and dW1, 2 FLOPs per MAC.
    macs = 784 * 512 + 512 * 10 + 512 * 10 + 512 * 10 + 784 * 512
    assert hardware.mlp_train_flops_per_sample(784, 512, 10) == 2 * macs == 1_636_352


@pytest.fixture(scope="module")
def tiny_result():
    with pytest.MonkeyPatch.context() as mp:  # the fused kernels interpreted on a CPU
        mp.setenv("JAXCALC_PALLAS_INTERPRET", "1")
        return run_bench(BenchConfig(**TINY, matmul_size=128))


def test_every_implementation_reports_positive_numbers(tiny_result):
    assert [r.impl for r in tiny_result.rows] == list(IMPLS)
    for r in tiny_result.rows:
        if r.impl == "torch" and r.status == "skipped":
            continue
        assert r.status == "ok", r.note
        assert r.samples_per_second > 0 and r.fraction_of_peak > 0 and r.vs_baseline > 0
        assert len(r.epoch_seconds) == 1
        assert all(t > 0 for t in r.epoch_seconds)
    assert tiny_result.row("manual-nojit").extrapolated
    for impl in ("manual-scan", "autodiff-scan", "manual-loop", "fused-scan"):
        assert tiny_result.row(impl).compile_seconds > 0
    for impl in ("manual-scan", "autodiff-scan", "fused-scan"):
        assert tiny_result.row(impl).kernels_per_step > 0


def test_fused_scan_is_skipped_off_a_gpu_unless_interpreted(monkeypatch):
    monkeypatch.delenv("JAXCALC_PALLAS_INTERPRET", raising=False)
    if jax.default_backend() == "gpu":
        pytest.skip("a GPU is present")
    res = run_bench(BenchConfig(**{**TINY, "impls": ("fused-scan",)}, matmul_size=128))
    row = res.row("fused-scan")
    assert row.status == "skipped" and "needs a GPU" in row.note
    assert "SKIPPED" in training_table(res)


def test_ratios_and_fractions_follow_from_the_throughputs(tiny_result):
    res = tiny_result
    base = res.row(BASELINE).samples_per_second
    assert res.train_size == 256 and res.flops_per_sample == 4 * 784 * 16 + 6 * 16 * 10
    for r in res.rows:
        if r.samples_per_second is None:
            continue
        steps = res.train_size // res.config["batch_size"]
        median = statistics.median(r.epoch_seconds)
        assert r.samples_per_second == pytest.approx(steps * 32 / median)
        assert r.vs_baseline == pytest.approx(r.samples_per_second / base)
        assert r.fraction_of_peak == pytest.approx(
            res.flops_per_sample * r.samples_per_second / res.matmul_peak_flops
        )
    assert res.row(BASELINE).vs_baseline == 1.0
    text = training_table(res)
    assert all(impl in text for impl in IMPLS) and "synthetic" in text


def test_implementations_are_timed_epoch_by_epoch_in_turn():
    messages = []
    impls = ("manual-scan", "numpy", "manual-nojit", "autodiff-scan")
    cfg = BenchConfig(**{**TINY, "epochs": 2, "impls": impls}, matmul_size=128)
    res = run_bench(cfg, progress=messages.append)
    epochs = [m.strip().split(" (")[0] for m in messages if ": epoch" in m]
    interleaved = ("manual-scan", "numpy", "autodiff-scan")
    assert epochs == [f"{impl}: epoch {e}/3" for e in (1, 2, 3) for impl in interleaved]
    assert all(len(res.row(impl).epoch_seconds) == 2 for impl in interleaved)
    assert all(r.samples_per_second > 0 for r in res.rows)
    assert res.row("numpy").peak_memory_bytes is not None


def test_missing_peer_is_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    res = run_bench(BenchConfig(**{**TINY, "impls": ("torch", "numpy")}, matmul_size=128))
    torch_row = res.row("torch")
    assert torch_row.status == "skipped" and "not installed" in torch_row.note
    assert torch_row.samples_per_second is None
    assert res.row("numpy").status == "ok"
    assert "SKIPPED" in training_table(res)


def test_failing_peer_is_reported_and_the_rest_still_runs(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory\nsecond line")

    monkeypatch.setattr(peers, "numpy_trainer", broken)
    res = run_bench(BenchConfig(**{**TINY, "impls": ("numpy", "manual-loop")}, matmul_size=128))
    row = res.row("numpy")
    assert row.status == "failed" and row.note == "RuntimeError: out of memory"
    assert row.samples_per_second is None and row.vs_baseline is None
    assert res.row("manual-loop").status == "ok"
    assert res.row("manual-loop").vs_baseline is None  # no baseline in this run
    text = training_table(res)
    assert "FAILED: RuntimeError: out of memory" in text and "manual-loop" in text


def test_cli_writes_json_and_png(tmp_path, capsys):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    argv = ["bench", "--impl", "numpy", "--impl", "torch", "--synthetic", *TINY_ARGS]
    assert main([*argv, "--json", str(out), "--plot", str(png)]) == 0
    data = json.loads(out.read_text())
    assert [r["impl"] for r in data["rows"]] == ["numpy", "torch"]
    assert data["rows"][0]["samples_per_second"] > 0
    assert data["config"]["hidden"] == 16 and "synthetic" in data["data"]
    assert png.stat().st_size > 0
    assert "numpy" in capsys.readouterr().out


def test_gradient_cost_mode_extrapolates_past_the_cap(tmp_path, capsys):
    out, png = tmp_path / "cost.json", tmp_path / "cost.png"
    argv = ["bench", "--gradient-cost", "--sizes", "100", "10", "--max-fd-seconds", "1e-12"]
    assert main([*argv, "--json", str(out), "--plot", str(png)]) == 0
    points = json.loads(out.read_text())["points"]
    assert [p["n"] for p in points] == [10, 100]
    assert all(p["reverse_seconds"] > 0 and p["finite_difference_seconds"] > 0 for p in points)
    assert [p["finite_difference_measured"] for p in points] == [True, False]
    assert png.stat().st_size > 0 and "reverse/f" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["--impl", "bogus"],
        ["--device", "tpu"],
        ["--hidden", "0"],
        ["--batch-size", "-1"],
        ["--epochs", "0"],
        ["--train-size", "0"],
        ["--gradient-cost", "--sizes", "0"],
        ["--unroll", "0"],
        ["--devices", "0"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err


def test_batch_larger_than_the_data_is_exit_2(capsys):
    argv = ["bench", "--impl", "numpy", "--synthetic", "--train-size", "16", "--no-plot"]
    assert main(argv) == 2
    assert "batch_size 128 exceeds" in capsys.readouterr().err


@pytest.mark.skipif(bool(jax.devices()[0].platform == "gpu"), reason="a GPU is present")
def test_gpu_without_a_gpu_is_exit_2(capsys):
    assert main(["bench", "--device", "gpu", "--no-plot"]) == 2
    assert "no gpu device" in capsys.readouterr().err


def test_config_check_names_the_bad_value():
    with pytest.raises(InputError, match="implementation"):
        BenchConfig(impls=("nope",)).check()
    with pytest.raises(InputError, match="hidden"):
        BenchConfig(hidden=0).check()


def test_devices_scaling_in_a_subprocess_with_virtual_devices(tmp_path, capsys):
    """One CPU device here: `--devices 1 2` reruns itself with 2 virtual devices."""
    out, png = tmp_path / "scaling.json", tmp_path / "scaling.png"
    argv = ["bench", "--devices", "2", "1", "--synthetic", "--unroll", "2", *TINY_ARGS]
    assert main([*argv, "--json", str(out), "--plot", str(png)]) == 0
    data = json.loads(out.read_text())
    assert data["devices"] == [1, 2] and data["virtual"] and data["config"]["unroll"] == 2
    rows = data["rows"]
    assert [(r["impl"], r["devices"], r["status"]) for r in rows] == [
        ("manual-scan", 1, "ok"),
        ("manual-scan", 2, "ok"),
    ]
    one, two = rows
    assert all(r["samples_per_second"] > 0 and r["compile_seconds"] > 0 for r in rows)
    assert one["speedup"] == 1.0 and one["efficiency"] == 1.0
    ratio = two["samples_per_second"] / one["samples_per_second"]
    assert two["speedup"] == pytest.approx(ratio)
    assert two["efficiency"] == pytest.approx(ratio / 2)
    assert png.stat().st_size > 0
    text = capsys.readouterr().out
    assert "manual-scan" in text and "virtual and share the same" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--devices", "1", "3", "--batch-size", "32"], "batch_size 32 is not divisible by"),
        (["--devices", "2", "--impl", "numpy"], "scan epochs"),
        (["--devices", "2", "--gradient-cost"], "choose one"),
    ],
)
def test_devices_bad_input_is_exit_2_before_work(args, message, capsys):
    assert main(["bench", *args, "--synthetic", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
