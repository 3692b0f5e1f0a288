"""Gradient descent from scratch, theory against measurement: the chapter's Project 1.

Part 1 descends f(x) = x² − 2x + 3 with the update written out, x ← x − α f'(x), and
compares the measured contraction |x_t − x*| / |x_(t−1) − x*| with theory |1 − 2aα|.
Part 2 runs five optimisers of `jaxcalc.optim` (gradient descent, momentum, Nesterov,
RMSprop and Adam) on an ill-conditioned bowl and on Rosenbrock's valley, and draws both
figures (`jaxcalc.plots.descent`).
`jaxcalc descent` does the same with every option; this is its core.

    python scripts/gradient_descent.py [--out runs/descent]
"""

import argparse
from pathlib import Path

import numpy as np

from jaxcalc import descent
from jaxcalc.plots import save
from jaxcalc.plots.descent import learning_rate_figure, paths_figure

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("runs/descent"))
args = parser.parse_args()

# Part 1. f(x) = a x² + b x + c, f'(x) = 2ax + b, minimum x* = −b / (2a).
a, b, c, x0 = 1.0, -2.0, 3.0, 4.0
f_prime = lambda x: 2 * a * x + b  # noqa: E731 - by hand (jax.grad gives the same)
x_star = -b / (2 * a)
print(f"f(x) = x^2 - 2x + 3, x* = {x_star}: stable for alpha < 1/a = {1 / a}")
for alpha in (0.1, 0.4, 0.8, 1.05):
    x, errors = x0, [abs(x0 - x_star)]
    for _ in range(25):
        x = x - alpha * f_prime(x)  # the whole algorithm
        errors.append(abs(x - x_star))
    theory = abs(1 - 2 * a * alpha)
    measured = descent.measured_rate(np.array(errors), floor=1e-12)  # above rounding
    print(f"alpha {alpha:<5} theory {theory:.6f}  measured {measured:.6f}  final x {x:.4g}")

# Part 2. The same rule on 2-D surfaces, against momentum and the other optimisers.
panels = []
for name in ("bowl", "rosenbrock"):
    surf = descent.surface(name)
    results = descent.compare(surf)
    panels.append((surf, results))
    for method, res in results.items():
        dist = float(np.linalg.norm(res.trajectory[-1] - surf.minimum))
        print(f"{surf.name:<24} {method:<18} final f {res.values[-1]:.3e}  |x - x*| {dist:.3e}")

runs = descent.learning_rate_study(a, b, c, x0, [0.1, 0.4, 0.8, 1.05], 25)
print("wrote", save(learning_rate_figure(runs, a), args.out / "learning_rates.png"))
print("wrote", save(paths_figure(panels), args.out / "paths.png"))
