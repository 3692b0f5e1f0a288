"""Time training several ways, or what a gradient costs: a thin wrapper over `jaxcalc bench`.

    python scripts/benchmark.py                              # every implementation, CPU
    python scripts/benchmark.py --device gpu --json bench.json
    python scripts/benchmark.py --gradient-cost              # finite differences vs reverse mode

Every option of `jaxcalc bench --help` applies.
"""

from __future__ import annotations

import sys

from jaxcalc.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
