"""Every subcommand fed hostile option values (issue 16 §5), in-process and reproducibly.

Two fuzzers of the command line, and a sweep of the library:

- `test_every_checked_option_refuses_what_its_type_refuses`, exhaustive: every option of
  every subcommand (read from the parser, so a new option or subcommand such as `hessian`
  is fuzzed at once) gets each value its argument type must refuse (NaN, inf, negative,
  zero, non-numeric, empty, past the cap): exit 2, in one line naming the option.
- `test_hostile_values_never_crash`, hypothesis with `derandomize=True` (the same examples
  on every run): per subcommand, a small fast run with one or two of its options replaced
  by values that pass the argument types but are hostile (huge, tiny, zero, negative, files
  where folders go, unwritable or missing paths, broken data sets).

What must hold (`check`): exit 0, 1 or 2; no traceback or warning on stderr, and a failure
is one `jaxcalc …: error:` line; nothing partial or temporary left where it writes, and
nothing at all after exit 2; no NaN or infinity on stdout unless its line says FAIL.
`train` only ever sees missing or broken data (no training runs); the train cases that
need real data follow.

- `test_empty_and_degenerate_inputs_are_one_line_input_errors` (issue 21 §3): every public
  function that takes arrays, given one with no entries, a batch of no rows, a 0-d value
  where an array is expected, or one sample where a statistic needs two: an `InputError` in
  one line (exit 2 from the command line), never a raw exception or a NaN.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import shutil
import warnings
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_data import idx_bytes

from jaxcalc import cli, data
from jaxcalc.cli import build_parser, main

SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

NAMES = ["", "bogus", "NaN", "-1"]  # refused by every option with choices


#: Broken data folders, each the four MNIST-shaped files with one fault.
BROKEN = ("fake", "labels", "int64", "truncated", "count", "empty")


def paths(kind: str) -> list[str]:
    """Hostile paths; `{tmp}` is the example's folder, `{file}` a file in it, `{data}` the
    folder of the `BROKEN` data sets."""
    common = ["{file}/sub", "/dev/null/sub", "/proc/jaxcalc-fuzz", "{tmp}/new/deep"]
    if kind == "folder":
        return ["{file}", *common]
    if kind == "file":
        return ["{tmp}", *common, "{tmp}/new/x.png"]
    return [*(f"{{data}}/{b}" for b in BROKEN), "{file}", "/nonexistent", *common]


def broken_data(root: Path) -> None:
    """`root/<fault>/` for each of `BROKEN`: a tiny MNIST-shaped set that is not MNIST (its
    SHA-256 differs), labels beyond the classes, an IDX header past int64, a truncated
    gzip, images and labels that disagree in count, no examples at all."""
    rng = np.random.default_rng(0)
    for fault in BROKEN:
        n_train, n_test = (0, 0) if fault == "empty" else (6, 4)
        labels = rng.integers(0, 10, n_train - (fault == "count")).astype(np.uint8)
        if fault == "labels":
            labels[0] = 14
        arrays = (
            rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            labels,
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_test).astype(np.uint8),
        )
        folder = root / fault
        folder.mkdir(parents=True)
        for stem, array in zip(data.FILES, arrays, strict=True):
            content = idx_bytes(array)
            if fault == "int64" and stem == data.FILES[0]:  # (2³² − 1)³ bytes, says the header
                content = content[:4] + np.array([2**32 - 1] * 3, ">u4").tobytes() + content[16:]
            packed = gzip.compress(content)
            if fault == "truncated" and stem == data.FILES[2]:
                packed = packed[: len(packed) // 2]
            (folder / f"{stem}.gz").write_bytes(packed)


# --------------------------------------------------------------------------- running


def run(argv: list[str]) -> tuple[int, str, str]:
    """`jaxcalc …` in-process: (exit status, stdout, stderr with the warnings it would show)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's errors and --help
            code = e.code
    shown = "".join(f"{x.category.__name__}: {x.message}\n" for x in w)
    return code, out.getvalue(), shown + err.getvalue()


NON_FINITE = re.compile(r"(?<![\w.])[-+]?(nan|inf)(?![\w])", re.IGNORECASE)


def check(argv: list[str], code: int, out: str, err: str, written: list[Path]) -> None:
    """The promises of the README for one run (see the module docstring); `written`: the
    folders it may write in, holding nothing but `a_file` before."""
    where = f"jaxcalc {' '.join(argv)}\nexit {code}\nstderr: {err[-2000:]}\nstdout: {out[-2000:]}"
    assert code in (0, 1, 2), where
    assert "Traceback" not in err and "Warning" not in err, where
    if code:
        lines = err.strip().splitlines()
        assert lines and re.match(r"jaxcalc( \w+)?: error: ", lines[-1]), where
        assert sum(": error: " in line for line in lines) == 1, where
    for folder in written:
        files = [p for p in folder.rglob("*") if p.is_file() and p.name != "a_file"]
        assert not [p for p in files if p.name.endswith((".tmp", ".part"))], where
        if code == 2:
            assert not files, where  # refused before any work
    for line in out.splitlines():
        assert not NON_FINITE.search(line) or "FAIL" in line, where


# --------------------------------------------------------------------------- fuzzer 1


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


#: Values each argument type of `jaxcalc.cli` must refuse.
REFUSED = {
    "positive_int": ["0", "-1", "1.5", "x", "", "nan", "1e3"],
    "nonnegative_int": ["-1", "1.5", "x", "", "inf"],
    "finite_float": ["nan", "inf", "-inf", "x", "", "1e309"],
    "positive_float": ["0", "-1", "nan", "inf", "x", "1e309"],
    "nonnegative_float": ["-1", "nan", "inf", "x", "-1e309"],
    "fraction": ["1", "-0.1", "nan", "x", "2"],
    "positive_int_at_most": ["0", "-1", "x", "1" + "0" * 100],
}


def refused_values(action: argparse.Action) -> list[str]:
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return [v for v in NAMES if v not in map(str, action.choices)]
    name = getattr(action.type, "__qualname__", "").split(".")[0]
    return REFUSED.get(name, [])


CASES = [
    (command, action.option_strings[-1], action.nargs, value)
    for command, parser in subparsers().items()
    for action in parser._actions
    if action.option_strings
    for value in refused_values(action)
]


def test_every_option_with_a_checked_type_is_fuzzed():
    fuzzed = {(c, o) for c, o, _, _ in CASES}
    for option in ("--lr", "--kappa", "--batch", "--hidden", "--x0", "--max-fd-seconds", "--ema"):
        assert any(o == option for _, o in fuzzed), option
    assert {c for c, _ in fuzzed} >= set(cli.SUBCOMMANDS) - {"exercises"}


def test_every_checked_option_refuses_what_its_type_refuses():
    failures = []
    for command, option, nargs, value in CASES:
        count = nargs if isinstance(nargs, int) else 1  # --sizes takes 3, --lr 1 or more
        argv = [command, f"{option}={value}"] if count == 1 else [command, option, *[value] * count]
        code, out, err = run(argv)
        try:
            check(argv, code, out, err, [])
            assert code == 2 and option in err.strip().splitlines()[-1]
        except AssertionError:
            failures.append((argv, code, err.strip()[-300:]))
    assert not failures, failures


# --------------------------------------------------------------------------- fuzzer 2

HUGE = ["1000000000", str(2**63), "1" + "0" * 100]
#: Hostile values that the argument types let through, by type: huge, tiny, zero, negative.
POSITIVE_INT = ["1", *HUGE]
NONNEGATIVE_INT = ["0", *HUGE]
POSITIVE = ["5e-324", "1e-300", "1e300", "1.7e308"]
FINITE = ["0", "-0.0", "-1", "5e-324", "-1e-300", "1e300", "-1.7e308", "1.7e308"]
FRACTION = ["0", "5e-324", "0.9999999999999999"]


def one(values: list[str]) -> st.SearchStrategy:
    return st.sampled_from(values).map(lambda v: [v])


def some(values: list[str], count: int | None = None) -> st.SearchStrategy:
    return st.lists(st.sampled_from(values), min_size=count or 1, max_size=count or 2)


#: command -> (base options, option -> strategy of its values, options always drawn,
#: examples). The base is a small, fast run; each example replaces one or two of its options
#: (and those always drawn). `{tmp}`, `{file}`, `{data}` are filled in per example (`paths`).
SPECS = {
    "derivatives": (
        {"--out": ["{tmp}/out"]},
        {"--x": one(FINITE), "--function": one(["exp"]), "--out": one(paths("folder"))},
        (),
        6,
    ),
    "descent": (
        {"--out": ["{tmp}/out"], "--surface": ["bowl"], "--surface-steps": ["20"]}
        | {"--steps": ["10"]},
        {
            "--lr": some(POSITIVE),
            **dict.fromkeys(("--a", "--kappa"), one(POSITIVE)),
            **dict.fromkeys(("--b", "--c", "--x0"), one(FINITE)),
            **dict.fromkeys(("--steps", "--surface-steps"), one(["1", "100000"])),
            "--surface": one(["rosenbrock"]),
            "--out": one(paths("folder")),
        },
        (),
        8,
    ),
    "exercises": ({}, {"--bogus": one(["1"])}, (), 1),
    "gradcheck": (
        {"--order": ["1"], "--activation": ["relu"], "--loss": ["mse"]}
        | {"--sizes": ["3", "2", "2"], "--batch": ["2"]},
        {
            "--seed": one(NONNEGATIVE_INT),
            "--batch": one(POSITIVE_INT),
            "--sizes": some(POSITIVE_INT, 3),
            "--activation": one(["tanh"]),
            "--loss": one(["cross_entropy"]),
        },
        (),
        8,
    ),
    "bench": (
        {"--impl": ["numpy"], "--synthetic": [], "--train-size": ["64"], "--batch-size": ["32"]}
        | {"--epochs": ["1"], "--hidden": ["4"], "--peak-size": ["16"], "--no-plot": []},
        {
            **dict.fromkeys(("--hidden", "--batch-size", "--epochs", "--train-size"), one(HUGE)),
            **dict.fromkeys(("--peak-size", "--unroll"), one(HUGE)),
            **dict.fromkeys(("--json", "--plot"), one(paths("file"))),
            "--devices": some(HUGE),
            "--data-dir": one(paths("data")),
            "--sizes": some(POSITIVE_INT),
            "--max-fd-seconds": one(POSITIVE),
        },
        (),
        10,
    ),
    "train": (
        {"--out": ["{tmp}/out"], "--epochs": ["1"], "--hidden": ["8"], "--no-figures": []}
        | {"--train-limit": ["64"], "--batch-size": ["16"], "--val-size": ["16"]},
        {
            **dict.fromkeys(("--hidden", "--epochs", "--batch-size"), one(POSITIVE_INT)),
            **dict.fromkeys(("--train-limit", "--devices"), one(POSITIVE_INT)),
            **dict.fromkeys(("--val-size", "--val-fold", "--seed"), one(NONNEGATIVE_INT)),
            "--lr": one(POSITIVE),
            "--weight-decay": one(["0", *POSITIVE]),
            **dict.fromkeys(("--dropout", "--label-smoothing", "--ema"), one(FRACTION)),
            "--out": one(paths("folder")),
            "--data-dir": one(paths("data")),
        },
        ("--data-dir",),
        12,
    ),
}

# issue 9's command: broken data, so no spectrum is computed
FLAG = st.just([])
SPECS["hessian"] = (
    {"--out": ["{tmp}/out"]},
    {
        **dict.fromkeys(("--examples", "--top", "--lanczos-steps"), one(POSITIVE_INT)),
        **dict.fromkeys(("--samples", "--runs", "--batch-size"), one(POSITIVE_INT)),
        "--seed": one(NONNEGATIVE_INT),
        **dict.fromkeys(("--trace", "--density", "--ggn", "--sharpness"), FLAG),
        "--lr": some(POSITIVE),
        **dict.fromkeys(("--steps", "--every", "--hidden"), one(POSITIVE_INT)),
        "--checkpoint": one(["{file}", "{tmp}", "/nonexistent.npz", "/dev/null"]),
        "--out": one(paths("folder")),
        "--data-dir": one(paths("data")),
    },
    ("--data-dir",),
    10,
)

#: (command, option) -> the options it needs besides (another mode of the command) and the
#: base options that would make it moot.
MODES = {
    ("bench", "--sizes"): ({"--gradient-cost": []}, ()),
    ("bench", "--max-fd-seconds"): ({"--gradient-cost": [], "--sizes": ["8"]}, ()),
    ("bench", "--data-dir"): ({}, ("--synthetic",)),
    ("bench", "--plot"): ({}, ("--no-plot",)),
}


def build(command: str, chosen: dict[str, list[str]]) -> list[str]:
    """The argv of `command`: its base options, with those `chosen` replacing or joining."""
    options = dict(SPECS[command][0])
    for option in chosen:
        extra, dropped = MODES.get((command, option), ({}, ()))
        options = {k: v for k, v in {**extra, **options}.items() if k not in dropped}
    options.update(chosen)
    argv = [command]
    for option, values in options.items():  # --x=-1e300: a value, not an option
        argv += [f"{option}={values[0]}"] if len(values) == 1 else [option, *values]
    return argv


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("broken-data")
    broken_data(root)
    return root


@pytest.mark.parametrize("command", sorted(SPECS))
def test_hostile_values_never_crash(command, data_root, tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.delenv("JAXCALC_DATA_DIR", raising=False)  # never real MNIST
    monkeypatch.chdir(tmp_path)  # a default output folder (runs/...) lands here
    _, options, always, examples = SPECS[command]
    optional = sorted(set(options) - set(always))

    @settings(SETTINGS, max_examples=examples)
    @given(st.data())
    def fuzz(draw):
        names = [*always, *draw.draw(some(optional), label="options")]
        chosen = {name: draw.draw(options[name], label=name) for name in dict.fromkeys(names)}
        tmp = tmp_path_factory.mktemp(command)
        (tmp / "a_file").write_text("not a folder")
        fill = {"tmp": str(tmp), "file": str(tmp / "a_file"), "data": str(data_root)}
        argv = [t.format(**fill) for t in build(command, chosen)]
        code, out, err = run(argv)
        check(argv, code, out, err, [tmp])
        shutil.rmtree(tmp)

    fuzz()


# --------------------------------------------------------------------------- train, real data

TRAIN_ON_REAL_DATA = ["--train-limit", "64", "--val-size", "16", "--batch-size", "16"]
TRAIN_ON_REAL_DATA += ["--epochs", "1", "--hidden", "8", "--augment", "none", "--no-figures"]


@pytest.mark.parametrize(
    "args",
    [
        ["--seed", str(2**63)],
        ["--epochs", "99999999999"],
        ["--epochs", "1000000000"],
        ["--weight-decay", "1e300"],
        ["--lr", "1e300"],
        ["--hidden", "99999999999"],
        ["--val-size", "99999999999"],
    ],
)
def test_train_hostile_values_on_real_data(args, mnist_dir, tmp_path):
    """The few hostile values that reach past the data: a 4-step run on 64 real images."""
    argv = ["train", "--data-dir", str(mnist_dir), "--out", str(tmp_path / "out")]
    argv += [*TRAIN_ON_REAL_DATA, *args]
    code, out, err = run(argv)
    check(argv, code, out, err, [tmp_path])


# ------------------------------------------------------------ empty inputs (issue 21 §3)


def _degenerate_calls() -> dict[str, Callable[[], Any]]:
    """One call per public function that takes arrays, each with an array that has no
    entries, a batch of no rows, a 0-d value where an array is expected, or one sample where
    a statistic needs two."""
    import jax
    import jax.numpy as jnp

    from jaxcalc import (
        activations,
        augment,
        calculus,
        chapter_network,
        convergence,
        curvature,
        descent,
        exercises,
        losses,
        mlp,
        scalar,
        toytrain,
        training,
    )
    from jaxcalc.data import Data

    key = jax.random.key(0)
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    params = mlp.init_params(jax.random.PRNGKey(0), (4, 3, 2))
    no_rows, no_labels = jnp.zeros((0, 4)), jnp.zeros(0, jnp.int32)
    images, labels = np.zeros((16, 28, 28), np.uint8), np.zeros(16, np.uint8)
    no_test = Data("mnist", tuple("0123456789"), images, labels, images, labels,
                   images[:0], labels[:0])  # fmt: skip
    calls = {}
    for shape in [(0,), (0, 3), (3, 0), (2, 0, 4)]:
        x = jnp.zeros(shape)
        calls |= {
            f"calculus.derivative {shape}": lambda x=x: calculus.derivative(jnp.sin, x),
            f"calculus.numerical_gradient {shape}": lambda x=x: calculus.numerical_gradient(f, x),
            f"calculus.numerical_jacobian {shape}": lambda x=x: calculus.numerical_jacobian(
                jnp.sin, x
            ),
            f"calculus.numerical_hessian {shape}": lambda x=x: calculus.numerical_hessian(f, x),
            f"calculus.gradient {shape}": lambda x=x: calculus.gradient(f, x),
            f"calculus.jacobian {shape}": lambda x=x: calculus.jacobian(jnp.sin, x),
            f"calculus.hessian {shape}": lambda x=x: calculus.hessian(f, x),
            f"calculus.hvp {shape}": lambda x=x: calculus.hvp(f, x, x),
            f"descent.gradient_descent {shape}": lambda x=x: descent.gradient_descent(f, x, 0.1, 3),
            f"curvature.top_eigenvalues {shape}": lambda x=x: curvature.top_eigenvalues(
                lambda v: v, x, key=key
            ),
            f"augment.deskew {shape}": lambda x=x: augment.deskew(x),
        }
    calls |= {
        "calculus.numerical_jacobian, f(x) empty": lambda: calculus.numerical_jacobian(
            lambda x: x[:0], jnp.ones(3)
        ),
        "descent.optimize, x0 empty": lambda: descent.optimize(f, jnp.zeros(0), None, 3),
        "descent.newton, x0 empty": lambda: descent.newton(f, jnp.zeros((0, 2)), 3),
    }
    for name in ("loss_and_grad", "loss_and_grad_autodiff", "loss_fn", "loss_grad_and_logits"):
        calls[f"mlp.{name}, no rows"] = lambda n=name: getattr(mlp, n)(params, no_rows, no_labels)
    calls |= {
        "mlp.forward, no rows": lambda: mlp.forward(params, no_rows),
        "mlp.forward, 0-d x": lambda: mlp.forward(params, jnp.float32(1.0)),
        "mlp.predict, no rows": lambda: mlp.predict(params, no_rows),
        "mlp.accuracy, no rows": lambda: mlp.accuracy(params, no_rows, no_labels),
        "mlp.hvp, no rows": lambda: mlp.hvp(params, no_rows, no_labels, params),
        "mlp.ggn_vp, no rows": lambda: mlp.ggn_vp(params, no_rows, no_labels, params),
        "mlp.input_jacobian, no rows": lambda: mlp.input_jacobian(params, no_rows),
        "losses.mse, no rows": lambda: losses.mse(jnp.zeros((0, 3)), jnp.zeros((0, 3))),
        "losses.cross_entropy, no rows": lambda: losses.cross_entropy(jnp.zeros((0, 3)), no_labels),
        "losses.cross_entropy, no classes": lambda: losses.cross_entropy(
            jnp.zeros((2, 0)), jnp.zeros(2, jnp.int32)
        ),
        "losses.smooth_labels, no classes": lambda: losses.smooth_labels(no_labels, 0, 0.1),
        "activations.softmax, empty axis": lambda: activations.softmax(jnp.zeros((2, 0))),
        "activations.softmax, 0-d": lambda: activations.softmax(jnp.float32(1.0)),
        "activations.log_softmax, 0-d": lambda: activations.log_softmax(jnp.float32(1.0)),
        "augment.affine, no images": lambda: augment.affine(key, jnp.zeros((0, 28, 28))),
        "augment.shift, 0-d": lambda: augment.shift(key, jnp.float32(0.0)),
        "curvature.hutchinson_trace, one sample": lambda: curvature.hutchinson_trace(
            lambda v: v, jnp.ones(3), key=key, samples=1
        ),
        "curvature.data_matvec, no rows": lambda: curvature.data_matvec(
            mlp.hvp, params, no_rows, no_labels
        ),
        "curvature.spectral_density, sigma inf": lambda: curvature.spectral_density(
            lambda v: v, jnp.ones(3), key=key, sigma=np.inf
        ),
        "curvature.density_on_grid, empty grid": lambda: curvature.density_on_grid(
            jnp.ones((1, 2)), jnp.ones((1, 2)), grid=jnp.zeros(0)
        ),
        "convergence.window_rate, one error": lambda: convergence.window_rate(np.ones(1), 0, 1),
        "exercises.classify, empty Hessian": lambda: exercises.classify(np.zeros((0, 0))),
        "exercises.newton_critical_points, no starts": lambda: exercises.newton_critical_points(
            f, jnp.zeros((0, 2))
        ),
        "scalar.Value, an empty array": lambda: scalar.Value(np.zeros(0)),
        "scalar.Value, an array": lambda: scalar.Value(np.ones(2)),
        "toytrain.fit, no rows": lambda: toytrain.fit(key, jnp.zeros((0, 2)), no_labels, steps=2),
        "chapter_network.accuracy, no rows": lambda: chapter_network.accuracy(
            params, no_rows, no_labels
        ),
        "chapter_network.train, empty validation": lambda: chapter_network.train(
            params,
            (np.ones((8, 4), np.float32), np.zeros(8, np.int32)),
            (np.zeros((0, 4), np.float32), np.zeros(0, np.int32)),
            epochs=1,
            batch_size=4,
            learning_rate=0.1,
        ),  # fmt: skip
        "training.fit, no test examples": lambda: training.fit(
            training.default_config(hidden=4, epochs=1, batch_size=8),
            "/proc/jaxcalc-unused",
            data=no_test,
            progress=False,
        ),  # fmt: skip
        "training.fit, no training examples": lambda: training.fit(
            training.default_config(hidden=4, epochs=1, batch_size=8),
            "/proc/jaxcalc-unused",
            data=no_test._replace(
                train_images=images[:0],
                train_labels=labels[:0],
                test_images=images,
                test_labels=labels,
            ),
            progress=False,
        ),  # fmt: skip
    }
    return calls


DEGENERATE = _degenerate_calls()


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_empty_and_degenerate_inputs_are_one_line_input_errors(name):
    """No entries, no rows, 0-d for an array, one sample for a statistic of two: each is an
    `InputError` of one line naming what is wrong, never a raw exception, a NaN or a number
    made of nothing (a mean over no rows, a verdict on an empty Hessian)."""
    from jaxcalc.validation import InputError

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from a mean of nothing either
        with pytest.raises(InputError) as e:
            DEGENERATE[name]()
    assert "\n" not in str(e.value) and len(str(e.value)) < 200, str(e.value)
