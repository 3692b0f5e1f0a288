"""The corpus of `jaxcalc bench --gradcheck`, scored by jaxcalc.check alone: every planted bug
fails, on exactly its leaves and with its pattern; every correct twin and JAX control passes;
in float64 and in float32."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxcalc.bench import gradcheck
from jaxcalc.bench.corpus import CASES

KINDS = (
    "sign",
    "factor",
    "transpose",
    "reduction",
    "term",
    "mean-sum",
    "branch",
    "zeroed",
    "off-by-one",
    "small-leaf",
    "tiny",
    "order-2",
)


def test_the_corpus_covers_its_kinds_and_forms():
    bugs = [c for c in CASES if c.buggy]
    assert len(bugs) >= 40 and {c.kind for c in bugs} == set(KINDS)
    assert {c.name for c in CASES if c.kind == "twin"} == {c.name.rpartition("/")[0] for c in bugs}
    assert len([c for c in CASES if c.kind == "control"]) >= 25
    forms = {"custom_vjp": 0, "custom_jvp": 0, "grad_fn": 0}
    for c in bugs:
        kind = type(c.f).__name__
        forms[
            "grad_fn"
            if c.grad_fn
            else "custom_vjp"
            if kind == "custom_vjp"
            else "custom_jvp"
            if kind == "custom_jvp"
            else "?"
        ] += 1
    assert min(forms.values()) >= 5 and "?" not in forms
    assert sum(c.torch is not None for c in bugs) >= 10 or not gradcheck.have_torch()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_bug_fails_and_every_correct_rule_passes(dtype):
    wrong = []
    for case in CASES:
        with jax.enable_x64(dtype == "float64"):
            args = gradcheck.cast(case.args(np.random.default_rng(1)), dtype)
            outcome, leaf_ok, pattern_ok, summary = gradcheck.run_jaxcalc(case, args)
        if (outcome == "caught") != case.buggy or leaf_ok is False or pattern_ok is False:
            wrong.append(f"{case.name}: {outcome}, leaf {leaf_ok}, pattern {pattern_ok}: {summary}")
    assert not wrong, "\n".join(wrong)
