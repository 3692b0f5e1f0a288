"""The course's notebooks: run with the stubs or the solutions filled in, stored with their
outputs, and told stale when a cell or the library changed since.

A "your turn" cell and the check cell after it are marked in their metadata:

    {"tags": ["your-turn"], "jaxcalc": {"exercise": "stencil"}}   source: course.stub(...)
    {"tags": ["check"], "jaxcalc": {"exercise": "stencil"}}       source: print(course.check(...))

`fill` puts the stubs or the reference solutions into the "your turn" cells; `execute` runs
a notebook top to bottom in a kernel (nbclient, the `notebook` extra), with static figures
(`interactive.STATIC`), and returns what the kernel imported; `stamp` records, in each code
cell's metadata, the SHA-256 of the source it ran, and in the notebook's, that of every
jaxcalc module the kernel imported. `stale` compares those with the cells and the files as
they are now: no number is compared, so outputs stored on one CPU are not stale on another
(AVX-512 and AVX2 differ in the last bits, timings differ), yet any edit of a cell or of the
library they ran is caught.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import jaxcalc
from jaxcalc.course import BY_KEY, solution_source, stub
from jaxcalc.course.interactive import STATIC
from jaxcalc.validation import InputError

YOUR_TURN, CHECK = "your-turn", "check"
#: The folder holding the `jaxcalc` package: module paths are recorded relative to it.
ROOT = Path(jaxcalc.__file__).resolve().parent.parent

#: Appended to the notebook while it runs (and removed): which Python ran it, what it imported.
PROBE = """\
import json as _json, sys as _sys
print(_json.dumps({"prefix": _sys.prefix, "modules": sorted(
    m.__file__ for n, m in list(_sys.modules.items())
    if (n == "jaxcalc" or n.startswith("jaxcalc.")) and getattr(m, "__file__", None))}))"""


def source(cell: Any) -> str:
    """A cell's source as one string (nbformat stores a string or a list of lines)."""
    return _joined(cell["source"])


def _joined(text: str | list[str]) -> str:
    return text if isinstance(text, str) else "".join(text)


def sha256(text: str) -> str:
    """SHA-256 of text with its line endings made "\\n" (a checkout may use "\\r\\n")."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest()


def read(path: str | os.PathLike) -> Any:
    """The notebook at `path` (nbformat 4)."""
    import nbformat

    return nbformat.read(path, as_version=4)


def marked(nb: Any, tag: str) -> list[tuple[int, str]]:
    """(cell index, exercise key) of every code cell tagged `tag`."""
    return [
        (i, c["metadata"]["jaxcalc"]["exercise"])
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and tag in c["metadata"].get("tags", [])
    ]


def fill(nb: Any, answers: str) -> Any:
    """A copy of `nb` whose "your turn" cells hold the stubs (`answers="stubs"`, as the
    notebook is stored) or the reference solutions (`answers="solutions"`)."""
    if answers not in ("stubs", "solutions"):
        raise InputError(f"answers must be 'stubs' or 'solutions', got {answers!r}")
    out = copy.deepcopy(nb)
    for i, key in marked(out, YOUR_TURN):
        exercise = BY_KEY[key]
        text = stub(exercise) if answers == "stubs" else solution_source(exercise)
        out["cells"][i]["source"] = text.rstrip("\n")
    return out


class Run(NamedTuple):
    """A notebook executed: the notebook with its outputs, what ran it, how long it took."""

    nb: Any
    prefix: str  # sys.prefix of the kernel's Python
    modules: list[str]  # the jaxcalc modules the kernel imported, relative to ROOT
    seconds: float


def execute(nb: Any, *, cwd: str | os.PathLike, timeout: int = 600) -> Run:
    """Run a copy of `nb` top to bottom in a "python3" kernel started in `cwd`, figures
    static. nbclient's `CellExecutionError` (naming the cell, with its traceback) on error."""
    import nbclient
    import nbformat

    nb = copy.deepcopy(nb)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = nbclient.NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        coalesce_streams=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    old = os.environ.get(STATIC)
    os.environ[STATIC] = "1"  # the kernel inherits it: no widget, the static figure
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        if old is None:
            del os.environ[STATIC]
        else:
            os.environ[STATIC] = old
    seconds = time.perf_counter() - start
    probe = nb.cells.pop()
    text = "".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout")
    found = json.loads(text)
    modules = sorted(_relative(m) for m in found["modules"])
    return Run(nb, found["prefix"], modules, seconds)


def _relative(module: str) -> str:
    path = Path(module).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        raise InputError(
            f"the kernel imported jaxcalc from {path.parent}, not from {ROOT}: "
            "run the notebook in this checkout's environment"
        ) from None


def stamp(run: Run, *, answers: str) -> Any:
    """`run.nb` with the fingerprint `stale` checks: each code cell's source hash, and the
    hash of every jaxcalc module the kernel imported."""
    nb = run.nb
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.metadata.setdefault("jaxcalc", {})["source_sha256"] = sha256(source(cell))
    nb.metadata["jaxcalc"] = {
        "answers": answers,
        "sources": {m: sha256((ROOT / m).read_text(encoding="utf-8")) for m in run.modules},
    }
    return nb


def stale(nb: Any) -> list[str]:
    """What changed since the outputs of `nb` were stored, one line each (empty: fresh)."""
    meta = nb["metadata"].get("jaxcalc", {})
    if "sources" not in meta:
        return ["the notebook carries no record of its run (stored without outputs?)"]
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        recorded = cell["metadata"].get("jaxcalc", {}).get("source_sha256")
        if recorded != sha256(source(cell)) or cell.get("execution_count") is None:
            first = (source(cell).strip().splitlines() or [""])[0][:60]
            found.append(f"cell {i} changed since it ran: {first!r}")
    for module, digest in sorted(meta["sources"].items()):
        path = ROOT / module
        if not path.is_file():
            found.append(f"{module} is gone since the notebook ran")
        elif sha256(path.read_text(encoding="utf-8")) != digest:
            found.append(f"{module} changed since the notebook ran")
    return found


def check_lines(nb: Any) -> dict[str, str]:
    """Exercise key -> the line its check cell printed (its stdout, stripped)."""
    lines = {}
    for i, key in marked(nb, CHECK):
        outputs = nb["cells"][i].get("outputs", [])
        text = "".join(_joined(o.get("text", "")) for o in outputs if o.get("name") == "stdout")
        lines[key] = text.strip()
    return lines


def structure_problems(nb: Any) -> list[str]:
    """What is wrong with the course's structure: every exercise once, its check cell right
    after its "your turn" cell, the stub the library gives, the check cell calling it."""
    problems = []
    turns, checks = marked(nb, YOUR_TURN), marked(nb, CHECK)
    keys = [k for _, k in turns]
    if sorted(keys) != sorted(BY_KEY):
        problems.append(f"the exercises are {keys}, expected each of {list(BY_KEY)} once")
    code = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    after = {i: code[code.index(i) + 1] if code.index(i) + 1 < len(code) else None for i in code}
    check_at = dict(checks)
    for i, key in turns:
        if source(nb["cells"][i]).rstrip("\n") != stub(BY_KEY[key]).rstrip("\n"):
            problems.append(f"cell {i} does not hold course.stub for {key!r}")
        j = after[i]
        if j is None or check_at.get(j) != key:
            problems.append(f"the code cell after cell {i} is not the check of {key!r}")
        elif f"course.check({key!r})" not in source(nb["cells"][j]):
            problems.append(f"the check cell {j} does not call course.check({key!r})")
    return problems


__all__ = [
    "CHECK",
    "PROBE",
    "ROOT",
    "YOUR_TURN",
    "Run",
    "check_lines",
    "execute",
    "fill",
    "marked",
    "read",
    "sha256",
    "source",
    "stale",
    "stamp",
    "structure_problems",
]
