"""Re-run the course's notebooks top to bottom and store them with their outputs.

Each notebook under notebooks/ runs in a fresh kernel of this Python, with the "your turn"
cells as stubs (as a learner first sees them) and static figures; it is stored with its
outputs and a record of the cells and jaxcalc modules it ran, which `tests/test_notebook.py`
compares with the files to tell stale outputs. Needs the notebook extra and MNIST
(`$JAXCALC_DATA_DIR/mnist/` or `data/mnist/`). About a minute and a half per run on a 2-core CPU.

    python scripts/run_notebooks.py [notebooks/02_calculus_gradients.ipynb ...]
"""

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError

from jaxcalc import data
from jaxcalc.course import notebook
from jaxcalc.files import atomic_write

ROOT = Path(__file__).resolve().parent.parent
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("paths", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
args = parser.parse_args()

if data.locate("mnist") is None:
    sys.exit("MNIST not found: set JAXCALC_DATA_DIR to a folder holding mnist/ (see the README)")
for path in args.paths or sorted((ROOT / "notebooks").glob("*.ipynb")):
    nb = notebook.fill(notebook.read(path), "stubs")
    try:
        run = notebook.execute(nb, cwd=path.parent)
    except CellExecutionError as e:  # its text names the cell and holds the cell's traceback
        sys.exit(f"{path}: a cell failed, nothing stored\n{e}")
    if Path(run.prefix).resolve() != Path(sys.prefix).resolve():
        sys.exit(f"the python3 kernel ran {run.prefix}, not {sys.prefix}: install ipykernel here")
    stored = notebook.stamp(run, answers="stubs")
    text = nbformat.writes(stored).encode() + b"\n"
    atomic_write(path, lambda f, text=text: f.write(text))
    print(
        f"{path}: ran in {run.seconds:.0f} s, stored with outputs ({path.stat().st_size:,} bytes)"
    )
