"""Command-line failures are one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import numpy as np
import pytest

from jaxcalc import descent
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
