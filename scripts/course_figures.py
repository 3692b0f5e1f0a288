"""The course's figures, with the numbers behind them (about a minute on a 2-core CPU).

Backprop as a graph (a neuron in `jaxcalc.scalar`), the activations and their derivatives,
gradient norms through 15 layers, gradient descent against heavy ball at κ = 1000 and
across κ, Adam on aligned and turned bowls, and the chapter's network trained on 10,000
MNIST images (needs MNIST: see the README) against the ReLU/Adam recipe.

    python scripts/course_figures.py [--out docs/course]
"""

import argparse
import time
from pathlib import Path

import jax

from jaxcalc import chapter_network, convergence, data, gradient_flow, optim
from jaxcalc.plots import save
from jaxcalc.plots.activations import activations_figure, gradient_flow_figure
from jaxcalc.plots.chapter_network import training_figure
from jaxcalc.plots.convergence import axes_figure, rates_figure
from jaxcalc.plots.graph import graph_figure
from jaxcalc.scalar import Value

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("docs/course"))
args = parser.parse_args()

# Backprop as a graph: micrograd's neuron, o = tanh(x1 w1 + x2 w2 + b).
x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
w1, w2, b = Value(-3.0, label="w1"), Value(1.0, label="w2"), Value(6.8813735870195432, label="b")
n = x1 * w1 + x2 * w2 + b
n.label = "n"
o = n.tanh()
o.label = "o"
o.backward()
print(f"neuron: o = {o.data:.4f}; do/dx1 = {x1.grad:.4f}, do/dw1 = {w1.grad:.4f}")
print("wrote", save(graph_figure(o, title="o = tanh(x1·w1 + x2·w2 + b), after o.backward()"),
                    args.out / "graph.png"))  # fmt: skip

# Activations, and the gradient through depth.
print("wrote", save(activations_figure(), args.out / "activations.png"))
flows = gradient_flow.gradient_flow_study(depth=15, width=64, batch=128)
for f in flows:
    print(f"{f.activation:8} {f.init:9} |dL/dW_1| / |dL/dW_15| = {f.first_over_last:.2e}")
print("wrote", save(gradient_flow_figure(flows), args.out / "gradient_flow.png"))

# Gradient descent against heavy ball, measured against theory.
runs = convergence.rate_study(1000.0, steps=600)
for r in runs:
    print(f"kappa 1000  {r.method:36} measured {r.measured:.6f}  theory {r.theory:.6f}")
by_kappa = convergence.rates_against_kappa()
for kappa, gd, hb in by_kappa:
    print(f"kappa {kappa:<6g} gradient descent {gd:.6f}  heavy ball {hb:.6f} "
          f"(theory {convergence.heavy_ball_rate(kappa):.6f})")  # fmt: skip
print("wrote", save(rates_figure(runs, 1000.0, by_kappa), args.out / "momentum_rates.png"))

# What Adam's per-coordinate scaling buys.
axes = convergence.axes_study()
for a in axes:
    print(f"kappa {a.kappa:<6g} angle {a.angle:.2f}  steps to 1%: {a.steps_to_1pct}")
print("wrote", save(axes_figure(axes, 100.0), args.out / "adam_axes.png"))

# The chapter's network on 10,000 MNIST images: each recipe's rate chosen on validation.
d = data.load("mnist", allow_download=False)
train_set = chapter_network.prepare(d.train_images[:10_000], d.train_labels[:10_000])
val_set = chapter_network.prepare(d.val_images, d.val_labels)
test_set = chapter_network.prepare(d.test_images, d.test_labels)
settings = {"epochs": 10, "batch_size": 10}
sweep = {
    "sigmoid + MSE, gradient descent": [(r, dict(loss="mse", learning_rate=r)) for r in (1, 3, 6)],
    "sigmoid + cross-entropy, gradient descent": [
        (r, dict(loss="cross_entropy", learning_rate=r)) for r in (0.1, 0.3, 1)
    ],
    "ReLU + cross-entropy, Adam": [
        (r, dict(loss="cross_entropy", activation="relu", optimizer=optim.adam(r)))
        for r in (3e-4, 1e-3, 3e-3)
    ],
}
for name, options in sweep.items():
    for rate, kw in options:
        params = chapter_network.init(jax.random.key(0), activation=kw.get("activation", "sigmoid"))
        _, history = chapter_network.train(params, train_set, val_set, **settings, **kw)
        print(f"sweep {name:42} α = {rate:<6g} validation {100 * history[-1].val_accuracy:.2f}%")
histories = {}
for name, kw in chapter_network.RECIPES.items():
    params = chapter_network.init(jax.random.key(0), activation=kw.get("activation", "sigmoid"))
    start = time.perf_counter()
    params, histories[name] = chapter_network.train(params, train_set, val_set, **settings, **kw)
    seconds = time.perf_counter() - start
    activation = kw.get("activation", "sigmoid")
    test = float(chapter_network.accuracy(params, *test_set, activation=activation))
    print(f"{name:52} {seconds:4.1f} s  validation {100 * histories[name][-1].val_accuracy:.2f}%"
          f"  test {100 * test:.2f}%")  # fmt: skip
title = "784-30-10 on 10,000 MNIST images, 10 epochs of mini-batches of 10"
print("wrote", save(training_figure(histories, title=title), args.out / "chapter_network.png"))
