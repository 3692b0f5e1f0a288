"""The fused training step of the 2-layer network: a few Pallas kernels, on a GPU.

The hand-written backward pass knows every derivative and every buffer, so the forward
pass, the backward pass and Adam can be fused into three kernels (`jax.experimental.pallas`,
compiled by Triton on a GPU; in interpret mode they run anywhere, which is how CI checks
them). Where a step is bound by kernel launches (a GPU at small batch), fewer, larger
kernels are what a hand-written gradient buys over `jax.grad` + optax.

    kernel 1 `forward`    grid (B/bb, H/bh)   h1 = relu(x W1 + b1); partial logits per block
    kernel 2 `head`       grid (H/bh,)        softmax, loss, dL/dz2, dL/dz1; Adam on W2, b1, b2
    kernel 3 `update_w1`  grid (K/bk, H/bh)   dL/dW1 tile = xᵀ dL/dz1; Adam on the W1 tile

The parameters, both moments and the weight average live padded (`layout`) and are updated
in place (`input_output_aliases`, a donated state); padded entries stay exactly zero, so
the network trained is the unpadded one: its gradients are zero there (x and h1 are zero in
padded columns, padded logits are masked to −∞, padded batch rows get dL/dz2 = 0) and Adam
moves a zero parameter with a zero gradient and zero moments by zero.

Without distortions the kernels also gather each batch from the images, resident on the
device, and read their Adam coefficients from a table made once per epoch: between the
three kernels of a step XLA has nothing left to launch but the step counter.

Like JAX's own Pallas ops, this package knows nothing of the trainer: it takes arrays,
static sizes (`Layout`, `Blocks`), the optimiser's constants as one value (`Hyper`) and
`interpret` as arguments, and reads no environment variable. The adaptor from a training
run's `Config` and `TrainState` is `jaxcalc.training.fused_epoch`.

Modules: `layout` (block shapes, precision, padding), `adam` (the update of one tile),
`batch` (where a step's batch is read from), `call` (`pallas_call` over named operands),
`forward`, `head`, `update` (the kernels), `step` (the three in a row, the padded state).
"""

from jaxcalc.fused.adam import Group, Hyper, advance, coefficient_table
from jaxcalc.fused.batch import Source, resident
from jaxcalc.fused.head import Tally
from jaxcalc.fused.layout import (
    PRECISIONS,
    UNIT_ROUNDOFF,
    Blocks,
    Layout,
    default_blocks,
    pad_batch,
    triton_params,
)
from jaxcalc.fused.step import FusedState, groups, make_fused_step, padded, unpadded

__all__ = [
    "PRECISIONS",
    "UNIT_ROUNDOFF",
    "Blocks",
    "FusedState",
    "Group",
    "Hyper",
    "Layout",
    "Source",
    "Tally",
    "advance",
    "coefficient_table",
    "default_blocks",
    "groups",
    "make_fused_step",
    "pad_batch",
    "padded",
    "resident",
    "triton_params",
    "unpadded",
]
