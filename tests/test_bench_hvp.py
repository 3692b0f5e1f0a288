"""`jaxcalc bench --hvp`: every product timed in one run, the goals reported (no timed tests:
the ratios are the benchmark's to measure, not the tests')."""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcalc import mlp
from jaxcalc.bench import hvp
from jaxcalc.bench.report import hvp_table
from jaxcalc.cli import main


def test_tiny_run_reports_every_product_and_the_goals(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    result = hvp.run_hvp_bench(examples=32, hidden=8, repeats=1, synthetic=True, lanczos_steps=4)
    status = {r.impl: r.status for r in result.rows}
    assert status == {"hvp": "ok", "hvp-autodiff": "ok", "gradient": "ok", "lanczos": "ok",
                      "torch-hvp": "skipped"}  # fmt: skip
    assert all(len(r.call_seconds) == 1 for r in result.rows if r.status == "ok")
    assert set(hvp.ratios(result)) == {"vs autodiff", "vs gradient", "lanczos overhead"}
    text = hvp_table(result)
    for line in (
        "hvp time / one gradient's",
        "(goal <= 2.5x)",
        "PyTorch double backward's: not measured",
        "time to the top eigenvalue (4 Lanczos steps over 32 images)",
    ):
        assert line in text
    assert "synthetic" in result.data and json.dumps(result.to_json())


@pytest.mark.parametrize("extra", [["--plot", "x.png"], ["--devices", "2"], ["--impl", "numpy"]])
def test_hvp_is_a_run_of_its_own(extra, capsys):
    assert main(["bench", "--hvp", *extra]) == 2
    assert "--hvp is a run of its own" in capsys.readouterr().err


def test_torch_double_backward_is_the_same_hessian_vector_product():
    """The PyTorch row computes the same H v (checked once here; timed only by the bench)."""
    pytest.importorskip("torch")
    params = mlp.init_params(jax.random.key(0), (6, 5, 3), activation="relu")
    x = jax.random.uniform(jax.random.key(1), (7, 6))
    y = jax.random.randint(jax.random.key(2), (7,), 0, 3)
    v = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    got = hvp._torch_hvp(params, x, y, v)(0)
    want = mlp.hvp(params, x, y, v, activation="relu")
    for g, k in zip(got, params, strict=True):
        np.testing.assert_allclose(g.numpy(), want[k], rtol=1e-4, atol=1e-6)
