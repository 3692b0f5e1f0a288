"""Project 2: a 2-layer network trained with hand-written gradients on toy problems.

Two spirals and two moons (cross-entropy) and a 1-D curve (MSE), full-batch Adam in one
jitted lax.scan; saves the loss curves, decision boundaries and fitted curve as PNGs, and
checks the hand-written gradients it trained with against jax.grad.

    python scripts/neural_network.py [--out runs/neural_network] [--steps 2000]
"""

from pathlib import Path

import jax
import jax.numpy as jnp

from jaxcalc import mlp, toydata, toytrain
from jaxcalc.cli import Parser, positive_int
from jaxcalc.plots import save
from jaxcalc.plots.network import decision_boundary, fitted_curve, loss_curves

parser = Parser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("runs/neural_network"))
parser.add_argument("--steps", type=positive_int, default=2000)
args = parser.parse_args()
key = jax.random.key(0)
losses, trained = {}, {}

for name, make in (("spirals", toydata.spirals), ("moons", toydata.moons)):
    x, y = make(jax.random.fold_in(key, len(losses)))
    params, losses[name] = toytrain.fit(key, x, y, activation="tanh", steps=args.steps)
    trained[name] = params, x, y
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

# The gradients it trained with, checked: the hand-written backward pass against jax.grad,
# in float64 at the trained spirals network (float32 would only show its own rounding).
with jax.enable_x64(True):
    params, x, y = trained["spirals"]
    params, x = jax.tree.map(lambda a: a.astype(jnp.float64), (params, x))
    _, hand = mlp.loss_and_grad(params, x, y, activation="tanh")
    _, auto = mlp.loss_and_grad_autodiff(params, x, y, activation="tanh")
    errors = {k: float(jnp.linalg.norm(hand[k] - auto[k]) / jnp.linalg.norm(auto[k])) for k in hand}
print(
    "hand-written gradient vs jax.grad (spirals, float64), |a - r| / |r|: "
    + ", ".join(f"{k} {e:.1e}" for k, e in errors.items())
)
