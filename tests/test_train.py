"""The training loop: manual vs autodiff, bitwise resume, divergence, metrics, the CLI.

Most tests train a tiny network for an epoch on random images (fast, no data set
needed); the `slow` one trains on the real MNIST through `jaxcalc train`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache

from jaxcalc import augment, train
from jaxcalc.cli import main
from jaxcalc.data import Data
from jaxcalc.plots.training import FIGURES
from jaxcalc.validation import InputError

METRIC_FIELDS = (
    "dataset hidden activation optimizer grad epochs batch_size seed device test_accuracy "
    "train_seconds compile_seconds samples_per_second history"
).split()


def fake_data(n_train: int = 256, n_val: int = 64, n_test: int = 64) -> Data:
    """Random 28x28 uint8 images whose label is the brightest of 10 image bands."""
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        images = rng.integers(0, 128, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k : 2 * k + 3] += 100
        return images, labels

    return Data("mnist", tuple("0123456789"), *split(n_train), *split(n_val), *split(n_test))


@pytest.fixture(scope="module", autouse=True)
def persistent_compilation_cache(tmp_path_factory):
    """A persistent compilation cache: the same config trained again compiles once."""
    old = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax-cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    compilation_cache.reset_cache()
    yield
    jax.config.update("jax_compilation_cache_dir", old[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", old[1])
    compilation_cache.reset_cache()


def test_deskew_applies_to_every_split(data, tmp_path):
    result = train.fit(tiny(deskew=True, epochs=1), tmp_path, data=data, progress=False)
    for split in ("train_images", "val_images", "test_images"):
        expected = np.asarray(augment.deskew(getattr(data, split)))
        np.testing.assert_array_equal(getattr(result.data, split), expected)
    assert result.metrics["deskew"] is True and result.metrics["preprocess_seconds"] > 0


@pytest.fixture(scope="module")
def data() -> Data:
    return fake_data()


def tiny(**overrides) -> train.Config:
    fields = dict(
        hidden=16,
        epochs=2,
        batch_size=32,
        augment="shift",
        dropout=0.1,
        ema=0.5,
        label_smoothing=0.1,
    )
    return train.default_config(**{**fields, **overrides})


def leaves(params) -> list[np.ndarray]:
    return [np.asarray(a) for a in jax.tree.leaves(params)]


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory) -> SimpleNamespace:
    """`tiny()` trained for 2 epochs (`full`), and stopped by Ctrl-C after epoch 1 (`stopped`)."""
    base = tmp_path_factory.mktemp("runs")
    full = train.fit(tiny(), base / "full", data=data, progress=False)
    save = train.save_checkpoint

    def save_then_interrupt(path, state, cfg, history):
        out = save(path, state, cfg, history)
        if len(history) == 1:
            raise KeyboardInterrupt
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(train, "save_checkpoint", save_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            train.fit(tiny(), base / "stopped", data=data, progress=False)
    return SimpleNamespace(full=full, full_dir=base / "full", stopped_dir=base / "stopped")


def stopped_copy(runs, folder: Path) -> Path:
    """A copy of the stopped run's folder (its checkpoint of epoch 1) in `folder`."""
    shutil.copytree(runs.stopped_dir, folder)
    return folder


# --------------------------------------------------------------------------- the library


def test_fit_writes_metrics_and_checkpoint(runs, data):
    metrics = json.loads((runs.full_dir / "metrics.json").read_text())
    assert set(METRIC_FIELDS) <= set(metrics)
    assert metrics["grad"] == "manual" and metrics["epochs"] == 2 and metrics["hidden"] == 16
    assert len(metrics["history"]) == 2
    for entry in metrics["history"]:
        assert {"loss", "train_accuracy", "val_accuracy"} <= set(entry)
    assert metrics["test_accuracy"] == pytest.approx(
        np.mean(runs.full.test_predictions == data.test_labels)
    )
    assert (runs.full_dir / train.CHECKPOINT).is_file()
    assert runs.full.params["W1"].shape == (784, 16)


def test_manual_and_autodiff_agree(data, tmp_path):
    """Same config and seed: the two gradients give the same weights after 8 updates."""
    cfg = dict(epochs=1, optimizer="sgd", lr=0.05, augment="none", ema=0.0)
    results = [
        train.fit(tiny(grad=g, **cfg), tmp_path / g, data=data, progress=False) for g in train.GRADS
    ]
    for a, b in zip(leaves(results[0].params), leaves(results[1].params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    initial = train.init_state(tiny(), train.make_optimizer(tiny(), 1), 784, 10).params
    assert np.abs(results[0].params["W1"] - initial["W1"]).max() > 1e-4  # it did train


def test_resume_is_bitwise(runs, data, tmp_path):
    folder = stopped_copy(runs, tmp_path / "run")
    assert not (folder / "metrics.json").exists()  # Ctrl-C after epoch 1
    resumed = train.fit(tiny(), folder, data=data, resume=True, progress=False)
    for a, b in zip(leaves(runs.full.params), leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert without_seconds(resumed.metrics["history"]) == without_seconds(
        runs.full.metrics["history"]
    )


def test_resume_needs_same_options_and_a_checkpoint(runs, data, tmp_path):
    with pytest.raises(InputError, match="no checkpoint"):
        train.fit(tiny(), tmp_path, data=data, resume=True, progress=False)
    folder = stopped_copy(runs, tmp_path / "run")
    with pytest.raises(InputError, match=r"other options \(hidden 16 -> 8\)"):
        train.fit(tiny(hidden=8), folder, data=data, resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(runs, data, tmp_path):
    path = stopped_copy(runs, tmp_path / "run") / train.CHECKPOINT
    # Blow up W1 of the saved state: epoch 2 overflows to inf, then NaN.
    with np.load(path) as f:
        arrays = dict(f)
    arrays["leaf_0"] = arrays["leaf_0"] * np.float32(1e38)
    np.savez(path, **arrays)
    before = path.read_bytes()
    with pytest.raises(train.Diverged, match="in epoch 2 .*checkpoint of epoch 1.*smaller"):
        train.fit(tiny(), path.parent, data=data, resume=True, progress=False)
    assert path.read_bytes() == before and not (path.parent / "metrics.json").exists()


def test_nan_in_first_epoch(data, tmp_path):
    cfg = tiny(optimizer="sgd", lr=1e30, schedule="constant", augment="none", dropout=0.0)
    with pytest.raises(train.Diverged, match="in epoch 1 .*no checkpoint.*--lr 1e\\+30"):
        train.fit(cfg, tmp_path, data=data, progress=False)
    assert not (tmp_path / train.CHECKPOINT).exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("batch_size", -1),
        ("lr", float("nan")),
        ("lr", 0.0),
        ("dropout", 1.0),
        ("optimizer", "lion"),
        ("activation", "gelu"),
        ("augment", "blur"),
        ("hidden", 2.5),
        ("deskew", 1),
        ("val_fold", -1),
    ],
)
def test_config_rejects_nonsense(field, value):
    with pytest.raises(InputError, match=field):
        dataclasses.replace(train.Config(), **{field: value}).check()


def test_batch_larger_than_data(data, tmp_path):
    with pytest.raises(InputError, match="batch_size 512 exceeds the 256"):
        train.fit(tiny(batch_size=512), tmp_path, data=data, progress=False)


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    "args",
    [
        ["--epochs", "-1"],
        ["--epochs", "0"],
        ["--batch-size", "0"],
        ["--lr", "0"],
        ["--lr", "-0.1"],
        ["--lr", "nan"],
        ["--lr", "inf"],
        ["--optimizer", "lion"],
        ["--activation", "gelu"],
        ["--dropout", "1.5"],
        ["--hidden", "many"],
        ["--dataset", "cifar"],
        ["--devices", "0"],
        ["--num-processes", "0"],
        ["--process-id", "-1"],
        ["--val-fold", "-1"],
    ],
)
def test_cli_bad_options(args, capsys, monkeypatch):
    monkeypatch.setattr("jaxcalc.cli.train.fit", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(SystemExit) as e:
        main(["train", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxcalc train: error:") and err.count("\n") == 1


def test_cli_missing_data(tmp_path, capsys):
    assert main(["train", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "error, code", [(train.Diverged("loss became nan in epoch 3"), 1), (KeyboardInterrupt(), 130)]
)
def test_cli_diverged_and_interrupted(error, code, tmp_path, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("jaxcalc.cli.train.fit", fail)
    assert main(["train", "--out", str(tmp_path)]) == code
    err = capsys.readouterr().err
    assert err.startswith("jaxcalc train:") and err.count("\n") == 1


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--grad",
        "--resume",
        "--augment",
        "--val-size",
        "--val-fold",
        "--label-smoothing",
        "--devices",
    ):
        assert option in out


# --------------------------------------------------------------------------- real MNIST


@pytest.mark.slow
def test_train_real_mnist(mnist_dir, tmp_path, capsys):
    """A small network, one epoch on the real MNIST: > 94% on the test set, figures out."""
    args = [
        "train",
        "--data-dir",
        str(mnist_dir),
        "--out",
        str(tmp_path),
        "--hidden",
        "128",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--lr",
        "2e-3",
        "--augment",
        "none",
    ]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(METRIC_FIELDS) <= set(metrics)
    assert metrics["train_size"] == 55000 and len(metrics["history"]) == 1
    assert metrics["test_accuracy"] > 0.94 and metrics["history"][-1]["val_accuracy"] > 0.94
    for name in FIGURES:
        assert (tmp_path / name).stat().st_size > 1000
    assert "test accuracy" in capsys.readouterr().out
