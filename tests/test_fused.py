"""The fused Pallas step (`jaxcalc.fused`, `training.fused_epoch`) on a CPU, interpreted.

The same kernels a GPU compiles with Triton, run by the interpreter on tiny shapes chosen to
exercise the padding: 50 inputs (not a multiple of the 16-wide tiles), 40 hidden units (not
a multiple of the hidden block), 24 rows a batch (not a power of 2). Checked: equal to the
XLA manual step (`training.make_step`), both with IEEE float32 products, within a few
hundred float32 unit roundoffs after 10 steps, the padding exactly zero, the in-place
updates declared, the kernels accepted by the Triton lowering (no GPU needed to lower), the
conversion to and from the training state, the switches.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO
from jax import export

from jaxcalc import fused, training
from jaxcalc.cli import main
from jaxcalc.data import Data
from jaxcalc.fused import UNIT_ROUNDOFF, Blocks, Layout, adam, pad_batch
from jaxcalc.training import fused_epoch
from jaxcalc.training.fused_check import XLA_PRECISION, compare
from jaxcalc.validation import InputError

N_IN, HIDDEN, BATCH, CLASSES, STEPS = 50, 40, 24, 10, 10
SHAPE = (5, 10)  # "images" of 50 pixels
#: Small blocks for interpret mode (tiny shapes, every code path exercised), with IEEE float32
#: products, as the XLA step's on a CPU (and on a GPU under `jax.default_matmul_precision`).
TEST_BLOCKS = Blocks(batch=16, k=16, hidden=16, precision="float32")
U = UNIT_ROUNDOFF["float32"]  # 2^-24: the two steps sum their products in different orders
#: The tolerance of `training.fused_check` (32 u), and 16 u absolute for entries near 0.
#: Measured after 10 steps: losses within 4 u, every entry of the state within 4 u absolute.
RTOL, ATOL = 32 * U, 16 * U


def config(**overrides) -> training.Config:
    fields = dict(
        hidden=HIDDEN,
        batch_size=BATCH,
        optimizer="adam",
        lr=1e-2,
        schedule="constant",
        weight_decay=0.0,
        augment="none",
        label_smoothing=0.0,
        ema=0.0,
        deskew=False,
    )
    return training.Config(**{**fields, **overrides}).check()


CONFIGS = {
    "adam": config(),
    "adamw+smoothing+ema+schedule": config(
        optimizer="adamw", weight_decay=1e-3, label_smoothing=0.1, ema=0.9, schedule="cosine"
    ),
    "adam+l2": config(weight_decay=1e-2),
}


def batches(n: int = STEPS, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        images = rng.integers(0, 256, (BATCH, *SHAPE), dtype=np.uint8)
        labels = rng.integers(0, CLASSES, BATCH).astype(np.int32)
        yield jnp.asarray(images), jnp.asarray(labels), jax.random.PRNGKey(i)


@pytest.fixture
def float32_products():
    """XLA's float32 products in IEEE float32 everywhere (`jax_default_matmul_precision`, in
    every thread), as the fused step's with `precision="float32"`: on a GPU XLA's default
    would be TF32."""
    before = jax.config.jax_default_matmul_precision
    jax.config.update("jax_default_matmul_precision", XLA_PRECISION["float32"])
    yield
    jax.config.update("jax_default_matmul_precision", before)


def run_both(cfg: training.Config, layout: Layout):
    """10 steps of the XLA manual step and of the fused step from the same state, the XLA
    step's products at the fused step's precision."""
    opt = training.make_optimizer(cfg, STEPS)
    state = training.init_state(cfg, opt, N_IN, CLASSES)
    xla_step = jax.jit(training.make_step(cfg, opt, CLASSES))
    hyper = fused_epoch.hyper(cfg)
    step = fused.make_fused_step(layout, hyper, smoothing=cfg.label_smoothing, interpret=True)
    coefs = fused.coefficient_table(
        jnp.zeros([], jnp.int32), STEPS, training.learning_rate(cfg, STEPS), hyper
    )

    @jax.jit
    def fused_step(fs, tally, i, images, labels, key):
        source = fused_epoch.batch_inputs(cfg, layout, images, labels, key)
        return step(fs, source, coefs, i, tally)

    fs = fused_epoch.to_fused(state, layout)
    tally = fused.Tally(jnp.zeros(STEPS, jnp.float32), jnp.zeros(STEPS, jnp.int32))
    xla_losses = []
    with jax.default_matmul_precision(XLA_PRECISION[layout.blocks.precision]):
        for i, (images, labels, key) in enumerate(batches()):
            state, stats = xla_step(state, (images, labels, key))
            xla_losses.append(stats.loss)
            fs, tally = fused_step(fs, tally, jnp.array([i], jnp.int32), images, labels, key)
    return state, fs, np.array(xla_losses), np.asarray(tally.losses)


def max_relative_difference(a, b) -> float:
    """max over leaves of max |a − b| / max |b|."""
    return max(
        float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        if y.size and jnp.max(jnp.abs(y)) > 0
    )


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fused_step_equals_the_xla_step_after_10_steps(name):
    cfg = CONFIGS[name]
    layout = Layout(N_IN, HIDDEN, CLASSES, BATCH, TEST_BLOCKS)
    assert (layout.k_pad, layout.h_pad, layout.o_pad, layout.b_pad) == (64, 48, 16, 32)
    xla, fs, xla_losses, fused_losses = run_both(cfg, layout)
    np.testing.assert_allclose(fused_losses, xla_losses, rtol=RTOL, atol=ATOL)
    got = fused_epoch.from_fused(fs, xla, layout, 0)
    for field in ("params", "opt_state", "avg_params"):
        want, have = getattr(xla, field), getattr(got, field)
        assert jax.tree.structure(want) == jax.tree.structure(have), field
        for w, h in zip(jax.tree.leaves(want), jax.tree.leaves(have), strict=True):
            np.testing.assert_allclose(h, w, rtol=RTOL, atol=ATOL, err_msg=f"{name}: {field}")
    losses = float(np.max(np.abs(fused_losses - xla_losses) / np.abs(xla_losses)))
    state = max_relative_difference((got.params, got.opt_state), (xla.params, xla.opt_state))
    print(f"{name}: after {STEPS} steps, losses {losses / U:.1f} u, state {state / U:.1f} u")


def test_padding_stays_exactly_zero():
    cfg = CONFIGS["adamw+smoothing+ema+schedule"]
    layout = Layout(N_IN, HIDDEN, CLASSES, BATCH, TEST_BLOCKS)
    _, fs, _, _ = run_both(cfg, layout)
    true = layout.true_shapes()
    for tree in (fs.params, fs.mu, fs.nu, fs.avg):
        for name, a in tree.items():
            padding = np.ones(a.shape, bool)
            padding[tuple(slice(0, n) for n in true[name])] = False
            assert padding.any() and not np.asarray(a)[padding].any(), name
    real = np.asarray(fs.nu["W1"])[:N_IN, :HIDDEN]
    assert np.count_nonzero(real) > real.size // 2  # the real entries did learn


def pallas_calls(cfg: training.Config, layout: Layout, source: fused.Source) -> list:
    opt = training.make_optimizer(cfg, STEPS)
    fs = fused_epoch.to_fused(training.init_state(cfg, opt, N_IN, CLASSES), layout)
    step = fused.make_fused_step(layout, fused_epoch.hyper(cfg), interpret=True)
    coefs = jnp.zeros((STEPS, adam.N_COEFS), jnp.float32)
    i = jnp.zeros(1, jnp.int32)
    tally = fused.Tally(jnp.zeros(STEPS, jnp.float32), jnp.zeros(STEPS, jnp.int32))
    jaxpr = jax.make_jaxpr(step)(fs, source, coefs, i, tally)
    return [e for e in jaxpr.eqns if e.primitive.name == "pallas_call"]


def _path(origin: str) -> str:
    """An operand's place inside its argument or output: `args[6]['W2'].m` -> `['W2'].m`."""
    return re.sub(r"^(args|outputs)\[\d+\]", "", origin)


@pytest.mark.parametrize("ema", [0.0, 0.9])
@pytest.mark.parametrize("resident", [False, True])
def test_in_place_updates_are_declared(ema, resident):
    """Every array the step updates (the losses and counts, θ, m, v and the average of each
    parameter) is an output aliased to its own input, by name: same place in the tree, same
    shape."""
    layout = Layout(N_IN, HIDDEN, CLASSES, BATCH, TEST_BLOCKS)
    x, y = pad_batch(jnp.zeros((BATCH, N_IN)), jnp.zeros((BATCH,), jnp.int32), layout)
    source = fused.Source(x, y)
    if resident:
        images = jnp.zeros((100, *SHAPE), jnp.uint8)
        order = jnp.zeros((STEPS, BATCH), jnp.int32)
        source = fused.resident(images, jnp.zeros(100, jnp.int32), order, layout)
    calls = pallas_calls(config(ema=ema), layout, source)
    assert [c.params["name"] for c in calls] == ["fused_forward", "fused_head", "fused_update_w1"]
    updated, fresh = {}, {}  # kernel -> where its aliased outputs lie; its other outputs' shapes
    for call in calls:
        name, aliases = call.params["name"], dict(call.params["input_output_aliases"])
        mappings = call.params["grid_mapping"].block_mappings
        ins, outs = mappings[: len(call.invars)], mappings[len(call.invars) :]
        for i, o in aliases.items():
            assert _path(ins[i].origin) == _path(outs[o].origin), (ins[i].origin, outs[o].origin)
            assert call.invars[i].aval.shape == call.outvars[o].aval.shape
        updated[name] = {_path(outs[o].origin) for o in aliases.values()}
        fresh[name] = [
            v.aval.shape for o, v in enumerate(call.outvars) if o not in aliases.values()
        ]
    fields = {".theta", ".m", ".v"} | ({".avg"} if ema else set())
    head = {f"['{name}']{field}" for name in ("W2", "b1", "b2") for field in fields}
    head |= {".losses", ".correct"}  # the epoch's tally
    assert updated == {"fused_forward": set(), "fused_head": head, "fused_update_w1": fields}
    assert fresh["fused_head"] == [(layout.b_pad, layout.h_pad)]  # dL/dz1 alone, for kernel 3
    assert fresh["fused_update_w1"] == []


@pytest.mark.parametrize(
    "hidden, batch, recipe",
    [(512, 128, dict(augment="none")), (1024, 1024, dict(optimizer="adamw", ema=0.998))],
)
def test_epoch_lowers_for_triton_without_a_gpu(hidden, batch, recipe):
    """The GPU's lowering (Pallas -> Triton IR, inside the scan epoch) runs on a CPU: it
    checks the block shapes (powers of 2) and every operation the kernels use."""
    cfg = training.Config(hidden=hidden, batch_size=batch, kernel="fused", **recipe).check()
    steps = 60_000 // batch
    state = training.init_state(cfg, training.make_optimizer(cfg, steps), 784, CLASSES)
    bl = fused.default_blocks(batch)
    epoch = fused_epoch.make_fused_epoch(cfg, steps, CLASSES, blocks=bl, interpret=False, unroll=8)
    images = jax.ShapeDtypeStruct((60_000, 28, 28), jnp.uint8)
    labels = jax.ShapeDtypeStruct((60_000,), jnp.int32)
    triton = "__gpu$xla.gpu.triton"
    exported = export.export(
        jax.jit(epoch, donate_argnums=0),
        platforms=["cuda"],
        disabled_checks=[export.DisabledSafetyCheck.custom_call(triton)],
    )(state, images, labels, jax.random.PRNGKey(0))
    text = exported.mlir_module()
    grids = re.findall(r"grid_x = (\d+) : i32, grid_y = (\d+)", text)
    layout = Layout(784, hidden, CLASSES, batch, bl)
    nb, nh, nk = layout.b_pad // bl.batch, layout.h_pad // bl.hidden, layout.k_pad // bl.k
    assert text.count(f"@{triton}(") == 3
    assert [tuple(map(int, g)) for g in grids] == [(nb, nh), (nh, 1), (nk, nh)]
    group = 4 if cfg.ema else 3
    assert text.count("output_operand_alias<") == 2 + 4 * group  # tally; W2, b1, b2, W1


@pytest.mark.parametrize("augment", ["affine", "none"])
def test_epoch_equals_the_xla_epoch(augment, float32_products):
    """The whole epoch: same batches, distortions, state conversion and counters; with
    distortions XLA makes each batch, without them the kernels gather it (K padded too)."""
    cfg = config(optimizer="adamw", weight_decay=1e-3, label_smoothing=0.1, ema=0.9)
    cfg = dataclasses.replace(cfg, augment=augment, schedule="warmup_cosine", kernel="fused")
    blocks = Blocks(batch=16, k=32, hidden=16, precision="float32")  # 784 inputs padded to 800
    rng = np.random.default_rng(1)
    images = jnp.asarray(rng.integers(0, 256, (3 * BATCH + 5, 28, 28), dtype=np.uint8))
    labels = jnp.asarray(rng.integers(0, CLASSES, len(images)).astype(np.int32))
    opt = training.make_optimizer(cfg, 6)
    state = training.init_state(cfg, opt, 784, CLASSES)
    xla = jax.jit(training.make_epoch(training.make_step(cfg, opt, CLASSES), BATCH))
    epoch = fused_epoch.make_fused_epoch(cfg, 6, CLASSES, blocks=blocks, interpret=True)
    mine = jax.jit(epoch)
    for e in range(2):
        key = jax.random.PRNGKey(e)
        want, want_stats = xla(state, images, labels, key)
        got, got_stats = mine(state, images, labels, key)
        assert jax.tree.structure(got) == jax.tree.structure(want)
        np.testing.assert_allclose(got_stats.loss, want_stats.loss, rtol=RTOL, atol=ATOL)
        np.testing.assert_array_equal(got_stats.correct, want_stats.correct)  # the head's count
        for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
            assert w.dtype == g.dtype
            # Adam divides a gradient by its RMS: where a gradient is ~0 its rounding (a sum
            # in another order) is relatively large, and the step may differ by ~1e-4 lr.
            atol = 1e-4 * float(np.max(np.abs(w))) if w.size else 0
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=max(atol, ATOL))
        state = want
    assert int(state.step) == 6 and int(fused_epoch.adam_state(state.opt_state).count) == 6


def test_state_round_trip_and_optimiser_state():
    layout = Layout(N_IN, HIDDEN, CLASSES, BATCH, TEST_BLOCKS)
    for optimizer, schedule in (("adam", "constant"), ("adamw", "cosine")):
        cfg = config(optimizer=optimizer, ema=0.5, schedule=schedule)
        opt = training.make_optimizer(cfg, STEPS)
        state = training.init_state(cfg, opt, N_IN, CLASSES)
        fs = fused_epoch.to_fused(state, layout)
        assert fs.params["W1"].shape == (64, 48) and fs.params["b2"].shape == (16,)
        back = fused_epoch.from_fused(fs, state, layout, 3)
        assert jax.tree.structure(back) == jax.tree.structure(state)
        for a, b in zip(jax.tree.leaves(back.params), jax.tree.leaves(state.params), strict=True):
            np.testing.assert_array_equal(a, b)
        assert int(back.step) == 3 and int(fused_epoch.adam_state(back.opt_state).count) == 3
        counts = [leaf for leaf in jax.tree.leaves(back.opt_state) if leaf.dtype == jnp.int32]
        assert [int(c) for c in counts] == [3] * (1 + (schedule != "constant"))  # and the lr's
    big = jnp.asarray(jnp.iinfo(jnp.int32).max - 1)
    assert int(fused.advance(big, 5)) == jnp.iinfo(jnp.int32).max  # saturates
    with pytest.raises(InputError, match="Adam optimiser state"):
        fused_epoch.adam_state(training.make_optimizer(config(optimizer="sgd"), 1).init({}))


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(dropout=0.2), "dropout 0.2"),
        (dict(optimizer="sgd"), "optimizer sgd"),
        (dict(activation="tanh"), "activation tanh"),
        (dict(grad="autodiff"), "grad autodiff"),
    ],
)
def test_unsupported_settings_point_to_the_xla_path(change, words):
    with pytest.raises(InputError, match=f"{words}.*--kernel xla"):
        fused_epoch.check_config(config(**change))
    with pytest.raises(InputError, match="2 devices"):
        fused_epoch.check_config(config(), devices=2)


def test_blocks_must_be_powers_of_two(monkeypatch):
    with pytest.raises(InputError, match="power of 2"):
        Blocks(k=48).check()
    assert fused.default_blocks(128) == Blocks()
    assert fused.default_blocks(1024).hidden == 64
    monkeypatch.delenv(fused_epoch.BLOCKS_ENV, raising=False)
    assert fused_epoch.blocks_from_env(1024) == fused.default_blocks(1024)
    monkeypatch.setenv(fused_epoch.BLOCKS_ENV, "64,128,64,8")
    assert fused_epoch.blocks_from_env(1) == Blocks(batch=64, k=128, hidden=64, num_warps=8)
    monkeypatch.setenv(fused_epoch.BLOCKS_ENV, "16,16,16,4,3,bfloat16")
    assert fused_epoch.blocks_from_env(1).precision == "bfloat16"
    monkeypatch.setenv(fused_epoch.BLOCKS_ENV, "64,x")
    with pytest.raises(InputError, match=fused_epoch.BLOCKS_ENV):
        fused_epoch.blocks_from_env(1)


def test_cpu_without_opt_in_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(fused_epoch.INTERPRET_ENV, raising=False)
    with pytest.raises(InputError, match="needs a GPU"):
        fused_epoch.interpret_mode("cpu")
    assert fused_epoch.interpret_mode("gpu") is False
    if jax.default_backend() != "gpu":
        args = ["train", "--kernel", "fused", "--out", str(tmp_path / "o"), "--data-dir", "none"]
        assert main(args) == 2  # before looking for any data
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "needs a GPU" in err and "--kernel xla" in err


def test_a_jax_without_the_triton_backend_is_one_line_and_the_xla_path_runs(
    monkeypatch, capsys, tmp_path
):
    """Pallas may drop or move its Triton backend: `--kernel fused` then says so in one line
    (exit 2, pointing to `--kernel xla`), and `--kernel xla` trains as before."""
    without = f"import sys; sys.modules[{fused.layout.TRITON!r}] = None; "
    imports = subprocess.run(  # a fresh Python: every module of the training run imports
        [sys.executable, "-c", without + "import jaxcalc.cli.train, jaxcalc.bench.training"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert imports.returncode == 0, imports.stderr[-2000:]
    monkeypatch.setitem(sys.modules, fused.layout.TRITON, None)  # `import` of it now fails
    monkeypatch.delenv(fused_epoch.INTERPRET_ENV, raising=False)
    with pytest.raises(InputError, match=r"lacks .*--kernel xla"):
        fused_epoch.interpret_mode("gpu")
    args = ["train", "--kernel", "fused", "--out", str(tmp_path / "o"), "--data-dir", "none"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Triton" in err and "--kernel xla" in err
    monkeypatch.setenv(fused_epoch.INTERPRET_ENV, "1")  # interpreted, the kernels need no Triton
    assert fused_epoch.interpret_mode("cpu") is True
    layout = Layout(N_IN, HIDDEN, CLASSES, BATCH, TEST_BLOCKS)
    x, y = pad_batch(jnp.zeros((BATCH, N_IN)), jnp.zeros((BATCH,), jnp.int32), layout)
    assert len(pallas_calls(config(), layout, fused.Source(x, y))) == 3
    cfg = dict(hidden=8, epochs=1, batch_size=32, deskew=False, val_size=0, augment="none")
    result = training.fit(
        training.Config(**cfg).check(), tmp_path / "xla", data=fake_data(64, 16), progress=False
    )
    assert result.metrics["kernel"] == "xla" and (tmp_path / "xla" / "metrics.json").is_file()


def fake_data(n_train: int, n_test: int) -> Data:
    """Random 28x28 images whose label is the brightest of 10 bands (learnable)."""
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, CLASSES, n).astype(np.uint8)
        images = rng.integers(0, 128, (n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k : 2 * k + 3] += 100
        return images, labels

    return Data("mnist", tuple("0123456789"), *split(n_train), *split(0), *split(n_test))


def test_the_head_counts_right_predictions_of_real_rows_only():
    """`head.correct_predictions` (what kernel 2 writes into the epoch's tally): rows whose
    argmax over the real logit columns is their label; padded rows and columns never count,
    whatever they hold; ties go to the first maximum, as `jnp.argmax`."""
    from jaxcalc.fused.head import correct_predictions

    layout = Layout(N_IN, HIDDEN, CLASSES, BATCH, TEST_BLOCKS)  # 10 of 16 columns, 24 of 32 rows
    rng = np.random.default_rng(0)
    z2 = rng.normal(size=(16, 16)).astype(np.float32)
    z2[:, CLASSES:] = 50.0  # padded columns above every real logit: must not be chosen
    z2[3, :CLASSES] = 1.0  # a tie everywhere: argmax is class 0
    labels = rng.integers(0, CLASSES, 16).astype(np.int32)
    labels[3] = 0
    labels[12] = np.argmax(z2[12, :CLASSES])  # a padded row of the second block, "right"
    hits = np.argmax(z2[:, :CLASSES], axis=1) == labels
    for row0 in (0, 16):  # the second block holds 8 real rows (16..23) and 8 padded ones
        real = row0 + np.arange(16) < BATCH
        got = correct_predictions(jnp.asarray(z2), jnp.asarray(labels), jnp.int32(row0), layout)
        assert got.dtype == jnp.int32 and int(got) == int(np.sum(hits & real)), row0
    assert np.sum(hits[8:]) > 0 and int(got) < np.sum(hits)  # padded rows were right, unseen


def test_fit_with_the_fused_kernel_matches_xla(monkeypatch, tmp_path, float32_products):
    """`jaxcalc train --kernel fused` end to end (interpreted), float32 products as XLA's:
    the same metrics as the XLA step."""
    monkeypatch.setenv(fused_epoch.INTERPRET_ENV, "1")
    monkeypatch.setenv(fused_epoch.BLOCKS_ENV, "32,64,32,4,3,float32")  # the defaults, IEEE
    data = fake_data(n_train=128, n_test=32)
    cfg = dict(hidden=HIDDEN, epochs=2, batch_size=BATCH, ema=0.0, deskew=False, val_size=0)
    results = {
        kernel: training.fit(
            training.Config(**cfg, kernel=kernel).check(),
            tmp_path / kernel,
            data=data,
            progress=False,
        )
        for kernel in training.config.KERNELS
    }
    xla, mine = results["xla"].metrics, results["fused"].metrics
    assert mine["kernel"] == "fused" and xla["kernel"] == "xla"
    assert mine["test_accuracy"] == xla["test_accuracy"]
    for a, b in zip(mine["history"], xla["history"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=RTOL)
        assert a["train_running_accuracy"] == b["train_running_accuracy"]
    saved = json.loads((tmp_path / "fused" / "metrics.json").read_text())
    assert saved["kernel"] == "fused"
    for name, w in results["xla"].params.items():
        np.testing.assert_allclose(results["fused"].params[name], w, rtol=RTOL, atol=ATOL)


def test_gpu_bench_script_is_valid_bash():
    """scripts/gpu_bench.sh (run on a GPU; `SMOKE=1` dry-runs it on a CPU) parses."""
    done = subprocess.run(["bash", "-n", str(REPO / "scripts" / "gpu_bench.sh")])
    assert done.returncode == 0


def test_fused_check_holds_each_precision_to_its_own_tolerance():
    """`training.fused_check.compare` (what scripts/gpu_bench.sh runs on a GPU), interpreted:
    float32 products agree with the float32 XLA step within 32 u of float32; bfloat16
    products within 32 u of bfloat16 but not of float32 (the check tells them apart)."""
    cfg = CONFIGS["adamw+smoothing+ema+schedule"]
    exact = compare(cfg, n_in=N_IN, blocks=TEST_BLOCKS, interpret=True)
    assert exact.ok and exact.gradient_error < 1e-6, exact
    bf16 = compare(cfg, n_in=N_IN, blocks=dataclasses.replace(TEST_BLOCKS, precision="bfloat16"),
                   reference_precision="float32", interpret=True)  # fmt: skip
    assert bf16.ok and bf16.gradient_error > exact.tolerance, bf16
