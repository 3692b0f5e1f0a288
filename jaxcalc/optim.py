"""Gradient-based optimisers written by hand, each an optax-compatible `(init, update)` pair.

Names, arguments, defaults and semantics are optax's aliases (`optax.sgd`, `optax.rmsprop`,
`optax.adam`, `optax.adamw`), so each can be checked step for step against optax:

    opt = adam(1e-3)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)

`params` and `grads` are any pytree of arrays (the MLP's dict {"W1", "b1", "W2", "b2"}).
Updates come back already negated and scaled: params ← params + updates. Every state is
a NamedTuple of arrays (fields named after the equations), so `update` runs under `jit`
and inside `lax.scan`. `learning_rate` is a float, or a schedule `count -> float`
evaluated at the number of updates made so far (0 on the first call), as in optax; see
`jaxcalc.schedules`. Symbols: g_t gradient, α_t learning rate, u_t update, θ_t params.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxcalc.validation import InputError

Params = Any  # a pytree of arrays
Schedule = Callable[[jax.Array], Any]
ScalarOrSchedule = float | Schedule


class Optimizer(NamedTuple):
    """A pair of pure functions: `init(params) -> state`, `update(grads, state, params)`."""

    init: Callable[[Params], Any]
    update: Callable[..., tuple[Params, Any]]


class SgdState(NamedTuple):
    count: jax.Array  # updates made so far (int32), the schedule's step
    trace: Params  # m_t, or None without momentum


class RmspropState(NamedTuple):
    count: jax.Array
    nu: Params  # v_t, the moving average of g²
    mu: Params  # m̄_t, the moving average of g (None unless centered)
    trace: Params  # b_t, the momentum buffer (None without momentum)


class AdamState(NamedTuple):
    count: jax.Array
    mu: Params  # m_t, first moment
    nu: Params  # v_t, second moment


# --- checks (skipped for traced values: the arguments may come from inside `jit`) ---------


def _concrete(name: str, value: Any) -> float | None:
    """`value` as a float, None when it is traced; InputError naming `name` if no number."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None


def _check_range(name: str, value: Any, lo: float, hi: float, *, hi_open: bool) -> None:
    v = _concrete(name, value)
    if v is None:
        return
    if not (math.isfinite(v) and lo <= v and (v < hi if hi_open else v <= hi)):
        right = ")" if hi_open else "]"
        raise InputError(f"{name} must lie in [{lo:g}, {hi:g}{right}, got {value!r}")


def _check_nonnegative(name: str, value: Any) -> None:
    _check_range(name, value, 0.0, math.inf, hi_open=True)


def check_learning_rate(learning_rate: ScalarOrSchedule, name: str = "learning_rate") -> None:
    """A float must be positive and finite; a schedule must give a finite rate ≥ 0 at step 0."""
    if callable(learning_rate):
        try:
            v = _concrete(name, learning_rate(jnp.zeros([], jnp.int32)))
        except InputError:
            v = math.nan
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise InputError(f"{name} schedule must return a finite rate >= 0, got {v} at step 0")
        return
    v = _concrete(name, learning_rate)
    if v is not None and not (math.isfinite(v) and v > 0):
        raise InputError(f"{name} must be a positive finite number, got {learning_rate!r}")


# --- shared pieces -----------------------------------------------------------------------


def _increment(count: jax.Array) -> jax.Array:
    """count + 1, saturating at the int32 maximum instead of wrapping round."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def _scale_by_lr(learning_rate: ScalarOrSchedule, count: jax.Array, tree: Params) -> Params:
    """u = −α_t · tree, α_t = learning_rate(count) for a schedule."""
    if callable(learning_rate):
        step = -learning_rate(count)
        return jax.tree.map(lambda x: jnp.asarray(step, x.dtype) * x, tree)
    return jax.tree.map(lambda x: -learning_rate * x, tree)


def _ema(decay: Any, moment: Params, x: Params) -> Params:
    """m ← (1 − decay)·x + decay·m, leaf by leaf."""
    return jax.tree.map(lambda x_, m: (1 - decay) * x_ + decay * m, x, moment)


@functools.partial(jax.jit, inline=True)
def _debias(moment: Params, decay: Any, count: jax.Array) -> Params:
    """m̂ = m / (1 − decay^count), the bias correction of a zero-started moving average.

    Compiled even when called eagerly, so that 1 − decay^count (which loses digits in
    float32 for small counts) rounds the same way under `jit` and without, as in optax.
    """
    correction = 1 - decay**count
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)


def _zeros(params: Params, dtype=None) -> Params:
    return jax.tree.map(lambda p: jnp.zeros_like(p, dtype=dtype), params)


def _count0() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def apply_updates(params: Params, updates: Params) -> Params:
    """θ ← θ + u, leaf by leaf, keeping each parameter's dtype (as `optax.apply_updates`)."""
    return jax.tree.map(
        lambda p, u: jnp.asarray(p + u).astype(jnp.asarray(p).dtype), params, updates
    )


# --- the optimisers ----------------------------------------------------------------------


def sgd(
    learning_rate: ScalarOrSchedule, momentum: float | None = None, nesterov: bool = False
) -> Optimizer:
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Symbols: α_t = `learning_rate`, μ = `momentum`, m_t the momentum trace.

        without momentum:  u_t = −α_t g_t
        with momentum:     m_t = g_t + μ m_{t−1}            (m_0 = 0)
                           u_t = −α_t m_t                  (nesterov=False)
                           u_t = −α_t (g_t + μ m_t)        (nesterov=True)

    Args:
        learning_rate: α, a positive float or a schedule `count -> α_t`.
        momentum: μ ≥ 0, or None for no momentum (and no trace in the state).
        nesterov: use Nesterov's look-ahead form (only with momentum).

    Returns:
        An `Optimizer`; its state is `SgdState(count, trace)`.

    Example:
        >>> opt = sgd(0.1, momentum=0.9)
        >>> x = jnp.array([1.0, -2.0]); state = opt.init(x)
        >>> u, state = opt.update(2 * x, state)  # grad of ‖x‖²
        >>> apply_updates(x, u)  # [0.8, -1.6]

    PyTorch: `torch.optim.SGD` has `dampening` (m_t = μ m_{t−1} + (1 − dampening) g_t);
    with its default 0 it is this update. Its `weight_decay` adds λθ to g (L2), absent here.
    """
    check_learning_rate(learning_rate)
    if momentum is not None:
        _check_nonnegative("momentum", momentum)

    def init(params: Params) -> SgdState:
        return SgdState(_count0(), None if momentum is None else _zeros(params))

    def update(grads: Params, state: SgdState, params: Params = None) -> tuple[Params, SgdState]:
        del params
        trace = None
        direction = grads
        if momentum is not None:
            trace = jax.tree.map(lambda g, m: g + momentum * m, grads, state.trace)
            direction = (
                jax.tree.map(lambda g, m: g + momentum * m, grads, trace) if nesterov else trace
            )
        updates = _scale_by_lr(learning_rate, state.count, direction)
        return updates, SgdState(_increment(state.count), trace)

    return Optimizer(init, update)


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | None = None,
    nesterov: bool = False,
) -> Optimizer:
    """RMSprop: divide each gradient by a running root mean square of its past values.

    Symbols: α_t = `learning_rate`, ρ = `decay`, ε = `eps`, μ = `momentum`;
    v_0 = `initial_scale`, m̄_0 = 0, b_0 = 0.

        v_t = ρ v_{t−1} + (1 − ρ) g_t²
        m̄_t = ρ m̄_{t−1} + (1 − ρ) g_t                     (centered only)
        s_t = v_t, or v_t − m̄_t² when centered
        d_t = g_t / sqrt(s_t + ε)    (eps_in_sqrt=True)
        d_t = g_t / (sqrt(s_t) + ε)  (eps_in_sqrt=False)
        without momentum:  u_t = −α_t d_t
        with momentum:     b_t = −α_t d_t + μ b_{t−1};  u_t = b_t,
                           or u_t = −α_t d_t + μ b_t (nesterov=True)

    Args:
        learning_rate: α, a positive float or a schedule `count -> α_t`.
        decay: ρ in [0, 1].
        eps: ε ≥ 0, inside or outside the square root (`eps_in_sqrt`).
        initial_scale: v_0 ≥ 0 (PyTorch uses 0, TF1 uses 1).
        eps_in_sqrt: put ε inside the square root (optax's default) or outside.
        centered: divide by the running standard deviation instead of the RMS.
        momentum: μ ≥ 0, or None for no momentum.
        nesterov: Nesterov's form of the momentum (only with momentum).

    Returns:
        An `Optimizer`; its state is `RmspropState(count, nu, mu, trace)`.

    Example:
        >>> opt = rmsprop(0.01)
        >>> x = jnp.array([1.0, -2.0]); state = opt.init(x)
        >>> u, state = opt.update(2 * x, state)  # u ≈ −0.01·sign(g)/sqrt(0.1)

    PyTorch: `torch.optim.RMSprop` defaults to ρ = `alpha` = 0.99 and ε outside the root,
    sqrt(v) + ε (here `eps_in_sqrt=False`); optax and this module default to ρ = 0.9 and
    sqrt(v + ε). PyTorch's momentum buffer holds d_t and is scaled by α afterwards, the
    same as here for a constant α but not under a schedule.
    """
    check_learning_rate(learning_rate)
    _check_range("decay", decay, 0.0, 1.0, hi_open=False)
    _check_nonnegative("eps", eps)
    _check_nonnegative("initial_scale", initial_scale)
    if momentum is not None:
        _check_nonnegative("momentum", momentum)

    def init(params: Params) -> RmspropState:
        return RmspropState(
            _count0(),
            jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params),
            _zeros(params) if centered else None,
            None if momentum is None else _zeros(params),
        )

    def update(
        grads: Params, state: RmspropState, params: Params = None
    ) -> tuple[Params, RmspropState]:
        del params
        nu = _ema(decay, state.nu, jax.tree.map(lambda g: g**2, grads))
        mu = _ema(decay, state.mu, grads) if centered else None
        s = jax.tree.map(lambda m, v: v - m**2, mu, nu) if centered else nu
        if eps_in_sqrt:
            d = jax.tree.map(lambda g, v: jax.lax.rsqrt(v + eps) * g, grads, s)
        else:
            d = jax.tree.map(lambda g, v: 1 / (jnp.sqrt(v) + eps) * g, grads, s)
        updates = _scale_by_lr(learning_rate, state.count, d)
        trace = None
        if momentum is not None:
            trace = jax.tree.map(lambda u, b: u + momentum * b, updates, state.trace)
            updates = (
                jax.tree.map(lambda u, b: u + momentum * b, updates, trace) if nesterov else trace
            )
        return updates, RmspropState(_increment(state.count), nu, mu, trace)

    return Optimizer(init, update)


def _check_adam(learning_rate, b1, b2, eps, eps_root) -> None:
    check_learning_rate(learning_rate)
    _check_range("b1", b1, 0.0, 1.0, hi_open=True)
    _check_range("b2", b2, 0.0, 1.0, hi_open=True)
    _check_nonnegative("eps", eps)
    _check_nonnegative("eps_root", eps_root)


def _adam_direction(grads, state, b1, b2, eps, eps_root, nesterov, mu_dtype):
    """m_t, v_t and the Adam direction m̂_t / (sqrt(v̂_t + ε̄) + ε)."""
    mu = _ema(b1, state.mu, grads)
    nu = _ema(b2, state.nu, jax.tree.map(lambda g: g**2, grads))
    count = _increment(state.count)
    if nesterov:
        mu_hat = jax.tree.map(
            lambda m, g: b1 * m + (1 - b1) * g,
            _debias(mu, b1, _increment(count)),
            _debias(grads, b1, count),
        )
    else:
        mu_hat = _debias(mu, b1, count)
    nu_hat = _debias(nu, b2, count)
    direction = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
    if mu_dtype is not None:
        mu = jax.tree.map(lambda m: m.astype(mu_dtype), mu)
    nu = jax.tree.map(lambda v, v0: v.astype(v0.dtype), nu, state.nu)
    return direction, AdamState(count, mu, nu)


def adam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
) -> Optimizer:
    """Adam: momentum on g divided by the root of a moving average of g², bias-corrected.

    Symbols: α_t = `learning_rate`, β₁ = `b1`, β₂ = `b2`, ε = `eps`, ε̄ = `eps_root`;
    m_0 = v_0 = 0 and t counts updates from 1.

        m_t = β₁ m_{t−1} + (1 − β₁) g_t
        v_t = β₂ v_{t−1} + (1 − β₂) g_t²
        m̂_t = m_t / (1 − β₁^t)
              (nesterov=True: m̂_t = β₁ m_t / (1 − β₁^{t+1}) + (1 − β₁) g_t / (1 − β₁^t))
        v̂_t = v_t / (1 − β₂^t)
        u_t = −α_t m̂_t / (sqrt(v̂_t + ε̄) + ε)

    Args:
        learning_rate: α, a positive float or a schedule `count -> α_t`.
        b1: β₁ in [0, 1), decay of the first moment.
        b2: β₂ in [0, 1), decay of the second moment.
        eps: ε ≥ 0, added outside the square root (as in the paper).
        eps_root: ε̄ ≥ 0, added inside the square root.
        mu_dtype: dtype of m (None: that of the parameters).
        nesterov: NAdam (Dozat 2016).

    Returns:
        An `Optimizer`; its state is `AdamState(count, mu, nu)`.

    Example:
        >>> opt = adam(0.1)
        >>> x = jnp.array([1.0, -2.0]); state = opt.init(x)
        >>> u, state = opt.update(2 * x, state)  # first step: u ≈ −0.1·sign(g)

    PyTorch: `torch.optim.Adam(weight_decay=λ)` is L2 regularisation, λθ added to g before
    the moments, so the decay is divided by sqrt(v̂) too; use `adamw` for decay that is not.
    """
    _check_adam(learning_rate, b1, b2, eps, eps_root)

    def init(params: Params) -> AdamState:
        return AdamState(_count0(), _zeros(params, mu_dtype), _zeros(params))

    def update(grads: Params, state: AdamState, params: Params = None) -> tuple[Params, AdamState]:
        del params
        direction, new_state = _adam_direction(
            grads, state, b1, b2, eps, eps_root, nesterov, mu_dtype
        )
        return _scale_by_lr(learning_rate, state.count, direction), new_state

    return Optimizer(init, update)


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
) -> Optimizer:
    """AdamW: Adam with decoupled weight decay λθ added to the Adam direction.

    Symbols as in `adam`, with λ = `weight_decay`:

        m_t, v_t, m̂_t, v̂_t as in `adam`
        u_t = −α_t (m̂_t / (sqrt(v̂_t + ε̄) + ε) + λ θ_t)

    Args:
        learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov: as in `adam`.
        weight_decay: λ ≥ 0, a float or a schedule `count -> λ_t`; multiplied by α_t.
        mask: None (decay every parameter), or a pytree of bools with the structure of
            (a prefix of) the parameters, or a function params -> such a pytree; `True`
            where weight decay applies (e.g. weights but not biases).

    Returns:
        An `Optimizer` whose `update` needs `params`; its state is `AdamState`.

    Example:
        >>> opt = adamw(1e-3, weight_decay=1e-2, mask={"W1": True, "b1": False})
        >>> updates, state = opt.update(grads, opt.init(params), params)

    PyTorch: `torch.optim.AdamW` is the same update (θ ← θ(1 − αλ) then the Adam step) but
    defaults to λ = 1e-2, optax and this module to 1e-4. `torch.optim.Adam(weight_decay=λ)`
    is L2 instead: λθ enters g, then is rescaled by 1/sqrt(v̂).
    """
    _check_adam(learning_rate, b1, b2, eps, eps_root)
    if callable(weight_decay):
        check_learning_rate(weight_decay, "weight_decay")
    else:
        _check_nonnegative("weight_decay", weight_decay)

    def decay(u: Params, p: Params, lam: Any) -> Params:
        return jax.tree.map(lambda u_, p_: u_ + lam * p_, u, p)

    def init(params: Params) -> AdamState:
        return AdamState(_count0(), _zeros(params, mu_dtype), _zeros(params))

    def update(grads: Params, state: AdamState, params: Params = None) -> tuple[Params, AdamState]:
        if params is None:
            raise InputError("adamw's update needs params (for the weight decay)")
        direction, new_state = _adam_direction(
            grads, state, b1, b2, eps, eps_root, nesterov, mu_dtype
        )
        lam = weight_decay(state.count) if callable(weight_decay) else weight_decay
        if not (isinstance(weight_decay, (int, float)) and weight_decay == 0):
            if mask is None:
                direction = decay(direction, params, lam)
            else:
                m = mask(params) if callable(mask) else mask
                direction = jax.tree.map(
                    lambda keep, u, p: decay(u, p, lam) if keep else u, m, direction, params
                )
        return _scale_by_lr(learning_rate, state.count, direction), new_state

    return Optimizer(init, update)
