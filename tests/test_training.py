"""The training loop: manual vs autodiff, bitwise resume, divergence, metrics, the CLI.

Most tests train a tiny network for an epoch on random images (fast, no data set
needed); the `slow` one trains on the real MNIST through `jaxcalc train`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from jaxcalc import augment, optim, training
from jaxcalc.cli import Terminated, main
from jaxcalc.data import Data
from jaxcalc.plots.training import FIGURES
from jaxcalc.training import checkpoint
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
    result = training.fit(tiny(deskew=True, epochs=1), tmp_path, data=data, progress=False)
    for split in ("train_images", "val_images", "test_images"):
        expected = np.asarray(augment.deskew(getattr(data, split)))
        np.testing.assert_array_equal(getattr(result.data, split), expected)
    assert result.metrics["deskew"] is True and result.metrics["preprocess_seconds"] > 0


@pytest.fixture(scope="module")
def data() -> Data:
    return fake_data()


def tiny(**overrides) -> training.Config:
    fields = dict(
        hidden=16,
        epochs=2,
        batch_size=32,
        augment="shift",
        dropout=0.1,
        ema=0.5,
        label_smoothing=0.1,
    )
    return training.default_config(**{**fields, **overrides})


def leaves(params) -> list[np.ndarray]:
    return [np.asarray(a) for a in jax.tree.leaves(params)]


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory) -> SimpleNamespace:
    """`tiny()` trained for 2 epochs (`full`), and stopped by Ctrl-C after epoch 1 (`stopped`)."""
    base = tmp_path_factory.mktemp("runs")
    full = training.fit(tiny(), base / "full", data=data, progress=False)
    save = checkpoint.save_checkpoint

    def save_then_interrupt(path, state, cfg, history):
        out = save(path, state, cfg, history)
        if len(history) == 1:
            raise KeyboardInterrupt
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(checkpoint, "save_checkpoint", save_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            training.fit(tiny(), base / "stopped", data=data, progress=False)
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
        assert {"loss", "train_running_accuracy", "val_accuracy"} <= set(entry)
    assert metrics["test_accuracy"] == pytest.approx(
        np.mean(runs.full.test_predictions == data.test_labels)
    )
    assert (runs.full_dir / training.CHECKPOINT).is_file()
    assert runs.full.params["W1"].shape == (784, 16)


def test_manual_and_autodiff_agree(data, tmp_path):
    """Same config and seed: the two gradients give the same weights after 8 updates."""
    cfg = dict(epochs=1, optimizer="sgd", lr=0.05, augment="none", ema=0.0)
    results = [
        training.fit(tiny(grad=g, **cfg), tmp_path / g, data=data, progress=False)
        for g in training.GRADS
    ]
    for a, b in zip(leaves(results[0].params), leaves(results[1].params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    initial = training.init_state(tiny(), training.make_optimizer(tiny(), 1), 784, 10).params
    assert np.abs(results[0].params["W1"] - initial["W1"]).max() > 1e-4  # it did train


def test_resume_is_bitwise(runs, data, tmp_path):
    folder = stopped_copy(runs, tmp_path / "run")
    assert not (folder / "metrics.json").exists()  # Ctrl-C after epoch 1
    resumed = training.fit(tiny(), folder, data=data, resume=True, progress=False)
    for a, b in zip(leaves(runs.full.params), leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert without_seconds(resumed.metrics["history"]) == without_seconds(
        runs.full.metrics["history"]
    )


def test_resume_needs_same_options_and_a_checkpoint(runs, data, tmp_path):
    with pytest.raises(InputError, match="no checkpoint"):
        training.fit(tiny(), tmp_path, data=data, resume=True, progress=False)
    folder = stopped_copy(runs, tmp_path / "run")
    with pytest.raises(InputError, match=r"other options \(hidden 16 -> 8\)"):
        training.fit(tiny(hidden=8), folder, data=data, resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(runs, data, tmp_path):
    path = stopped_copy(runs, tmp_path / "run") / training.CHECKPOINT
    # Blow up W1 of the saved state: epoch 2 overflows to inf, then NaN.
    with np.load(path) as f:
        arrays = dict(f)
    arrays["leaf_0"] = arrays["leaf_0"] * np.float32(1e38)
    np.savez(path, **arrays)
    before = path.read_bytes()
    with pytest.raises(training.Diverged, match="in epoch 2 .*checkpoint of epoch 1.*smaller"):
        training.fit(tiny(), path.parent, data=data, resume=True, progress=False)
    assert path.read_bytes() == before and not (path.parent / "metrics.json").exists()


def test_nan_in_first_epoch(data, tmp_path):
    cfg = tiny(optimizer="sgd", lr=1e30, schedule="constant", augment="none", dropout=0.0,
               weight_decay=0.0)  # fmt: skip
    with pytest.raises(training.Diverged, match="in epoch 1 .*no checkpoint.*--lr 1e\\+30"):
        training.fit(cfg, tmp_path, data=data, progress=False)
    assert not (tmp_path / training.CHECKPOINT).exists()


# --------------------------------------------------------------------------- the step's parts


def test_the_debiased_average_of_a_constant_theta_is_theta_from_step_1():
    """The weights evaluated (`eval_params`) after t steps that leave θ alone are θ, for
    every t ≥ 1: the average starts at 0, and its debias undoes exactly that start."""
    cfg = tiny(ema=0.9, augment="none", dropout=0.0, label_smoothing=0.0)
    still = optim.scale(0.0)  # updates 0 · g: θ stays what it is
    state = training.init_state(cfg, still, 784, 10)
    step = jax.jit(training.make_step(cfg, still, 10))
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (8, 28, 28), dtype=np.uint8))
    labels = jnp.asarray(rng.integers(0, 10, 8).astype(np.int32))
    for t in range(1, 6):
        state, _ = step(state, (images, labels, jax.random.PRNGKey(t)))
        got = training.eval_params(state, cfg.ema)
        for name, theta in state.params.items():
            np.testing.assert_allclose(got[name], theta, rtol=1e-6, atol=1e-7, err_msg=f"t={t}")


@pytest.mark.parametrize("grad", training.GRADS)
def test_the_running_count_is_the_steps_own_right_predictions(data, grad):
    """Each step's `correct` is Σ [argmax z2 = label] of the logits it trained on (distorted
    images, its dropout mask), computed here directly by `mlp.forward`; an epoch's running
    accuracy is their sum over the steps' examples (the last incomplete batch is dropped)."""
    from jaxcalc import mlp
    from jaxcalc.training.preprocess import inputs

    cfg = tiny(grad=grad, dropout=0.3, augment="affine", epochs=1)
    opt = training.make_optimizer(cfg, 8)
    state0 = training.init_state(cfg, opt, 784, 10)
    step = jax.jit(training.make_step(cfg, opt, 10))
    images, labels = jnp.asarray(data.train_images), jnp.asarray(data.train_labels, jnp.int32)
    key = jax.random.PRNGKey(3)
    order, keys = training.step.epoch_order(key, 250, cfg.batch_size)  # 7 steps, 26 rows left
    state, direct, counts = state0, [], []
    for idx, k in zip(order, keys, strict=True):
        k_augment, k_dropout = jax.random.split(k)
        x = inputs(images[idx], cfg.augment, k_augment)
        keep = 1.0 - cfg.dropout
        mask = jax.random.bernoulli(k_dropout, keep, (len(idx), cfg.hidden)) / keep
        z2 = mlp.forward(state.params, x, activation=cfg.activation, hidden_mask=mask)[1].z2
        direct.append(int(jnp.sum(jnp.argmax(z2, axis=1) == labels[idx])))
        state, stats = step(state, (images[idx], labels[idx], k))
        assert stats.correct.dtype == jnp.int32
        counts.append(int(stats.correct))
    assert counts == direct and 0 < sum(direct) < 7 * 32
    epoch = jax.jit(training.make_epoch(training.make_step(cfg, opt, 10), cfg.batch_size))
    _, stats = epoch(state0, images[:250], labels[:250], key)
    assert stats.correct.shape == (7,) and stats.correct.tolist() == direct
    assert training.running_accuracy(stats, cfg.batch_size) == sum(direct) / (7 * 32)


def test_each_epoch_visits_a_new_permutation_of_the_training_set():
    """The batches of an epoch (as `make_epoch` takes them, with the key `fit` gives epoch
    e: fold_in(k_train, e)) cover every example once, in a new order each epoch."""
    n, batch = 60, 12

    def spy(state, batch):  # the "loss" of a step: the labels of its batch
        _, labels, _ = batch
        return state, labels

    epoch = jax.jit(training.make_epoch(spy, batch))
    k_train = training.run_keys(0)[1]
    orders = []
    for e in range(3):
        _, seen = epoch(
            0, jnp.zeros((n, 2, 2), jnp.uint8), jnp.arange(n), jax.random.fold_in(k_train, e)
        )
        assert seen.shape == (n // batch, batch)
        assert sorted(np.asarray(seen).ravel().tolist()) == list(range(n))  # a permutation
        orders.append(np.asarray(seen).ravel())
    for a in range(3):
        for b in range(a):
            assert (orders[a] != orders[b]).mean() > 0.5, (a, b)  # not the same order again


@pytest.mark.parametrize("total", [2, 100, 4280])  # 4280: the default recipe, 214 x 20 updates
@pytest.mark.parametrize("schedule", ["warmup_cosine", "cosine"])
def test_the_schedule_peaks_and_ends_at_the_intended_steps(schedule, total):
    """`jaxcalc train`'s learning rate over `total` updates (`learning_rate`, as
    `make_optimizer` gets it from `fit`: steps per epoch x epochs): warm-up over the first
    3% of the updates to the peak, then cosine to 0 at update `total`, as optax's schedules
    (whose `decay_steps` is the whole length, warm-up included)."""
    cfg = tiny(schedule=schedule, lr=3e-3)
    lr = training.learning_rate(cfg, total)
    warmup = max(1, (3 * total) // 100) if schedule == "warmup_cosine" else 0
    if warmup:
        want = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, total)
    else:
        want = optax.cosine_decay_schedule(cfg.lr, total)
    counts = jnp.arange(total + 3)
    np.testing.assert_allclose(jax.vmap(lr)(counts), jax.vmap(want)(counts), rtol=1e-6, atol=1e-12)
    assert float(lr(warmup)) == pytest.approx(cfg.lr)  # the peak, after the warm-up
    assert all(float(lr(t)) < cfg.lr for t in range(warmup))
    assert float(lr(total - 1)) > 0  # the last update (count total − 1) still moves
    assert float(lr(total)) == 0.0  # the end value, reached just after it


def test_fit_schedules_over_every_update_of_the_run(data, tmp_path, monkeypatch):
    """`fit` gives the schedule the run's length: steps per epoch x epochs."""
    lengths = []

    def make_optimizer(cfg, total_steps):
        lengths.append(total_steps)
        return training.make_optimizer(cfg, total_steps)

    monkeypatch.setattr(training.loop, "make_optimizer", make_optimizer)
    training.fit(tiny(epochs=3), tmp_path, data=data, progress=False)
    assert lengths == [len(data.train_labels) // 32 * 3]


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
        ("lr", 1e39),
        ("weight_decay", 1e3),
        ("epochs", 2**31),
    ],
)
def test_config_rejects_nonsense(field, value):
    with pytest.raises(InputError, match=field):
        dataclasses.replace(training.Config(), **{field: value}).check()


def test_batch_larger_than_data(data, tmp_path):
    with pytest.raises(InputError, match="batch_size 512 exceeds the 256"):
        training.fit(tiny(batch_size=512), tmp_path, data=data, progress=False)


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
    "error, code, says",
    [
        (training.Diverged("loss became nan in epoch 3"), 1, "loss became nan"),
        (KeyboardInterrupt(), 130, "interrupted; no checkpoint was written yet"),
        (Terminated(), 143, "terminated; no checkpoint was written yet"),
    ],
)
def test_cli_diverged_and_interrupted(error, code, says, tmp_path, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("jaxcalc.cli.train.fit", fail)
    assert main(["train", "--out", str(tmp_path)]) == code
    err = capsys.readouterr().err
    assert err.startswith("jaxcalc train:") and err.count("\n") == 1 and says in err


def test_cli_interrupted_after_a_checkpoint_says_resume(runs, tmp_path, capsys, monkeypatch):
    folder = stopped_copy(runs, tmp_path / "run")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("jaxcalc.cli.train.fit", interrupt)
    assert main(["train", "--out", str(folder)]) == 130
    assert f"--resume continues from {folder / training.CHECKPOINT}" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [str(2**32), "99999999999999999999"])
def test_cli_seed_beyond_the_prng_is_one_line(seed, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("jaxcalc.cli.train.fit", lambda *a, **k: pytest.fail("work started"))
    assert main(["train", "--seed", seed, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seed must be below 2**32" in err


def damage(path: Path, how: str) -> None:
    """Break the checkpoint at `path` the way `how` says."""
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "not a zip":
        path.write_bytes(b"not a checkpoint")
    else:
        with np.load(path) as f:
            arrays = dict(f)
        w1 = arrays["leaf_0"]
        arrays["leaf_0"] = w1[:-1] if how == "shape" else np.full_like(w1, np.nan)
        np.savez(path, **arrays)


@pytest.mark.parametrize("how", ["truncated", "not a zip", "shape", "nan"])
def test_damaged_checkpoint_is_one_line_exit_1(how, runs, data, tmp_path, capsys, monkeypatch):
    folder = stopped_copy(runs, tmp_path / "run")
    damage(folder / training.CHECKPOINT, how)
    resume = functools.partial(training.fit, tiny(), data=data, resume=True, progress=False)
    monkeypatch.setattr("jaxcalc.cli.train.fit", lambda cfg, out, **kwargs: resume(out))
    assert main(["train", "--resume", "--out", str(folder), "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(folder / training.CHECKPOINT) in err
    assert "Traceback" not in err and not (folder / "metrics.json").exists()


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
    timings = metrics["timings"]
    parts = "startup load preprocess compile train eval checkpoint figures total".split()
    assert list(timings) == parts and min(timings.values()) >= 0
    assert timings["train"] == metrics["train_seconds"]
    assert timings["total"] >= timings["startup"] + timings["train"] + timings["figures"]
    out = capsys.readouterr().out
    assert "test accuracy" in out and f"{timings['total']:.1f} s in all" in out


# --------------------------------------------------------------------------- the deskew cache


REAL_DESKEW = augment.deskew


@pytest.fixture
def count_deskews(monkeypatch):
    """How often the deskew cache really deskews (a list, one entry per call); the tests
    deskew with `REAL_DESKEW` themselves."""
    from jaxcalc.training import preprocess

    calls = []

    def deskew(images):
        calls.append(len(images))
        return REAL_DESKEW(images)

    monkeypatch.setattr(preprocess.augment, "deskew", deskew)
    return calls


def test_deskew_cache_is_used_and_the_same_bits(data, tmp_path, count_deskews):
    from jaxcalc.training.preprocess import cached_deskew

    images = data.test_images
    want = np.asarray(REAL_DESKEW(images))
    first = cached_deskew(images, tmp_path)
    again = cached_deskew(images, tmp_path)
    assert count_deskews == [64] and len(list(tmp_path.glob("deskew-*.npz"))) == 1
    for got in (first, again):
        assert got.dtype == np.uint8 and np.array_equal(got, want)
    other = images.copy()
    other[0, 0, 0] ^= 1  # one pixel: another key, computed afresh
    cached_deskew(other, tmp_path)
    assert count_deskews == [64, 64] and len(list(tmp_path.glob("deskew-*.npz"))) == 2


@pytest.mark.parametrize("how", ["flipped byte", "truncated", "not a zip", "foreign key", "shape"])
def test_a_damaged_or_stale_deskew_entry_is_recomputed(how, data, tmp_path, count_deskews):
    from jaxcalc.training.preprocess import cache_key, cached_deskew

    images = data.test_images
    want = cached_deskew(images, tmp_path)
    (path,) = tmp_path.glob("deskew-*.npz")
    raw = bytearray(path.read_bytes())
    if how == "flipped byte":
        raw[len(raw) // 2] ^= 0xFF  # inside the images: the zip's CRC-32 no longer matches
        path.write_bytes(raw)
    elif how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "not a zip":
        path.write_bytes(b"deskewed images, honest")
    elif how == "foreign key":  # a good file under the name of other images
        np.savez(path, images=want, key=np.array(cache_key(images[1:])))
    else:
        np.savez(path, images=want[1:], key=np.array(cache_key(images)))
    got = cached_deskew(images, tmp_path)
    assert count_deskews == [64, 64] and np.array_equal(got, want)  # computed again
    assert np.array_equal(cached_deskew(images, tmp_path), want) and len(count_deskews) == 2


def test_deskew_cache_keys_on_the_preprocessing_version(data, tmp_path, count_deskews):
    from jaxcalc.training import preprocess

    preprocess.cached_deskew(data.test_images, tmp_path)
    key = preprocess.cache_key(data.test_images)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(preprocess, "DESKEW_VERSION", preprocess.DESKEW_VERSION + 1)
        assert preprocess.cache_key(data.test_images) != key
        preprocess.cached_deskew(data.test_images, tmp_path)
    assert len(count_deskews) == 2


def test_deskew_cache_keeps_the_most_recent_entries(data, tmp_path, count_deskews, monkeypatch):
    from jaxcalc.training import preprocess

    monkeypatch.setattr(preprocess, "CACHE_ENTRIES", 2)
    batches = [data.test_images[i : i + 8] for i in (0, 8, 16)]
    for images in batches:
        preprocess.cached_deskew(images, tmp_path)
    assert len(list(tmp_path.glob("deskew-*.npz"))) == 2
    preprocess.cached_deskew(batches[2], tmp_path)  # kept
    preprocess.cached_deskew(batches[0], tmp_path)  # removed: computed again
    assert len(count_deskews) == 4


def test_an_unwritable_deskew_cache_only_costs_the_cache(data, tmp_path, count_deskews):
    from jaxcalc.training.preprocess import cached_deskew

    folder = tmp_path / "a file"
    folder.write_text("x")
    got = cached_deskew(data.test_images, folder)
    assert np.array_equal(got, np.asarray(REAL_DESKEW(data.test_images)))
    assert folder.read_text() == "x"


def test_fit_with_a_deskew_cache_gives_the_same_run(data, tmp_path, count_deskews):
    cfg = tiny(deskew=True, epochs=1)
    plain = training.fit(cfg, tmp_path / "plain", data=data, progress=False)
    cache = tmp_path / "cache"
    first = training.fit(cfg, tmp_path / "a", data=data, progress=False, cache=cache)
    second = training.fit(cfg, tmp_path / "b", data=data, progress=False, cache=cache)
    assert len(count_deskews) == 2  # plain and the first; the second read the cache
    for result in (first, second):
        for split in ("train_images", "val_images", "test_images"):
            assert np.array_equal(getattr(result.data, split), getattr(plain.data, split))
        assert without_seconds(result.metrics["history"]) == without_seconds(
            plain.metrics["history"]
        )
        for a, b in zip(leaves(result.params), leaves(plain.params), strict=True):
            np.testing.assert_array_equal(a, b)


def test_fit_draws_the_figures_beside_the_final_evaluation(data, tmp_path):
    result = training.fit(tiny(epochs=1), tmp_path, data=data, progress=False, figures=True)
    for name in FIGURES:
        assert (tmp_path / name).stat().st_size > 1000
    timings = result.metrics["timings"]
    assert list(timings) == list(training.loop.TIMINGS) and timings["figures"] > 0
    assert json.loads((tmp_path / "metrics.json").read_text())["timings"] == timings
    assert (tmp_path / training.CHECKPOINT).is_file()  # the last one, waited for
