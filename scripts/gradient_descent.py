"""Project 1: gradient descent from scratch — theory vs measurement, and optimiser paths.

    python scripts/gradient_descent.py --out figures/descent

The same as `jaxcalc descent` (all options alike); the logic lives in jaxcalc.descent,
jaxcalc.optim and jaxcalc.plots.descent.
"""

import sys

from jaxcalc.cli import main

if __name__ == "__main__":
    sys.exit(main(["descent", *sys.argv[1:]]))
