#!/usr/bin/env bash
# Regenerate the README's figures under docs/ and print every number it quotes (about 6
# minutes on the 2-core Zen 5 CPU). Needs MNIST (see the README) and, for the last run,
# Fashion-MNIST; the training run's figures are copied from runs/docs/. The gradient
# checkers' benchmark is apart: jaxcalc bench --gradcheck (about 10 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
jaxcalc derivatives --out docs/derivatives
jaxcalc descent --out docs/descent
python scripts/neural_network.py --out docs/network
python scripts/course_figures.py --out docs/course
jaxcalc train --out runs/docs
mkdir -p docs/mnist && cp runs/docs/*.png docs/mnist/
jaxcalc bench --epochs 9 --plot docs/bench/bench.png --json docs/bench/bench.json
jaxcalc bench --gradient-cost --plot docs/bench/gradient_cost.png
jaxcalc hessian --checkpoint runs/docs/checkpoint.npz --top 5 --trace --density --ggn --out docs/hessian
jaxcalc hessian --sharpness --lr 0.1 0.2 0.3 --steps 2000 --out docs/hessian
jaxcalc bench --hvp
jaxcalc exercises
jaxcalc gradcheck
jaxcalc train --dataset fashion-mnist --out runs/fashion
mkdir -p docs/fashion && cp runs/fashion/curves.png runs/fashion/confusion.png docs/fashion/
