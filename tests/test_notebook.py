"""The chapter notebook: stored clean, and executed top to bottom with nbclient.

The notebook tooling is the optional extra `.[notebook]` (nbclient, nbformat, ipykernel);
without it the execution test skips, except in CI (`$CI` set), where it fails.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_calculus_gradients.ipynb"
SECTIONS = 9
#: The figures the notebook shows, by the name `show(fig, name)` gives them.
FIGURES = (
    "step_size",
    "gradient_field",
    "chain_rule",
    "critical_points",
    "learning_rates",
    "optimizer_paths",
    "toy_loss",
    "decision_boundary",
    "hessian_density",
)
MNIST_FIGURES = ("mnist_curves", "mnist_misclassified", "mnist_confusion")
#: Appended to the executed copy: which interpreter and which jaxcalc the kernel ran.
PROBE = (
    "import json, sys, jaxcalc\n"
    "print(json.dumps({'prefix': sys.prefix, 'executable': sys.executable, "
    "'jaxcalc': jaxcalc.__file__}))"
)


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def test_notebook_is_stored_clean():
    """No outputs, no execution counts, one hidden, self-checking answer per section."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for cell in code:
        assert cell["outputs"] == [], f"stored with outputs: {_source(cell)[:60]!r}"
        assert cell["execution_count"] is None, f"stored executed: {_source(cell)[:60]!r}"
    sections = [
        c for c in nb["cells"] if c["cell_type"] == "markdown" and _source(c).startswith("## ")
    ]
    assert len(sections) == SECTIONS + 1  # the nine sections and the summary
    answers = [c for c in code if "answer" in c["metadata"].get("tags", [])]
    assert len(answers) == SECTIONS
    for cell in answers:
        assert cell["metadata"]["jupyter"]["source_hidden"] is True
        assert cell["metadata"]["collapsed"] is True
        assert "assert " in _source(cell), "an answer cell must check its answer"


def _require(module: str):
    """Import `module`, or skip (fail in CI) naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        msg = f"{module} is not installed: pip install -e '.[notebook]' to run the notebook test"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.mark.slow
def test_notebook_runs(tmp_path):
    """Every cell runs without error in this interpreter's kernel, and the figures appear."""
    nbformat = _require("nbformat")
    nbclient = _require("nbclient")
    _require("ipykernel")
    import jaxcalc
    from jaxcalc.data import locate

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on failure
    seconds = time.perf_counter() - start
    print(f"notebook executed in {seconds:.0f} s")

    probe = json.loads(
        "".join(o["text"] for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    )
    assert Path(probe["prefix"]).resolve() == Path(sys.prefix).resolve(), (
        f"the kernel ran {probe['executable']}, not this environment's {sys.executable}: "
        "a 'python3' kernelspec elsewhere takes precedence"
    )
    assert Path(probe["jaxcalc"]).resolve() == Path(jaxcalc.__file__).resolve()

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    shown = [
        o
        for c in code
        for o in c.outputs
        if o.output_type == "display_data" and "image/png" in o.get("data", {})
    ]
    names = [o.metadata.get("figure") for o in shown]
    required = list(FIGURES)
    if os.environ.get("CI") or locate("mnist") is not None:  # CI has MNIST: it must train
        required += MNIST_FIGURES
    missing = [name for name in required if name not in names]
    assert not missing, f"figures missing: {missing} (shown: {names})"
    assert len(shown) >= len(required)
