"""Gradient-based optimisers written by hand, composed the optax way, bit-identical to optax.

An optimiser is a `GradientTransformation`, a NamedTuple of two pure functions, `init` and
`update`, built as a `chain` of small transformations (`transform.py`) exactly as optax's
aliases build theirs (`alias.py`): adamw = chain(scale_by_adam, add_decayed_weights,
scale_by_learning_rate). Names, arguments, defaults, states and floating-point operations
are optax's (`optax.sgd`, `optax.rmsprop`, `optax.adam`, `optax.adamw`), so each can be
checked step for step against optax:

    opt = adam(1e-3)
    state = opt.init(params)          # (ScaleByAdamState(count, mu, nu), EmptyState())
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)

`params` and `grads` are any pytree of arrays (the MLP's dict {"W1", "b1", "W2", "b2"}).
Updates come back already negated and scaled: params ← params + updates. A state is a
tuple of the transformations' states, NamedTuples of arrays named after the equations, so
`update` runs under `jit` and inside `lax.scan`. `learning_rate` is a float, or a schedule
`count -> float` evaluated at the number of updates made so far (0 on the first call), as
in optax; see `jaxcalc.schedules`. Symbols: g_t gradient, α_t learning rate, u_t update,
θ_t params.
"""

from jaxcalc.optim.alias import adam, adamw, rmsprop, sgd
from jaxcalc.optim.base import (
    EmptyState,
    GradientTransformation,
    MaskedNode,
    MaskedState,
    Params,
    ScalarOrSchedule,
    Schedule,
    apply_updates,
    chain,
    check_learning_rate,
    debias,
    identity,
    masked,
    safe_increment,
)
from jaxcalc.optim.transform import (
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    ScaleByScheduleState,
    TraceState,
    WeightDecaySchedule,
    add_decayed_weights,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_schedule,
    scale_by_stddev,
    trace,
)

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "MaskedNode",
    "MaskedState",
    "Params",
    "ScalarOrSchedule",
    "ScaleByAdamState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByScheduleState",
    "Schedule",
    "TraceState",
    "WeightDecaySchedule",
    "adam",
    "adamw",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "check_learning_rate",
    "debias",
    "identity",
    "masked",
    "rmsprop",
    "safe_increment",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_schedule",
    "scale_by_stddev",
    "sgd",
    "trace",
]
