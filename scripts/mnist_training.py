"""Train the 2-layer network on MNIST with the hand-written backward pass and optimiser.

A thin wrapper over `jaxcalc.train` (all logic lives in the library), reading top to
bottom like JAX's examples/mnist_classifier_fromscratch.py:

    python scripts/mnist_training.py                 # the default recipe, into runs/mnist
    python scripts/mnist_training.py --epochs 2 --hidden 128 --out runs/quick

Any `jaxcalc.train.Config` field can be set as --name value (see `jaxcalc train --help`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from jaxcalc import train
from jaxcalc.data import load
from jaxcalc.plots.training import save_training_figures
from jaxcalc.validation import DataError, InputError


def boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1", "yes")


# 1. The settings: the library's recipe, with any field overridden from the command line.
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
for field in dataclasses.fields(train.Config):
    kind = {"float": float, "str": str, "bool": boolean}.get(str(field.type), int)
    parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind)
parser.add_argument("--out", default=None, help="output folder (default runs/<dataset>)")
args = vars(parser.parse_args())
out = args.pop("out")
try:
    cfg = train.default_config(**{k: v for k, v in args.items() if v is not None})
except InputError as e:
    parser.error(str(e))
out = out or f"runs/{cfg.dataset}"
print(cfg)

# 2. The data: located (or downloaded) and verified; 5,000 training images held out.
try:
    data = load(cfg.dataset, val_size=cfg.val_size, val_fold=cfg.val_fold)
except (DataError, InputError) as e:
    sys.exit(f"mnist_training.py: error: {e}")
print(f"train {data.train_images.shape}, validation {data.val_images.shape}, "
      f"test {data.test_images.shape}")  # fmt: skip

# 3. Training: one jit-compiled lax.scan per epoch, a checkpoint after each.
try:
    result = train.fit(cfg, out, data=data)
except (InputError, train.Diverged, OSError) as e:
    sys.exit(f"mnist_training.py: error: {e}")

# 4. Results: metrics.json (written by fit) and the figures.
save_training_figures(
    out,
    result.metrics["history"],
    data.test_images,
    data.test_labels,
    result.test_predictions,
    result.params["W1"],
    data.classes,
)
m = result.metrics
print(f"test accuracy {100 * m['test_accuracy']:.2f}%  train {m['train_seconds']:.1f} s  "
      f"compile {m['compile_seconds']:.1f} s  ->  {out}/")  # fmt: skip
