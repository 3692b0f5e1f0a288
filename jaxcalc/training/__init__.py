"""The jit-compiled training run of the 2-layer network on MNIST / Fashion-MNIST.

One room per job: `config` (the settings and each data set's recipe), `preprocess` (the
images as the network reads them), `step` (the state, the optimiser, one step, the scan
epoch, predictions), `parallel` (the device mesh, replication), `processes` (a run over
several processes: joining, agreeing, the supervisor), `checkpoint`, `compile_cache`,
`fused_epoch` (the adaptor to the Pallas kernels of `jaxcalc.fused`), `fused_check` (the
fused step against the XLA step, numerically) and `loop` (`fit`: prepare → compile →
epochs → finish). The public names of `config`, `step`, `parallel`, `checkpoint` and `loop`
are re-exported here.
"""

from jaxcalc.training.checkpoint import (
    CHECKPOINT,
    ArchitectureError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from jaxcalc.training.config import (
    DATASET_DEFAULTS,
    GRADS,
    OPTIMIZERS,
    SCHEDULES,
    Config,
    default_config,
)
from jaxcalc.training.loop import Diverged, Result, fit
from jaxcalc.training.parallel import BATCH_AXIS, check_batch, make_mesh, replicate
from jaxcalc.training.step import (
    StepStats,
    TrainState,
    eval_params,
    fresh_state,
    init_state,
    learning_rate,
    make_epoch,
    make_optimizer,
    make_predict,
    make_step,
    run_keys,
    running_accuracy,
    weight_decay,
)

__all__ = [
    "BATCH_AXIS",
    "CHECKPOINT",
    "ArchitectureError",
    "DATASET_DEFAULTS",
    "GRADS",
    "OPTIMIZERS",
    "SCHEDULES",
    "Config",
    "Diverged",
    "Result",
    "StepStats",
    "TrainState",
    "check_batch",
    "default_config",
    "eval_params",
    "fit",
    "fresh_state",
    "init_state",
    "learning_rate",
    "load_checkpoint",
    "make_epoch",
    "make_mesh",
    "make_optimizer",
    "make_predict",
    "make_step",
    "read_checkpoint",
    "replicate",
    "run_keys",
    "running_accuracy",
    "save_checkpoint",
    "weight_decay",
]
