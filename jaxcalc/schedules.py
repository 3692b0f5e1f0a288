"""Learning-rate schedules: functions `count -> rate`, with optax's names and semantics.

`count` is the number of updates made so far (0 on the first), an int or an int32
array; every schedule is a pure function, so it runs under `jit` and in `lax.scan`.
Pass one as `learning_rate` to any optimiser of `jaxcalc.optim`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxcalc.validation import (
    InputError,
    check_nonnegative_finite,
    check_nonnegative_int,
    check_positive_finite,
    check_positive_int,
)

Schedule = Callable[[jax.Array], jax.Array]


def constant_schedule(value: float) -> Schedule:
    """α_t = value for every t."""
    check_nonnegative_finite("value", value)
    return lambda count: value


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """α_t = α₀ · r^((t − t₀)/T) for t > t₀, α₀ before; clipped at `end_value` if given.

    Symbols: α₀ = `init_value`, r = `decay_rate`, T = `transition_steps`,
    t₀ = `transition_begin`; with `staircase` the exponent is floored. `end_value` is a
    lower bound when r < 1 and an upper bound when r > 1.

    Example:
        >>> exponential_decay(0.1, 100, 0.5)(200)  # 0.025
    """
    check_nonnegative_finite("init_value", init_value)
    check_positive_int("transition_steps", transition_steps)
    check_positive_finite("decay_rate", decay_rate)
    check_nonnegative_int("transition_begin", transition_begin)
    clip = jnp.maximum if decay_rate < 1 else jnp.minimum

    def schedule(count: jax.Array) -> jax.Array:
        t = count - transition_begin
        p = t / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(t <= 0, init_value, init_value * jnp.power(decay_rate, p))
        return value if end_value is None else clip(value, end_value)

    return schedule


def cosine_decay_schedule(
    init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0
) -> Schedule:
    """α_t = α₀ ((1 − a) c_t^p + a), c_t = ½(1 + cos(π min(t, T)/T)).

    Symbols: α₀ = `init_value`, T = `decay_steps`, a = `alpha` (the final fraction of α₀),
    p = `exponent`. After T steps the rate stays at a·α₀.

    Example:
        >>> cosine_decay_schedule(0.1, 100)(50)  # 0.05
    """
    check_nonnegative_finite("init_value", init_value)
    check_positive_int("decay_steps", decay_steps)
    check_nonnegative_finite("alpha", alpha)

    def schedule(count: jax.Array) -> jax.Array:
        t = jnp.minimum(count, float(decay_steps))
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * t / float(decay_steps)))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def warmup_cosine_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
) -> Schedule:
    """Linear warm-up from `init_value` to `peak_value`, then cosine decay to `end_value`.

        t < W:      α_t = α_init + (α_peak − α_init) t / W
        t ≥ W:      cosine_decay_schedule(α_peak, T − W, α_end/α_peak, exponent)(t − W)

    Symbols: W = `warmup_steps`, T = `decay_steps` (the whole schedule, warm-up included).

    Example:
        >>> s = warmup_cosine_decay_schedule(0.0, 0.1, 10, 110)
        >>> s(5), s(10), s(60)  # 0.05, 0.1, 0.05
    """
    check_nonnegative_finite("init_value", init_value)
    check_nonnegative_finite("peak_value", peak_value)
    check_nonnegative_finite("end_value", end_value)
    check_positive_int("warmup_steps", warmup_steps)
    check_positive_int("decay_steps", decay_steps)
    if decay_steps <= warmup_steps:
        raise InputError(
            f"decay_steps must exceed warmup_steps ({warmup_steps}), got {decay_steps!r}"
        )
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    decay = cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)

    def schedule(count: jax.Array) -> jax.Array:
        t = jnp.clip(count, 0, warmup_steps)
        warm = (init_value - peak_value) * (1 - t / warmup_steps) + peak_value
        return jnp.where(count < warmup_steps, warm, decay(count - warmup_steps))

    return schedule
