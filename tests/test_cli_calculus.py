"""`jaxcalc exercises` and `jaxcalc derivatives`: output, exit status, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from jaxcalc.cli import exercises as cli_exercises
from jaxcalc.cli import main
from jaxcalc.exercises import Answer


def test_exercises_prints_every_answer_and_exits_0(capsys):
    assert main(["exercises"]) == 0
    out = capsys.readouterr().out
    for name in (
        "Worked example 1",
        "Worked example 3",
        "Exercise 1c",
        "Exercise 2b",
        "Exercise 3",
    ):
        assert f"{name}:" in out
    assert "closed form:" in out and "autodiff:" in out and "finite differences:" in out
    assert "73.890561" in out  # 10 e², to 6 decimals
    assert "1.148698, -0.505239" in out  # the local minimum of exercise 2
    assert "all 13 answers confirmed" in out and "5 gradient checks passed" in out
    assert "sin(x^2 + y^2) at (1, 2)" in out


def test_exercises_exit_1_when_a_check_fails(capsys, monkeypatch):
    wrong = Answer("Broken", "p", "c", np.array([1.0]), np.array([1.0]), np.array([2.0]))
    monkeypatch.setattr(cli_exercises, "SECTIONS", (lambda: [wrong],))
    assert main(["exercises"]) == 1
    out = capsys.readouterr().out
    assert "check: FAILED" in out and "FAILED: Broken" in out


def test_derivatives_writes_the_figure(tmp_path, capsys):
    assert main(["derivatives", "--function", "exp", "--x", "0.5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    png = tmp_path / "step_size_exp.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    rows = [line.split() for line in out.splitlines() if line.startswith("float")]
    assert [(r[0], r[1]) for r in rows] == [
        ("float32", "forward"),
        ("float32", "central"),
        ("float64", "forward"),
        ("float64", "central"),
    ]
    assert all(float(r[2]) > 0 for r in rows)
    assert f"wrote {png}" in out
    (note,) = [line for line in out.splitlines() if line.startswith("note:")]
    assert note.endswith(
        "its error is |f'(x)| itself: the flat line at the left of the float32 plot"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--x", "nan"], "x must be finite"),
        (["--x", "inf"], "x must be finite"),
        (["--function", "exp", "--x", "1000"], "overflows exp in float32"),
    ],
)
def test_derivatives_bad_values_exit_2_in_one_line(argv, message, capsys, tmp_path):
    assert main(["derivatives", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("jaxcalc derivatives: error: ")
    assert message in err


def test_derivatives_out_is_a_file_exit_2(tmp_path, capsys):
    file = tmp_path / "taken"
    file.write_text("x")
    assert main(["derivatives", "--out", str(file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["derivatives", "--function", "cos"], ["derivatives", "--x", "abc"], ["exercises", "--bogus"]],
)
def test_bad_arguments_exit_2_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err


def test_command_line_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcalc", "derivatives", "--x", "nan"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == "jaxcalc derivatives: error: x must be finite, got nan\n"
    assert proc.stdout == ""
