"""The small gradient transformations that optimisers are chained from, as in optax.

Each is a `GradientTransformation` with optax's name, arguments, defaults, state and
floating-point operations (in the same order, so a chain is bit-identical to optax's):

    trace                   m_t = g_t + μ m_{t−1}                   (momentum)
    scale_by_rms            g_t / sqrt(v_t + ε),  v_t an EMA of g²   (RMSprop)
    scale_by_stddev         g_t / sqrt(v_t − m̄_t² + ε)             (centered RMSprop)
    scale_by_adam           m̂_t / (sqrt(v̂_t + ε̄) + ε)              (Adam)
    add_decayed_weights     g_t + λ θ_t                             (decoupled weight decay)
    scale                   s g_t
    scale_by_schedule       s(t) g_t
    scale_by_learning_rate  −α_t g_t                                (a float or a schedule)

Symbols: g_t the incoming updates (the gradient, first in a chain), θ_t the params.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxcalc.optim.base import (
    EmptyState,
    GradientTransformation,
    Params,
    ScalarOrSchedule,
    Schedule,
    check,
    check_learning_rate,
    debias,
    identity,
    masked,
    safe_increment,
    zero_count,
)
from jaxcalc.validation import InputError, check_finite, check_in_range, check_nonnegative_finite


def _zeros(params: Params, dtype=None) -> Params:
    return jax.tree.map(lambda p: jnp.zeros_like(p, dtype=dtype), params)


def _cast(tree: Params, dtype) -> Params:
    return tree if dtype is None else jax.tree.map(lambda t: t.astype(dtype), tree)


def _ema(updates: Params, moment: Params, decay: Any, order: int) -> Params:
    """m ← (1 − decay)·g^order + decay·m, leaf by leaf (optax's `update_moment`)."""
    return jax.tree.map(lambda g, m: (1 - decay) * (g**order) + decay * m, updates, moment)


def _canonical(dtype) -> Any:
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


# --- momentum ----------------------------------------------------------------------------


class TraceState(NamedTuple):
    trace: Params  # m_t


def trace(
    decay: float, nesterov: bool = False, accumulator_dtype: Any = None
) -> GradientTransformation:
    """Momentum: a trace of past updates, m_t = g_t + μ m_{t−1} (m_0 = 0).

        u_t = m_t                (nesterov=False)
        u_t = g_t + μ m_t        (nesterov=True)

    Args:
        decay: μ ≥ 0.
        nesterov: Nesterov's look-ahead form.
        accumulator_dtype: dtype of m (None: that of the updates).

    Returns:
        A `GradientTransformation`; its state is `TraceState(trace)`.

    Unlike an EMA, the trace does not scale g_t by (1 − μ): at constant g it grows to g/(1 − μ).
    """
    check(check_nonnegative_finite, "decay", decay)
    accumulator_dtype = _canonical(accumulator_dtype)

    def init(params: Params) -> TraceState:
        return TraceState(_zeros(params, accumulator_dtype))

    def update(updates: Params, state: TraceState, params: Params = None):
        del params
        f = lambda g, t: g + decay * t  # noqa: E731
        new_trace = jax.tree.map(f, updates, state.trace)
        updates = jax.tree.map(f, updates, new_trace) if nesterov else new_trace
        return updates, TraceState(_cast(new_trace, accumulator_dtype))

    return GradientTransformation(init, update)


# --- scaling by a moving average of g² ---------------------------------------------------


class ScaleByRmsState(NamedTuple):
    nu: Params  # v_t


class ScaleByRmsWithCountState(NamedTuple):
    count: jax.Array  # t, for the bias correction
    nu: Params


class ScaleByRStdDevState(NamedTuple):
    mu: Params  # m̄_t, the moving average of g
    nu: Params


class ScaleByRStdDevWithCountState(NamedTuple):
    count: jax.Array
    mu: Params
    nu: Params


def scale_by_rms(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    """Divide by the root of a moving average of g² (RMSprop's scaling; see `rmsprop`).

        v_t = ρ v_{t−1} + (1 − ρ) g_t²      (v_0 = `initial_scale`)
        u_t = g_t / sqrt(v_t + ε)           (or g_t / (sqrt(v_t) + ε) if not eps_in_sqrt)

    With `bias_correction`, v_t / (1 − ρ^t) replaces v_t. Args as in `rmsprop`.

    Returns:
        A `GradientTransformation`; its state is `ScaleByRmsState(nu)`, or
        `ScaleByRmsWithCountState(count, nu)` with `bias_correction`.
    """
    return _scale_by_second_moment(
        decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered=False
    )


def scale_by_stddev(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    """Divide by a running standard deviation of g (centered RMSprop; see `rmsprop`).

        m̄_t = ρ m̄_{t−1} + (1 − ρ) g_t,   v_t as in `scale_by_rms`
        u_t = g_t / sqrt(v_t − m̄_t² + ε)   (or g_t / (sqrt(v_t − m̄_t²) + ε))

    Returns:
        A `GradientTransformation`; its state is `ScaleByRStdDevState(mu, nu)`, or
        `ScaleByRStdDevWithCountState(count, mu, nu)` with `bias_correction`.
    """
    return _scale_by_second_moment(
        decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered=True
    )


def _scale_by_second_moment(decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered):
    """`scale_by_rms` (centered=False) and `scale_by_stddev` (centered=True)."""
    check(check_in_range, "decay", decay, 0.0, 1.0, closed=True)
    check(check_nonnegative_finite, "eps", eps)
    check(check_nonnegative_finite, "initial_scale", initial_scale)
    if centered:
        state_type = ScaleByRStdDevWithCountState if bias_correction else ScaleByRStdDevState
    else:
        state_type = ScaleByRmsWithCountState if bias_correction else ScaleByRmsState

    def make_state(count, mu, nu):  # the fields this state type has, of count, mu, nu
        fields = {"count": count, "mu": mu, "nu": nu}
        return state_type(*(fields[name] for name in state_type._fields))

    def init(params: Params):
        nu = jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params)
        return make_state(zero_count(), _zeros(params) if centered else None, nu)

    def update(updates: Params, state, params: Params = None):
        del params
        mu = _ema(updates, state.mu, decay, 1) if centered else None
        nu = _ema(updates, state.nu, decay, 2)
        count = safe_increment(state.count) if bias_correction else None
        v = debias(nu, decay, count) if bias_correction else nu
        if centered:  # v̂ − m̄²: the variance instead of the mean square
            m = debias(mu, decay, count) if bias_correction else mu
            v = jax.tree.map(lambda m_, v_: v_ - m_ * m_, m, v)
        if eps_in_sqrt:
            scaling = jax.tree.map(lambda v_: jax.lax.rsqrt(v_ + eps), v)
        else:
            scaling = jax.tree.map(lambda v_: 1 / (jnp.sqrt(v_) + eps), v)
        updates = jax.tree.map(lambda s, g: s * g, scaling, updates)
        return updates, make_state(count, mu, nu)

    return GradientTransformation(init, update)


# --- Adam --------------------------------------------------------------------------------


class ScaleByAdamState(NamedTuple):
    count: jax.Array  # t, updates made so far (int32)
    mu: Params  # m_t, first moment
    nu: Params  # v_t, second moment


def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """Adam's scaling: bias-corrected momentum over the root of a moving average of g².

        m_t = β₁ m_{t−1} + (1 − β₁) g_t,   v_t = β₂ v_{t−1} + (1 − β₂) g_t²
        m̂_t = m_t / (1 − β₁^t)
              (nesterov: β₁ m_t / (1 − β₁^{t+1}) + (1 − β₁) g_t / (1 − β₁^t))
        v̂_t = v_t / (1 − β₂^t)
        u_t = m̂_t / (sqrt(v̂_t + ε̄) + ε)

    Args as in `adam` (which chains this with `scale_by_learning_rate`).

    Returns:
        A `GradientTransformation`; its state is `ScaleByAdamState(count, mu, nu)`.
    """
    check(check_in_range, "b1", b1, 0.0, 1.0)
    check(check_in_range, "b2", b2, 0.0, 1.0)
    check(check_nonnegative_finite, "eps", eps)
    check(check_nonnegative_finite, "eps_root", eps_root)
    mu_dtype = _canonical(mu_dtype)

    def init(params: Params) -> ScaleByAdamState:
        return ScaleByAdamState(zero_count(), _zeros(params, mu_dtype), _zeros(params))

    def update(updates: Params, state: ScaleByAdamState, params: Params = None):
        del params
        mu = _ema(updates, state.mu, b1, 1)
        nu = _ema(updates, state.nu, b2, 2)
        count = safe_increment(state.count)
        if nesterov:
            mu_hat = jax.tree.map(
                lambda m, g: b1 * m + (1 - b1) * g,
                debias(mu, b1, safe_increment(count)),
                debias(updates, b1, count),
            )
        else:
            mu_hat = debias(mu, b1, count)
        nu_hat = debias(nu, b2, count)
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        nu = jax.tree.map(lambda v, v0: v.astype(v0.dtype), nu, state.nu)
        return updates, ScaleByAdamState(count, _cast(mu, mu_dtype), nu)

    return GradientTransformation(init, update)


# --- weight decay ------------------------------------------------------------------------


class WeightDecaySchedule(NamedTuple):
    count: jax.Array  # t, the weight-decay schedule's step


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0, mask: Any = None
) -> GradientTransformation:
    """Decoupled weight decay: u_t = g_t + λ_t θ_t (before the learning rate, as in AdamW).

    Args:
        weight_decay: λ ≥ 0, a float or a schedule `count -> λ_t`.
        mask: None (decay every parameter), or a pytree of bools with the structure of (a
            prefix of) the params, or a function params -> such a pytree; `True` where the
            decay applies (e.g. weights but not biases). See `base.masked`.

    Returns:
        A `GradientTransformation` whose `update` needs `params`; its state is
        `EmptyState()`, or `WeightDecaySchedule(count)` for a schedule, inside a
        `MaskedState` with a mask.
    """
    if callable(weight_decay):
        check_learning_rate(weight_decay, "weight_decay")
    else:
        check(check_nonnegative_finite, "weight_decay", weight_decay)

    def init(params: Params):
        return WeightDecaySchedule(zero_count()) if callable(weight_decay) else EmptyState()

    def update(updates: Params, state, params: Params = None):
        if params is None:
            raise InputError("add_decayed_weights (adamw's weight decay) needs params in update")
        new_state = (
            WeightDecaySchedule(safe_increment(state.count)) if callable(weight_decay) else state
        )
        if isinstance(weight_decay, int | float) and weight_decay == 0:
            return updates, new_state
        lam = weight_decay(state.count) if callable(weight_decay) else weight_decay
        return jax.tree.map(lambda g, p: g + lam * p, updates, params), new_state

    decay = GradientTransformation(init, update)
    return decay if mask is None else masked(decay, mask)


# --- scaling -----------------------------------------------------------------------------


def scale(step_size: float) -> GradientTransformation:
    """u_t = s g_t for a fixed s = `step_size`; no state (`EmptyState()`)."""
    check(check_finite, "step_size", step_size)

    def update(updates: Params, state: EmptyState, params: Params = None):
        del params
        return jax.tree.map(lambda g: step_size * g, updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


class ScaleByScheduleState(NamedTuple):
    count: jax.Array  # t, the schedule's step (updates made so far)


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """u_t = s(t) g_t, s(t) = `step_size_fn(count)` with count = updates made so far.

    Returns:
        A `GradientTransformation`; its state is `ScaleByScheduleState(count)`.
    """

    def init(params: Params) -> ScaleByScheduleState:
        return ScaleByScheduleState(zero_count())

    def update(updates: Params, state: ScaleByScheduleState, params: Params = None):
        del params
        step_size = step_size_fn(state.count)
        updates = jax.tree.map(lambda g: jnp.array(step_size, dtype=g.dtype) * g, updates)
        return updates, ScaleByScheduleState(safe_increment(state.count))

    return GradientTransformation(init, update)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule | None = None, *, flip_sign: bool = True
) -> GradientTransformation:
    """u_t = −α_t g_t, the learning rate of every optimiser (`scale` or `scale_by_schedule`).

    Args:
        learning_rate: α, a positive float or a schedule `count -> α_t` (None: `identity`).
        flip_sign: multiply by −α (descent, the default) or by +α.

    Returns:
        A `GradientTransformation`; its state is `EmptyState()` for a float,
        `ScaleByScheduleState(count)` for a schedule.
    """
    if learning_rate is None:
        return identity()
    check_learning_rate(learning_rate)
    m = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: m * learning_rate(count))
    return scale(m * learning_rate)
