"""The optimisers, each a `chain` of transformations exactly as optax's `alias.py` builds it.

    sgd      = chain(trace(μ) or identity(), scale_by_learning_rate(α))
    rmsprop  = chain(scale_by_rms or scale_by_stddev, scale_by_learning_rate(α),
                     trace(μ) or identity())
    adam     = chain(scale_by_adam, scale_by_learning_rate(α))
    adamw    = chain(scale_by_adam, add_decayed_weights(λ, mask), scale_by_learning_rate(α))

Symbols: g_t gradient, α_t learning rate, u_t update, θ_t params.
"""

from __future__ import annotations

from typing import Any

from jaxcalc.optim.base import GradientTransformation, ScalarOrSchedule, chain, check, identity
from jaxcalc.optim.transform import (
    add_decayed_weights,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_stddev,
    trace,
)
from jaxcalc.validation import check_nonnegative_finite


def _momentum(momentum: float | None, nesterov: bool, accumulator_dtype: Any = None):
    """`trace(momentum, nesterov)`, or `identity()` without momentum; checks `momentum`."""
    if momentum is None:
        return identity()
    check(check_nonnegative_finite, "momentum", momentum)
    return trace(momentum, nesterov, accumulator_dtype)


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: float | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
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
        accumulator_dtype: dtype of the trace m (None: that of the gradients).

    Returns:
        `chain(trace(μ, nesterov) or identity(), scale_by_learning_rate(α))`; its state is
        `(TraceState(trace) or EmptyState(), EmptyState() or ScaleByScheduleState(count))`.

    Example:
        >>> opt = sgd(0.1, momentum=0.9)
        >>> x = jnp.array([1.0, -2.0]); state = opt.init(x)
        >>> u, state = opt.update(2 * x, state)  # grad of ‖x‖²
        >>> apply_updates(x, u)  # [0.8, -1.6]

    PyTorch: `torch.optim.SGD` has `dampening` (m_t = μ m_{t−1} + (1 − dampening) g_t);
    with its default 0 it is this update. Its `weight_decay` adds λθ to g (L2), absent here.
    """
    return chain(
        _momentum(momentum, nesterov, accumulator_dtype), scale_by_learning_rate(learning_rate)
    )


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> GradientTransformation:
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
        bias_correction: divide v_t (and m̄_t) by 1 − ρ^t, as Adam does.

    Returns:
        `chain(scale_by_rms or scale_by_stddev (centered), scale_by_learning_rate(α),
        trace(μ, nesterov) or identity())`; its state is the tuple of their states.

    Example:
        >>> opt = rmsprop(0.01)
        >>> x = jnp.array([1.0, -2.0]); state = opt.init(x)
        >>> u, state = opt.update(2 * x, state)  # u ≈ −0.01·sign(g)/sqrt(0.1)

    PyTorch: `torch.optim.RMSprop` defaults to ρ = `alpha` = 0.99 and ε outside the root,
    sqrt(v) + ε (here `eps_in_sqrt=False`); optax and this module default to ρ = 0.9 and
    sqrt(v + ε). PyTorch's momentum buffer holds d_t and is scaled by α afterwards, the
    same as here for a constant α but not under a schedule.
    """
    scale_by = scale_by_stddev if centered else scale_by_rms
    return chain(
        scale_by(decay, eps, initial_scale, eps_in_sqrt, bias_correction),
        scale_by_learning_rate(learning_rate),
        _momentum(momentum, nesterov),
    )


def adam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
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
        `chain(scale_by_adam(...), scale_by_learning_rate(α))`; its state is
        `(ScaleByAdamState(count, mu, nu), EmptyState() or ScaleByScheduleState(count))`.

    Example:
        >>> opt = adam(0.1)
        >>> x = jnp.array([1.0, -2.0]); state = opt.init(x)
        >>> u, state = opt.update(2 * x, state)  # first step: u ≈ −0.1·sign(g)

    PyTorch: `torch.optim.Adam(weight_decay=λ)` is L2 regularisation, λθ added to g before
    the moments, so the decay is divided by sqrt(v̂) too; use `adamw` for decay that is not.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


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
) -> GradientTransformation:
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
        `chain(scale_by_adam(...), add_decayed_weights(λ, mask), scale_by_learning_rate(α))`,
        whose `update` needs `params`; its state is the tuple of their states.

    Example:
        >>> decay = {"W1": True, "b1": False, "W2": True, "b2": False}  # weights, not biases
        >>> opt = adamw(1e-3, weight_decay=1e-2, mask=decay)
        >>> updates, state = opt.update(grads, opt.init(params), params)

    PyTorch: `torch.optim.AdamW` is the same update (θ ← θ(1 − αλ) then the Adam step) but
    defaults to λ = 1e-2, optax and this module to 1e-4. `torch.optim.Adam(weight_decay=λ)`
    is L2 instead: λθ enters g, then is rescaled by 1/sqrt(v̂).
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
