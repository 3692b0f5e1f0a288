"""Project 2: a 2-layer network trained with hand-written gradients on toy problems.

Two spirals and two moons (cross-entropy) and a 1-D curve (MSE), full-batch Adam in one
jitted lax.scan; saves the loss curves, decision boundaries and fitted curve as PNGs and
prints one jitted training step's time with hand-written vs autodiff gradients.

    python scripts/neural_network.py [--out runs/neural_network] [--steps 2000]
"""

from pathlib import Path

import jax

from jaxcalc import mlp, toydata, toytrain
from jaxcalc.cli import Parser, positive_int
from jaxcalc.plots import save
from jaxcalc.plots.network import decision_boundary, fitted_curve, loss_curves

parser = Parser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("runs/neural_network"))
parser.add_argument("--steps", type=positive_int, default=2000)
args = parser.parse_args()
key = jax.random.key(0)
losses = {}

for name, make in (("spirals", toydata.spirals), ("moons", toydata.moons)):
    x, y = make(jax.random.fold_in(key, len(losses)))
    params, losses[name] = toytrain.fit(key, x, y, activation="tanh", steps=args.steps)
    acc = float(mlp.accuracy(params, x, y, activation="tanh"))
    print(f"{name}: loss {losses[name][0]:.4f} -> {losses[name][-1]:.4f}, accuracy {acc:.3f}")
    fig = decision_boundary(params, x, y, activation="tanh", title=f"{name}: accuracy {acc:.3f}")
    print("wrote", save(fig, args.out / f"{name}_boundary.png"))

x, y = toydata.curve(jax.random.fold_in(key, 2))
kw = {"activation": "tanh", "loss": "mse", "output": "identity"}
params, losses["curve (MSE)"] = toytrain.fit(key, x, y, steps=args.steps, **kw)
print(f"curve: loss {losses['curve (MSE)'][0]:.4f} -> {losses['curve (MSE)'][-1]:.5f}")
fig = fitted_curve(params, x, y, activation="tanh", output="identity")
print("wrote", save(fig, args.out / "curve_fit.png"))
print("wrote", save(loss_curves(losses), args.out / "loss_curves.png"))

times = toytrain.step_seconds(key)  # batch 128, 784-512-10, sigmoid, cross-entropy
hand, auto = times["hand-written"], times["autodiff"]
print(
    f"one jitted step (batch 128, 784-512-10, {jax.default_backend()}): hand-written "
    f"{hand * 1e3:.3f} ms, autodiff {auto * 1e3:.3f} ms, ratio {hand / auto:.2f}"
)
