"""The course notebook: stored with fresh outputs, run top to bottom with the exercises
unanswered (every check says "not written yet") and answered (every check passes), a typical
mistake planted in each "your turn" cell named by the notebook's own check cell, and a bad
answer (wrong shape, NaN, a Python list, an exception) answered in one line.

Running the notebook needs the optional extra `.[notebook]` (nbclient, nbformat, ipykernel);
without it those tests skip, except in CI (`$CI` set), where they fail.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import REPO

from jaxcalc import course
from jaxcalc.course import interactive, notebook
from jaxcalc.validation import InputError

NOTEBOOK = REPO / "notebooks" / "02_calculus_gradients.ipynb"
SECTIONS = 12
#: The figures the notebook shows, by the name `show(fig, name)` gives them.
FIGURES = (
    "step_size",
    "step_size_h",
    "gradient_field",
    "chain_rule",
    "graph",
    "critical_points",
    "learning_rates",
    "learning_rate_slider",
    "optimizer_paths",
    "momentum_rates",
    "adam_axes",
    "activations",
    "gradient_flow",
    "toy_loss",
    "decision_boundary",
    "hessian_density",
)
MNIST_FIGURES = ("chapter_network", "mnist_misclassified")
MAX_BYTES = 2_500_000  # stored with its figures (PNG at 72 dpi): it must stay light


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _figures(nb) -> list[str]:
    return [
        o.get("metadata", {}).get("figure")
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o["output_type"] == "display_data" and "image/png" in o.get("data", {})
    ]


# --- the stored notebook ----------------------------------------------------------------------


def test_every_notebook_is_stored_with_fresh_outputs():
    """Outputs stored by `scripts/run_notebooks.py` from these very cells and this library."""
    paths = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert NOTEBOOK in paths
    for path in paths:
        nb = _json(path)
        problems = notebook.stale(nb)
        assert not problems, (
            f"{path.name}: stored outputs are stale ({'; '.join(problems[:5])}): "
            "run python scripts/run_notebooks.py"
        )
        assert nb["metadata"]["jaxcalc"]["answers"] == "stubs"
        assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size:,} bytes"
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert all(o["output_type"] != "error" for o in cell["outputs"])


def test_the_stored_notebook_shows_every_figure_and_every_check():
    nb = _json(NOTEBOOK)
    missing = [name for name in FIGURES + MNIST_FIGURES if name not in _figures(nb)]
    assert not missing, f"figures missing from the stored outputs: {missing}"
    lines = notebook.check_lines(nb)
    assert set(lines) == set(course.BY_KEY)
    for key, line in lines.items():
        assert line.startswith("○ ") and line.endswith("not written yet"), (key, line)


def test_stale_names_a_changed_cell_or_module_and_ignores_numbers():
    nb = _json(NOTEBOOK)
    if notebook.stale(nb):
        pytest.skip("the stored notebook is stale: see the test above")
    # Another CPU prints other last digits: outputs are not compared, so nothing is stale.
    numbers = copy.deepcopy(nb)
    for cell in numbers["cells"]:
        for o in cell.get("outputs", []):
            if o["output_type"] == "stream":
                o["text"] = "".join(o["text"]).replace("0", "1")
    assert notebook.stale(numbers) == []
    edited = copy.deepcopy(nb)
    i = next(i for i, c in enumerate(edited["cells"]) if c["cell_type"] == "code")
    edited["cells"][i]["source"] = notebook.source(edited["cells"][i]) + "\nx = 1"
    assert notebook.stale(edited) == [f"cell {i} changed since it ran: 'import inspect'"]
    unrun = copy.deepcopy(nb)
    unrun["cells"][i]["execution_count"] = None  # the same source, never run
    assert notebook.stale(unrun) == [f"cell {i} changed since it ran: 'import inspect'"]
    module = copy.deepcopy(nb)
    sources = module["metadata"]["jaxcalc"]["sources"]
    assert "jaxcalc/course/checks.py" in sources and "jaxcalc/chapter_network.py" in sources
    sources["jaxcalc/chapter_network.py"] = "0" * 64
    sources["jaxcalc/gone.py"] = "0" * 64
    assert notebook.stale(module) == [
        "jaxcalc/chapter_network.py changed since the notebook ran",
        "jaxcalc/gone.py is gone since the notebook ran",
    ]
    del module["metadata"]["jaxcalc"]
    assert notebook.stale(module) == [
        "the notebook carries no record of its run (stored without outputs?)"
    ]


def test_the_course_structure():
    """Sections, each exercise's stub and check cell in place, paper answers hidden."""
    nb = _json(NOTEBOOK)
    assert notebook.structure_problems(nb) == []
    headings = [
        notebook.source(c)
        for c in nb["cells"]
        if c["cell_type"] == "markdown" and notebook.source(c).startswith("## ")
    ]
    assert len(headings) == SECTIONS + 1  # the sections and the summary
    assert [h.split(".")[0] for h in headings[:-1]] == [f"## {i}" for i in range(1, SECTIONS + 1)]
    answers = [c for c in nb["cells"] if "answer" in c["metadata"].get("tags", [])]
    assert len(answers) == 7
    for cell in answers:
        assert cell["metadata"]["jupyter"]["source_hidden"] is True
        assert "assert " in notebook.source(cell), "an answer cell must check its answer"
    critical = next(
        notebook.source(c) for c in nb["cells"] if "critical point" in notebook.source(c)
    )
    assert "2^{1/5}" not in critical and "(0, 0)" not in critical  # the prompt gives nothing away


def test_structure_problems_names_a_misplaced_check_and_a_changed_stub():
    nb = _json(NOTEBOOK)
    (i, first), (j, second) = notebook.marked(nb, "your-turn")[:2]
    (a, _), (b, _) = notebook.marked(nb, "check")[:2]
    moved = copy.deepcopy(nb)  # the first two check cells swapped
    moved["cells"][a], moved["cells"][b] = moved["cells"][b], moved["cells"][a]
    assert notebook.structure_problems(moved) == [
        f"the code cell after cell {i} is not the check of {first!r}",
        f"the code cell after cell {j} is not the check of {second!r}",
    ]
    answered = notebook.fill(nb, "solutions")
    assert notebook.structure_problems(answered)[0] == (
        f"cell {i} does not hold course.stub for {first!r}"
    )


# --- the notebook's own cells, with planted mistakes and bad answers ----------------------------


@pytest.fixture(scope="module")
def cells() -> tuple[dict, dict]:
    """The namespace after the notebook's first code cell (its imports), and each exercise's
    check cell source."""
    nb = _json(NOTEBOOK)
    setup = next(notebook.source(c) for c in nb["cells"] if c["cell_type"] == "code")
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(setup, namespace)
    checks = {key: notebook.source(nb["cells"][i]) for i, key in notebook.marked(nb, "check")}
    return namespace, checks


def run_cells(cells, key: str, answer: str) -> str:
    """The learner's cell `answer`, then the check cell of `key`, as the notebook runs them:
    what the check cell prints."""
    namespace, checks = cells
    namespace = dict(namespace)
    exec(answer, namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(checks[key], namespace)
    return out.getvalue()


SIGMOID = "from jaxcalc.activations import sigmoid, softmax\nimport jax.numpy as jnp\n"

#: A typical mistake in each "your turn" cell, as a learner would type it, and what the check
#: must say.
MISTAKES = {
    "stencil": (
        "def central_difference(f, x, h):\n    return (f(x + h) - f(x)) / h\n",
        "is the forward difference",
    ),
    "gradient": (
        "import jax.numpy as jnp\n"
        "def gradient_f(p):\n    x, y = p\n"
        "    return jnp.array([3 * x**2 * y**2 + 2 * y, 2 * x**3 * y - 3 * y**2])\n",
        "∂f/∂y (entry 1) at (1, -1) is wrong",
    ),
    "chain_rule": (
        SIGMOID + "def backprop_example(x, w1, w2, target):\n    a1 = sigmoid(w1 * x)\n"
        "    dL_dy = w2 * a1 - target\n    return dL_dy * w2 * x, dL_dy * a1\n",
        "misses the factor σ'(z1) = a1 (1 − a1)",
    ),
    "jacobian": (
        "import jax.numpy as jnp\ndef jacobian(f, x, h):\n"
        "    rows = [(f(x + h * e) - f(x - h * e)) / (2 * h) for e in jnp.eye(len(x))]\n"
        "    return jnp.stack(rows)\n",
        "has shape (3, 2) where (2, 3) is expected: transposed?",
    ),
    "descent": (
        "import jax.numpy as jnp\ndef gradient_descent(grad, x0, learning_rate, steps):\n"
        "    xs = [x0]\n    for _ in range(steps):\n"
        "        xs.append(xs[-1] + learning_rate * grad(xs[-1]))\n    return jnp.stack(xs)\n",
        "moves uphill",
    ),
    "activations": (
        SIGMOID + "def sigmoid_prime(z):\n    return sigmoid(z) * (1 - sigmoid(z))\n"
        "def tanh_prime(z):\n    return 1 - jnp.tanh(z) ** 2\n"
        "def relu_prime(z):\n    return jnp.where(z >= 0, 1.0, 0.0)\n",
        "relu_prime is 1 at z = 0",
    ),
    "backward": (
        SIGMOID + "def backward(params, x, y):\n"
        "    a1 = sigmoid(x @ params['W1'] + params['b1'])\n"
        "    dz2 = (softmax(a1 @ params['W2'] + params['b2']) - y) / len(x)\n"
        "    dz1 = dz2 @ params['W2'].T * a1 * (1 - a1)\n"
        "    return {'W1': x.T @ dz1, 'b1': dz1.sum(axis=1), 'W2': a1.T @ dz2,"
        " 'b2': dz2.sum(axis=0)}\n",
        "db1 has shape (5,) where (3,) is expected: summed over the wrong axis",
    ),
    "adam": (
        "import jax.numpy as jnp\n"
        "def adam_step(params, grads, m, v, t, learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8):\n"
        "    m = b1 * m + (1 - b1) * grads\n    v = b2 * v + (1 - b2) * grads**2\n"
        "    return params - learning_rate * m / (jnp.sqrt(v) + eps), m, v\n",
        "skips the bias correction",
    ),
    "custom_vjp": (
        "def dense_bwd(res, g):\n    x, W, y = res\n    dz = g * (1 - y**2)\n"
        "    return dz @ W.T, dz.T @ x, dz.sum(axis=0)\n",
        "dW has shape (3, 4) where (4, 3) is expected: transposed?",
    ),
}
#: One sign mistake more, named by the gradient checker's own diagnosis.
SIGN = (
    SIGMOID + "def backward(params, x, y):\n"
    "    a1 = sigmoid(x @ params['W1'] + params['b1'])\n"
    "    dz2 = (softmax(a1 @ params['W2'] + params['b2']) - y) / len(x)\n"
    "    dz1 = dz2 @ params['W2'].T * a1 * (1 - a1)\n"
    "    return {'W1': -x.T @ dz1, 'b1': dz1.sum(axis=0), 'W2': a1.T @ dz2,"
    " 'b2': dz2.sum(axis=0)}\n"
)


def test_every_exercise_has_a_planted_mistake():
    assert set(MISTAKES) == set(course.BY_KEY)


@pytest.mark.parametrize("key", MISTAKES)
def test_a_planted_mistake_is_named_by_the_check_cell(cells, key):
    answer, phrase = MISTAKES[key]
    printed = run_cells(cells, key, answer)
    assert printed.startswith("✗ ") and printed.count("\n") == 1, printed
    assert phrase in printed, printed


def test_the_gradient_checker_names_a_flipped_sign(cells):
    assert run_cells(cells, "backward", SIGN) == "✗ dW1 has the wrong sign\n"


@pytest.mark.parametrize("key", course.BY_KEY)
def test_the_solution_passes_the_check_cell(cells, key):
    printed = run_cells(cells, key, course.solution_source(course.BY_KEY[key]))
    assert printed.startswith("✓ ") and printed.count("\n") == 1, printed


BAD = [
    (
        "gradient",
        "import jax.numpy as jnp\ndef gradient_f(p):\n    return jnp.array([1.0, 2.0, 3.0])\n",
        "✗ gradient_f(1, -1) has shape (3,) where (2,) is expected",
    ),
    (
        "activations",
        "import jax.numpy as jnp\ndef sigmoid_prime(z):\n    return z * jnp.nan\n"
        "def tanh_prime(z):\n    return z\ndef relu_prime(z):\n    return z\n",
        "✗ sigmoid_prime is NaN at index (0,): look for a division by zero or an overflow",
    ),
    (
        "jacobian",
        "def jacobian(f, x, h):\n    return [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]\n",
        "✗ jacobian of f: R3 → R2 is a Python list: return an array",
    ),
    (
        "backward",
        "def backward(params, x, y):\n    return {'W1': params['w1']}\n",
        "✗ backward raised KeyError: 'w1'",
    ),
    (
        "custom_vjp",
        "def dense_bwd(res, g):\n    x, W, y = res\n    return g @ W.T, x.T @ g\n",
        "✗ dense_bwd must return the triple (dx, dW, db)",
    ),
    (
        "stencil",
        "def central_difference(f, x, h):\n    pass\n",
        "○ central_difference: not written",
    ),
    ("descent", "def gradient_descnet(grad, x0, learning_rate, steps):\n    return x0\n", "○ "),
]


@pytest.mark.parametrize(("key", "answer", "start"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_answer_gets_one_line_never_a_traceback(cells, key, answer, start):
    printed = run_cells(cells, key, answer)
    assert printed.startswith(start), printed
    assert printed.count("\n") == 1 and "Traceback" not in printed


# --- sliders -------------------------------------------------------------------------------------


def test_explore_draws_the_static_figure_where_no_frontend_runs_it(monkeypatch, capsys):
    drawn, shown = [], []

    def draw(v):
        drawn.append(v)
        return f"figure {v}"

    monkeypatch.delenv(interactive.STATIC, raising=False)
    assert not interactive.widgets_available()  # no kernel runs this test
    monkeypatch.setenv(interactive.STATIC, "1")
    interactive.explore(draw, [0.1, 0.2, 0.3], value=0.2, description="α", show=shown.append)
    assert drawn == [0.2] and shown == ["figure 0.2"]
    assert (
        capsys.readouterr().out
        == "(in Jupyter with ipywidgets, a slider over α redraws this figure)\n"
    )
    with pytest.raises(InputError, match="not one of the slider's values"):
        interactive.explore(draw, [0.1, 0.2], value=0.25, description="α", show=shown.append)


def test_the_slider_redraws_the_figure_on_every_move():
    _require("ipywidgets")
    drawn, shown = [], []

    def draw(v):
        drawn.append(v)
        return f"figure {v}"

    box = interactive.slider(draw, [1e-2, 1e-4, 1e-6], value=1e-4, description="h",
                             show=shown.append, fmt="{:.0e}")  # fmt: skip
    stops = box.children[0]
    assert [label for label, _ in stops.options] == ["1e-02", "1e-04", "1e-06"]
    stops.value = 1e-6
    assert drawn == [1e-4, 1e-6] and shown == ["figure 0.0001", "figure 1e-06"]


# --- the notebook run top to bottom, twice -----------------------------------------------------


def _require(module: str):
    """Import `module`, or skip (fail in CI) naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        msg = f"{module} is not installed: pip install -e '.[notebook]' to run the notebook test"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def _execute(answers: str) -> notebook.Run:
    for module in ("nbformat", "nbclient", "ipykernel"):
        _require(module)
    from jaxcalc.data import locate

    static = os.environ.get(interactive.STATIC)
    run = notebook.execute(notebook.fill(notebook.read(NOTEBOOK), answers), cwd=NOTEBOOK.parent)
    assert os.environ.get(interactive.STATIC) == static  # set for the kernel only
    print(f"notebook ({answers}) executed in {run.seconds:.0f} s")
    assert Path(run.prefix).resolve() == Path(sys.prefix).resolve(), (
        f"the kernel ran {run.prefix}, not this environment's {sys.prefix}: "
        "a 'python3' kernelspec elsewhere takes precedence"
    )
    code = [c for c in run.nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    required = list(FIGURES)
    if os.environ.get("CI") or locate("mnist") is not None:  # CI has MNIST: it must train
        required += MNIST_FIGURES
    missing = [name for name in required if name not in _figures(run.nb)]
    assert not missing, f"figures missing: {missing}"
    return run


@pytest.mark.slow
def test_the_notebook_runs_with_the_exercises_unanswered():
    """Top to bottom as stored: nothing crashes, every check says "not written yet", and
    says it as the stored outputs do (the check lines hold no number: any CPU prints them)."""
    run = _execute("stubs")
    lines = notebook.check_lines(run.nb)
    assert set(lines) == set(course.BY_KEY)
    for key, line in lines.items():
        assert line.startswith("○ ") and line.endswith("not written yet"), (key, line)
    assert lines == notebook.check_lines(_json(NOTEBOOK))


@pytest.mark.slow
def test_the_notebook_runs_with_the_solutions_filled_in():
    """Top to bottom with the reference solutions in the "your turn" cells: every check
    passes."""
    run = _execute("solutions")
    lines = notebook.check_lines(run.nb)
    assert set(lines) == set(course.BY_KEY)
    failed = {k: v for k, v in lines.items() if not v.startswith("✓ ") or "\n" in v}
    assert not failed, failed
