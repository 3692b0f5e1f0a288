"""From the training state to the fused layout and back, so that everything outside the
fused epoch (checkpoints, evaluation, `metrics.json`, resuming) sees the XLA path's state.

`TrainState(params, opt_state, avg_params, step)` holds `mlp.Params` and the optimiser's
state as `jaxcalc.optim` builds it; the fused step needs Adam's moments m and v, found in
that state as the one NamedTuple with fields `mu` and `nu` (optax's `ScaleByAdamState`,
`optim.AdamState`), wherever a `chain` puts it. On the way back every `count` of the
optimiser's state advances by the number of steps taken, as the steps of `optim` would
have advanced it (saturating at the int32 maximum).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxcalc.fused.adam import advance
from jaxcalc.fused.layout import Layout, pad_tree, unpad_tree
from jaxcalc.fused.step import FusedState
from jaxcalc.training.step import TrainState
from jaxcalc.validation import InputError


def _is_namedtuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _is_adam(node: Any) -> bool:
    return _is_namedtuple(node) and {"mu", "nu"} <= set(node._fields)


def _rebuild(node: Any, fn: Callable[[Any], Any]) -> Any:
    """`node` with `fn` applied to every NamedTuple in it, innermost first."""
    if _is_namedtuple(node):
        return fn(type(node)(*(_rebuild(child, fn) for child in node)))
    if isinstance(node, (tuple, list)):
        return type(node)(_rebuild(child, fn) for child in node)
    if isinstance(node, dict):
        return {k: _rebuild(v, fn) for k, v in node.items()}
    return node


def adam_state(opt_state: Any) -> Any:
    """The one node of `opt_state` with Adam's moments (fields `count`, `mu`, `nu`)."""
    found = [n for n in jax.tree.leaves(opt_state, is_leaf=_is_adam) if _is_adam(n)]
    if len(found) != 1 or "count" not in found[0]._fields:
        raise InputError(
            "the fused step needs an Adam optimiser state (count, mu, nu); "
            f"found {len(found)} in {type(opt_state).__name__}"
        )
    return found[0]


def to_fused(state: TrainState, layout: Layout) -> FusedState:
    """The fused step's padded state made from a `TrainState` of the XLA path."""
    bad = {k: str(v.dtype) for k, v in state.params.items() if v.dtype != jnp.float32}
    if bad:
        raise InputError(f"the fused step trains float32 parameters, got {bad}")
    adam = adam_state(state.opt_state)
    avg = None if state.avg_params is None else pad_tree(state.avg_params, layout)
    return FusedState(
        pad_tree(state.params, layout), pad_tree(adam.mu, layout), pad_tree(adam.nu, layout), avg
    )


def from_fused(fused: FusedState, like: TrainState, layout: Layout, steps: int) -> TrainState:
    """The `TrainState` after `steps` fused updates that started from `like`."""
    mu, nu = unpad_tree(fused.mu, layout), unpad_tree(fused.nu, layout)

    def put(node: Any) -> Any:
        if _is_adam(node):
            node = node._replace(mu=mu, nu=nu)
        if "count" in node._fields:
            node = node._replace(count=advance(node.count, steps))
        return node

    avg = None if fused.avg is None else unpad_tree(fused.avg, layout)
    return TrainState(
        unpad_tree(fused.params, layout),
        _rebuild(like.opt_state, put),
        avg,
        like.step + steps,
    )
