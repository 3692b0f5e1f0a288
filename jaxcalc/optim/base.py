"""What every transformation shares: the `(init, update)` pair, `chain`, `masked`, pieces.

optax's `base.py`, `combine.py`, `masked` and the tree helpers its transformations use,
with the same names: `GradientTransformation`, `EmptyState`, `identity`, `chain`, `masked`,
`apply_updates`, `safe_increment`; plus `debias` (optax's `tree_bias_correction`) and the
argument checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxcalc.validation import InputError, check_nonnegative_finite, check_positive_finite

Params = Any  # a pytree of arrays
Schedule = Callable[[jax.Array], Any]
ScalarOrSchedule = float | Schedule


class GradientTransformation(NamedTuple):
    """A pair of pure functions, `init` and `update`: what every optimiser is.

    `init(params) -> state`; `update(updates, state, params=None) -> (updates, state)`.
    An optimiser is a `chain` of them, and its state the tuple of their states.
    """

    init: Callable[[Params], Any]
    update: Callable[..., tuple[Params, Any]]


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


def identity() -> GradientTransformation:
    """u = g: passes the updates through (a placeholder in a chain, e.g. no momentum)."""
    return GradientTransformation(
        lambda params: EmptyState(), lambda updates, state, params=None: (updates, state)
    )


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply `transforms` in order, each to the updates the one before returned.

    The state is the tuple of the transformations' states, in the same order.

    Example:
        >>> opt = chain(scale_by_adam(), scale_by_learning_rate(1e-3))  # = adam(1e-3)
        >>> state = opt.init(params)  # (ScaleByAdamState(count, mu, nu), EmptyState())
    """
    inits, updates_fns = zip(*transforms, strict=True) if transforms else ((), ())

    def init(params: Params) -> tuple:
        return tuple(fn(params) for fn in inits)

    def update(updates: Params, state: tuple, params: Params = None) -> tuple[Params, tuple]:
        if len(state) != len(updates_fns):
            n = len(updates_fns)
            raise InputError(f"a chain of {n} needs a state of {n} (its init's), got {len(state)}")
        new_state = []
        for fn, s in zip(updates_fns, state, strict=True):
            updates, s = fn(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


class MaskedState(NamedTuple):
    inner_state: Any  # the state of the masked transformation, for the leaves it sees


class MaskedNode(NamedTuple):
    """Stands in for a leaf left out by a mask: an empty pytree, which tree maps skip."""


def masked(inner: GradientTransformation, mask: Any) -> GradientTransformation:
    """Apply `inner` to the leaves where `mask` is True; pass the others through unchanged.

    Args:
        inner: the transformation to apply to some leaves.
        mask: a pytree of bools with the structure of (a prefix of) the params, or a
            function of the params (of the updates, in `update`) that returns one.

    Returns:
        A `GradientTransformation`; its state is `MaskedState(inner_state)`, where the inner
        state holds only the leaves the mask keeps.
    """

    def keep(tree: Params, mask_tree: Any) -> Params:
        return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)

    def init(params: Params) -> MaskedState:
        mask_tree = mask(params) if callable(mask) else mask
        return MaskedState(inner.init(keep(params, mask_tree)))

    def update(updates: Params, state: MaskedState, params: Params = None):
        mask_tree = mask(updates) if callable(mask) else mask
        kept_params = None if params is None else keep(params, mask_tree)
        new, inner_state = inner.update(keep(updates, mask_tree), state.inner_state, kept_params)
        updates = jax.tree.map(lambda m, n, u: n if m else u, mask_tree, new, updates)
        return updates, MaskedState(inner_state)

    return GradientTransformation(init, update)


def apply_updates(params: Params, updates: Params) -> Params:
    """θ ← θ + u, leaf by leaf, keeping each parameter's dtype (as `optax.apply_updates`)."""
    return jax.tree.map(
        lambda p, u: jnp.asarray(p + u).astype(jnp.asarray(p).dtype), params, updates
    )


def safe_increment(count: jax.Array) -> jax.Array:
    """count + 1, saturating at the int32 maximum instead of wrapping round."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def zero_count() -> jax.Array:
    """A step counter at 0 (int32), as every counting state starts."""
    return jnp.zeros([], jnp.int32)


@functools.partial(jax.jit, inline=True)
def debias(moment: Params, decay: Any, count: jax.Array) -> Params:
    """m̂ = m / (1 − decay^count): the bias correction of a moving average started at 0.

    With m_t = decay·m_{t−1} + (1 − decay)·x_t and m_0 = 0, m_t / (1 − decay^t) is a
    weighted mean of x_1 … x_t (Adam's m̂ and v̂; a weight average's too). The correction
    is computed in JAX's default float (float32, float64 under x64), and only then cast to
    each leaf's dtype (in bfloat16, decay^count would round to 1 and divide by 0).

    Compiled (`jax.jit(inline=True)`, as optax compiles its `tree_bias_correction`), even
    when called eagerly: 1 − decay^count loses digits in float32, and compiled it rounds the
    same way eagerly and under `jit`, and the same as optax, bit for bit (uncompiled, an
    eager Adam drifts from optax's by ~1e-6 in float32 within 50 steps).

    Args:
        moment: m, a pytree of arrays.
        decay: the moving average's decay (β₁, β₂, an EMA's decay).
        count: t ≥ 1, the number of averaged values (an int32 array).

    Returns:
        m̂, shaped like `moment`.
    """
    correction = 1 - decay**count
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)


def check(check_fn: Callable, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
    """`check_fn(name, value, ...)` (from `jaxcalc.validation`) unless `value` is traced.

    Hyperparameters may come from inside `jit` (traced); those are left unchecked.
    """
    if not isinstance(value, jax.core.Tracer):
        check_fn(name, value, *args, **kwargs)


def check_learning_rate(learning_rate: ScalarOrSchedule, name: str = "learning_rate") -> None:
    """A float must be positive and finite; a schedule must give a finite rate ≥ 0 at step 0."""
    if callable(learning_rate):
        rate = learning_rate(zero_count())
        check(check_nonnegative_finite, f"{name} schedule's rate at step 0", rate)
    else:
        check(check_positive_finite, name, learning_rate)
