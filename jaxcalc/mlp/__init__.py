"""The 2-layer network of the chapter, to second order.

- `network`: init, forward, the hand-written backward pass and its autodiff twin, predict;
- `second_order`: Hessian-vector products by Pearlmutter's R-operator (`hvp`), the
  Gauss-Newton product (`ggn_vp`), the input Jacobian ∂z2/∂x, and their autodiff twins.

The API of both is re-exported here: `jaxcalc.mlp.loss_and_grad`, `jaxcalc.mlp.hvp`, and
`Net`, the network's static configuration (activation, loss, output) as one value. The
building blocks that `second_order` shares with `network` (`check_args`, `forward_unchecked`,
`output_grad`, `backprop`, each taking a `Net` first; `activation_grad`) stay in their
module: patch `jaxcalc.mlp.network.activation_grad`, not `jaxcalc.mlp.activation_grad`, to
plant a bug in the backward pass.
"""

from jaxcalc.mlp.network import (
    HIDDEN_ACTIVATIONS,
    INITS,
    LOSSES,
    OUTPUTS,
    PARAM_NAMES,
    Cache,
    Net,
    Params,
    accuracy,
    backward,
    forward,
    init_params,
    loss_and_grad,
    loss_and_grad_autodiff,
    loss_fn,
    loss_grad_and_logits,
    loss_grad_and_logits_autodiff,
    predict,
)
from jaxcalc.mlp.second_order import (
    ggn_vp,
    ggn_vp_autodiff,
    hvp,
    hvp_autodiff,
    input_jacobian,
    input_jacobian_autodiff,
)

__all__ = [
    "HIDDEN_ACTIVATIONS",
    "INITS",
    "LOSSES",
    "OUTPUTS",
    "PARAM_NAMES",
    "Cache",
    "Net",
    "Params",
    "accuracy",
    "backward",
    "forward",
    "ggn_vp",
    "ggn_vp_autodiff",
    "hvp",
    "hvp_autodiff",
    "init_params",
    "input_jacobian",
    "input_jacobian_autodiff",
    "loss_and_grad",
    "loss_and_grad_autodiff",
    "loss_fn",
    "loss_grad_and_logits",
    "loss_grad_and_logits_autodiff",
    "predict",
]
