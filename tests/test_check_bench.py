"""`jaxcalc bench --gradcheck` scores any corpus module the same way."""

from __future__ import annotations

import json

from jaxcalc.bench import gradcheck
from jaxcalc.cli import main

CORPUS = """
import jax, jax.numpy as jnp
from jaxcalc.bench.corpus import Case

def bwd(ok):
    return lambda a, g: ((1 if ok else -1) * g * jnp.cos(a[0]),)

def rule(ok):
    f = jax.custom_vjp(lambda x: jnp.sin(x))
    f.defvjp(lambda x: (jnp.sin(x), (x,)), bwd(ok))
    return f

draw = lambda rng: (rng.normal(size=5),)
CASES = [Case("sin", rule(True), draw, False, "twin"),
         Case("sin/sign", rule(False), draw, True, "sign", leaves=("x",), pattern="sign"),
         Case("jnp.tanh", jnp.tanh, draw, False, "control")]
"""


def test_an_external_corpus_is_scored(tmp_path, monkeypatch, capsys):
    (tmp_path / "tiny_corpus.py").write_text(CORPUS)
    monkeypatch.syspath_prepend(str(tmp_path))
    results = gradcheck.run_bench(gradcheck.load("tiny_corpus"))
    scores = {s.checker: s for s in gradcheck.score(results)}
    ours = scores["jaxcalc.check"]
    assert (ours.caught, ours.bugs, ours.crashes) == (2, 2, 0)  # the bug, in both dtypes
    assert ours.false_alarms == {"float32": 0, "float64": 0}
    assert ours.correct == {"float32": 2, "float64": 2}
    assert ours.leaves == (2, 2) and ours.patterns == (2, 2)
    assert scores["jax.test_util"].bugs == 2
    assert all(r.seconds > 0 for r in results)


def test_cli_writes_the_table_and_json(tmp_path, monkeypatch, capsys):
    (tmp_path / "tiny_corpus2.py").write_text(CORPUS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(gradcheck, "network", lambda: [("hand-written", "ok: 4 blocks", 1.0, 9)])
    out_json = tmp_path / "gc.json"
    assert main(["bench", "--gradcheck", "--corpus", "tiny_corpus2", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "jaxcalc.check" in out and "jax.test_util" in out and "bugs caught" in out
    assert "time, jaxcalc.check / jax.test_util:" in out
    data = json.loads(out_json.read_text())
    assert {r["checker"] for r in data["results"]} >= {"jaxcalc.check", "jax.test_util"}


def test_a_corpus_that_cannot_be_imported_exits_2(capsys):
    assert main(["bench", "--gradcheck", "--corpus", "no_such_corpus_xyz"]) == 2
    assert "cannot import corpus" in capsys.readouterr().err
