"""Command-line failures are one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from jaxcalc import cli, descent
from jaxcalc.cli import main


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["descent", "--out", "{file}"],
        ["train", "--out", "{file}", "--epochs", "1"],
        ["bench", "--json", "{file}/x.json"],
        ["bench", "--plot", "{dir}", "--impl", "numpy"],
    ],
)
def test_unwritable_output_is_refused_before_any_work(args, a_file, tmp_path, capsys):
    args = [a.format(file=a_file, dir=tmp_path) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error:" in err and str(args[2]).split("/")[0] in err


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        (OSError(28, "No space left on device", "runs/x"), "No space left on device"),
        (MemoryError(), "out of memory"),
        (RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating"), "out of device memory"),
    ],
)
def test_system_failures_are_one_line(error, needle, monkeypatch, capsys):
    import jaxcalc.cli.exercises as command

    def fail(args):
        raise error

    monkeypatch.setattr(command, "run", fail)
    assert main(["exercises"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_other_exceptions_are_not_swallowed(monkeypatch):
    import jaxcalc.cli.exercises as command

    def fail(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(command, "run", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["exercises"])


def test_a_start_far_from_the_origin_is_not_divergence():
    f = lambda x: (x[0] - 3e6) ** 2  # noqa: E731
    result = descent.descend(f, np.array([2e6]), 0.1, 100)
    assert result.diverged_at is None
    assert abs(result.trajectory[-1][0] - 3e6) < 1.0
    assert descent.descend(f, np.array([2e6]), 1.5, 50).diverged_at is not None


@pytest.mark.parametrize(
    ("convert", "good", "bad", "message"),
    [
        (cli.positive_int, {"3": 3, str(2**80): 2**80}, ["0", "-2", "1.5", "x", ""],
         "expected a positive integer"),
        (cli.nonnegative_int, {"0": 0, "12": 12}, ["-1", "2.0", "seven"],
         "expected an integer >= 0"),
        (cli.finite_float, {"-2": -2.0, "1e3": 1000.0}, ["inf", "nan", "x"],
         "expected a finite number"),
        (cli.positive_float, {"0.5": 0.5, "3": 3.0}, ["0", "-1", "inf", "nan", "x"],
         "expected a positive finite number"),
        (cli.nonnegative_float, {"0": 0.0, "2.5": 2.5}, ["-0.1", "inf", "nan", "x"],
         "expected a finite number >= 0"),
    ],
)  # fmt: skip
def test_argument_types_are_the_validation_checks(convert, good, bad, message):
    for text, value in good.items():
        assert convert(text) == value and type(convert(text)) is type(value)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=f"^{message}, got {text!r}$"):
            convert(text)


def test_a_bad_number_is_refused_while_parsing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["descent", "--out", str(tmp_path), "--x0", "inf"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == "jaxcalc descent: error: argument --x0: expected a finite number, got 'inf'\n"
