"""The chapter's projects as programs: each runs top to bottom and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO


def script(name: str, *args: str, env: dict | None = None) -> str:
    """Run scripts/NAME with ARGS; its stdout (fails the test on a non-zero exit)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_gradient_descent_matches_theory(tmp_path):
    out = script("gradient_descent.py", "--out", str(tmp_path))
    rates = re.findall(r"theory (\S+)\s+measured (\S+)", out)
    assert len(rates) == 4
    for theory, measured in rates:
        assert abs(float(theory) - float(measured)) < 1e-6
    assert (tmp_path / "learning_rates.png").is_file() and (tmp_path / "paths.png").is_file()


def test_mnist_training_learns(mnist_dir):
    out = script(
        "mnist_training.py",
        *("--epochs", "2", "--hidden", "32", "--train-limit", "8192", "--batch-size", "128"),
        *("--data-dir", str(mnist_dir)),
    )
    assert "epoch 2: loss" in out
    assert float(re.search(r"test accuracy ([\d.]+)%", out).group(1)) > 85


def test_neural_network_checks_its_gradients(tmp_path):
    out = script("neural_network.py", "--out", str(tmp_path), "--steps", "20")
    last = out.splitlines()[-1]
    assert last.startswith("hand-written gradient vs jax.grad (spirals, float64)")
    errors = [float(e) for e in re.findall(r"(?:W1|b1|W2|b2) (\S+?)(?:,|$)", last)]
    assert len(errors) == 4 and max(errors) < 1e-12
    assert " ms" not in out  # no timing: that is `jaxcalc bench`'s job
    for name in ("spirals_boundary", "moons_boundary", "curve_fit", "loss_curves"):
        assert (tmp_path / f"{name}.png").is_file()
