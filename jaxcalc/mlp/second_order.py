"""The 2-layer network to second order, by hand: H v, G v (never the matrix), ∂z2/∂x.

For a direction v = {V1, c1, V2, c2} shaped like params, Pearlmutter's R-operator (1994)
R{·} = d/dε (·)(θ + εv) at ε = 0 carries v through the forward pass and the backward pass
(`network.backward_unchecked`); the R-backward pass ends in R{dL/dθ} = H v, exactly, at
about twice the cost of one gradient and without ever forming H. Each product has its
autodiff twin, the reference of the tests.

    R-forward                                   R-backward (beside the ordinary backward)
    R{z1} = x V1 + c1                           R{dz2} = ∂²L/∂z2² R{z2}  (+ g'' term for MSE)
    R{h1} = f'(z1) ⊙ R{z1}                      R{dW2} = R{a1}ᵀ dz2 + a1ᵀ R{dz2}
    R{a1} = R{h1} ⊙ mask                        R{db2} = Σ_rows R{dz2}
    R{z2} = R{a1} W2 + a1 V2 + c2               R{da1} = R{dz2} W2ᵀ + dz2 V2ᵀ
    R{a2} = g'(z2) ⊙ R{z2}, or J_softmax R{z2}  R{dz1} = R{da1} ⊙ mask ⊙ f'(z1)
                                                         + dh1 ⊙ f''(z1) ⊙ R{z1}
                                                R{dW1} = xᵀ R{dz1},  R{db1} = Σ_rows R{dz1}

The generalised Gauss-Newton product G v = Jᵀ H_ℓ J v keeps only the loss's curvature
H_ℓ, taken where the loss is convex: in the logits z2 for softmax cross-entropy, in
a2 = g(z2) for MSE (H_ℓ = I/n); J is the network's Jacobian into that output. G is
positive semi-definite; H − G is the network's own curvature: the terms of R{·} that
multiply the residual dL/dz2 (the cross terms R{a1}ᵀ dz2 and dz2 V2ᵀ, f''(z1) and g''(z2)).

ReLU's f'' is zero wherever it exists (everywhere but the kink z1 = 0, where relu' jumps),
so for a ReLU network the f'' term vanishes: its Hessian comes from the loss and from the
cross terms (the loss is not linear in θ even though relu is piecewise linear in z1), and
the jump at the kink (a Dirac delta in f'') is seen by no random point, only by a finite
difference whose step crosses a kink.

The derivatives come from where they live: f', f'', g', g'' from `jaxcalc.activations`,
∂²L/∂z2² and ∂²L/∂a2² from `jaxcalc.losses`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcalc.activations import ACTIVATIONS, PIECEWISE_LINEAR
from jaxcalc.losses import (
    cross_entropy,
    cross_entropy_hvp,
    mse,
    mse_grad,
    mse_hvp,
    one_hot_targets,
)
from jaxcalc.mlp import network
from jaxcalc.mlp.network import PARAM_NAMES, Cache, Net, Params
from jaxcalc.validation import InputError

# --------------------------------------------------------------------------- checks


def _check_v(v, params: Params) -> Params:
    """`v` as a dict of arrays shaped like params (same keys, shapes, dtype), or InputError."""
    if not isinstance(v, dict) or set(v) != set(PARAM_NAMES):
        got = sorted(v) if isinstance(v, dict) else type(v).__name__
        raise InputError(f"v must be shaped like params (keys W1, b1, W2, b2), got {got}")
    v = {k: jnp.asarray(v[k]) for k in PARAM_NAMES}
    bad = [k for k in PARAM_NAMES if v[k].shape != params[k].shape or v[k].dtype != params[k].dtype]
    if bad:
        got = ", ".join(f"{k} {v[k].shape} {v[k].dtype}" for k in bad)
        want = ", ".join(f"{k} {params[k].shape} {params[k].dtype}" for k in bad)
        raise InputError(f"v must be shaped like params: got {got}; params have {want}")
    return v


def _prepare(net: Net, params, x, y, v, hidden_mask):
    """Check everything, then run the forward pass: (params, cache, y, v, mask)."""
    params, x, y, hidden_mask = network.check_args(net, params, x, y, hidden_mask)
    v = _check_v(v, params)
    _, cache = network.forward_unchecked(net, params, x, hidden_mask)
    return params, cache, y, v, hidden_mask


# --------------------------------------------------------------------------- by hand


def _activation_grad2(activation: str, h1: jax.Array) -> jax.Array:
    """f''(z1) from the cached h1 = f(z1), by `activations`' own from-output derivative."""
    return ACTIVATIONS[activation].grad2_from_output(h1)


def _output_curvature(
    net: Net, cache: Cache, y: jax.Array, rz2: jax.Array, *, gauss_newton: bool
) -> jax.Array:
    """R{dL/dz2} from R{z2}: ∂²L/∂z2² R{z2}; with `gauss_newton`, H_ℓ's part alone."""
    if net.loss == "cross_entropy":  # R{a2} = J_softmax R{z2} lives inside the loss's Hessian
        # R{dz2} = Σ_k y_k (diag(a2) − a2 a2ᵀ) R{z2} / n   (convex in z2: all of it is H_ℓ)
        return cross_entropy_hvp(cache.z2, y, rz2)
    g = ACTIVATIONS[net.output]
    g1 = g.grad_from_output(cache.a2)
    # R{a2} = g'(z2) ⊙ R{z2}
    ra2 = g1 * rz2
    # R{dz2} = g'(z2) ⊙ ∂²L/∂a2² R{a2}  (= g'² R{z2} / n: H_ℓ = I/n in a2)
    rdz2 = g1 * mse_hvp(cache.a2, ra2)
    if gauss_newton:
        return rdz2
    # ... + dL/da2 ⊙ g''(z2) ⊙ R{z2}     (the output's own curvature; zero for identity)
    da2 = mse_grad(cache.a2, one_hot_targets(y, cache.a2))
    return rdz2 + da2 * g.grad2_from_output(cache.a2) * rz2


def _hvp(net: Net, params: Params, c: Cache, y, v: Params, mask) -> Params:
    """H v by the R-forward and R-backward passes (see the module docstring)."""
    masked = (lambda a: a) if mask is None else (lambda a: a * mask)
    f1 = network.activation_grad(net.activation, c.h1)  # f'(z1)
    dz2 = network.output_grad(net, c, y)  # the ordinary backward pass's dL/dz2
    # R{z1} = x V1 + c1                   (n, n_hidden)
    rz1 = c.x @ v["W1"] + v["b1"][None, :]
    # R{a1} = f'(z1) ⊙ R{z1} ⊙ mask       (R{h1}, then the dropout mask)
    ra1 = masked(f1 * rz1)
    # R{z2} = R{a1} W2 + a1 V2 + c2       (n, n_out)
    rz2 = ra1 @ params["W2"] + c.a1 @ v["W2"] + v["b2"][None, :]
    # R{dz2} = ∂²L/∂z2² R{z2}             (through R{a2}; MSE adds dL/da2 ⊙ g'' ⊙ R{z2})
    rdz2 = _output_curvature(net, c, y, rz2, gauss_newton=False)
    # R{dW2} = R{a1}ᵀ dz2 + a1ᵀ R{dz2}    (n_hidden, n_out), as the transpose of its
    # (n_out, n_hidden) twin dz2ᵀ R{a1} + R{dz2}ᵀ a1, which XLA's CPU matmul runs ~8% faster
    rdW2 = (dz2.T @ ra1 + rdz2.T @ c.a1).T
    # R{db2} = Σ_rows R{dz2}              (n_out,)
    rdb2 = jnp.sum(rdz2, axis=0)
    # R{dh1} = R{da1} ⊙ mask, R{da1} = R{dz2} W2ᵀ + dz2 V2ᵀ = [R{dz2} dz2] [W2 V2]ᵀ (one matmul)
    both = jnp.concatenate([params["W2"], v["W2"]], axis=1)  # (n_hidden, 2 n_out)
    rdh1 = masked(jnp.concatenate([rdz2, dz2], axis=1) @ both.T)
    # R{dz1} = R{dh1} ⊙ f'(z1) + dh1 ⊙ f''(z1) ⊙ R{z1}   (the f'' term: curvature of f)
    rdz1 = rdh1 * f1
    if net.activation not in PIECEWISE_LINEAR:  # relu: f'' = 0, the term is 0 and skipped
        dh1 = masked(dz2 @ params["W2"].T)  # dL/dh1 of the ordinary backward pass
        rdz1 = rdz1 + dh1 * _activation_grad2(net.activation, c.h1) * rz1
    # R{dW1} = xᵀ R{dz1}                  (n_in, n_hidden)
    rdW1 = c.x.T @ rdz1
    # R{db1} = Σ_rows R{dz1}              (n_hidden,)
    rdb1 = jnp.sum(rdz1, axis=0)
    return {"W1": rdW1, "b1": rdb1, "W2": rdW2, "b2": rdb2}


def _ggn_vp(net: Net, params: Params, c: Cache, y, v: Params, mask) -> Params:
    """G v = Jᵀ H_ℓ J v: the linear part of the R-forward pass, H_ℓ, the backward pass."""
    masked = (lambda a: a) if mask is None else (lambda a: a * mask)
    f1 = network.activation_grad(net.activation, c.h1)
    # J v = R{z2} without second-order terms: x V1 + c1 → f'(z1) ⊙ · ⊙ mask → · W2 + a1 V2 + c2
    rz2 = masked(f1 * (c.x @ v["W1"] + v["b1"][None, :])) @ params["W2"]
    rz2 = rz2 + c.a1 @ v["W2"] + v["b2"][None, :]
    # H_ℓ J v
    u = _output_curvature(net, c, y, rz2, gauss_newton=True)
    # Jᵀ (H_ℓ J v): the ordinary backward pass, started from u instead of dL/dz2
    return network.backprop(net, params, c, u, mask)


def hvp(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    v: Params,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> Params:
    """H v, the Hessian of the batch-mean loss times v, by the R-operator, by hand.

    Arguments as `loss_and_grad`'s, and `v` shaped like params (InputError otherwise).
    Returns a dict shaped like params: the derivative of the gradient along v.
    """
    net = Net(activation, loss, output)
    params, cache, y, v, mask = _prepare(net, params, x, y, v, hidden_mask)
    return _hvp(net, params, cache, y, v, mask)


def ggn_vp(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    v: Params,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> Params:
    """G v = Jᵀ H_ℓ J v, the generalised Gauss-Newton product, by hand (see the module
    docstring): H_ℓ in z2 for cross-entropy, in a2 for MSE; positive semi-definite."""
    net = Net(activation, loss, output)
    params, cache, y, v, mask = _prepare(net, params, x, y, v, hidden_mask)
    return _ggn_vp(net, params, cache, y, v, mask)


def input_jacobian(params: Params, x: jax.Array, *, activation: str = "sigmoid") -> jax.Array:
    """∂z2/∂x per row (n, n_out, n_in): the logits' sensitivity to each input (saliency).

    Row by row, z2 = f(x W1 + b1) W2 + b2, so by the chain rule in matrix form
    ∂z2/∂x = W2ᵀ diag(f'(z1)) W1ᵀ, i.e. ∂z2_k/∂x_i = Σ_j W2[j, k] f'(z1)_j W1[i, j].
    """
    net = Net(activation)  # z2 does not depend on the loss
    params, x, _, _ = network.check_args(net, params, x)
    _, cache = network.forward_unchecked(net, params, x)
    f1 = network.activation_grad(activation, cache.h1)
    return jnp.einsum("jk,nj,ij->nki", params["W2"], f1, params["W1"])


# --------------------------------------------------------------------------- autodiff twins


def hvp_autodiff(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    v: Params,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> Params:
    """H v as `jax.jvp` of `jax.grad(loss_fn)`: forward over reverse, the reference twin."""
    net = Net(activation, loss, output)
    params, x, y, hidden_mask = network.check_args(net, params, x, y, hidden_mask)
    v = _check_v(v, params)
    kw = {"activation": activation, "loss": loss, "output": output, "hidden_mask": hidden_mask}
    grad = jax.grad(lambda p: network.loss_fn(p, x, y, **kw))
    return jax.jvp(grad, (params,), (v,))[1]


def ggn_vp_autodiff(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    v: Params,
    *,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    output: str = "sigmoid",
    hidden_mask: jax.Array | None = None,
) -> Params:
    """G v composed from autodiff: J v by `jax.jvp`, H_ℓ (J v) by `jax.jvp` of `jax.grad` of
    the loss in the output, Jᵀ(·) by `jax.vjp`."""
    net = Net(activation, loss, output)
    params, x, y, hidden_mask = network.check_args(net, params, x, y, hidden_mask)
    v = _check_v(v, params)

    def out(p: Params) -> jax.Array:  # z2 for cross-entropy, a2 = g(z2) for MSE
        a2, cache = network.forward_unchecked(net, p, x, hidden_mask)
        return cache.z2 if loss == "cross_entropy" else a2

    def loss_of_out(o: jax.Array) -> jax.Array:
        return cross_entropy(o, y) if loss == "cross_entropy" else mse(o, one_hot_targets(y, o))

    o, jv = jax.jvp(out, (params,), (v,))
    h_jv = jax.jvp(jax.grad(loss_of_out), (o,), (jv,))[1]
    return jax.vjp(out, params)[1](h_jv)[0]


def input_jacobian_autodiff(
    params: Params, x: jax.Array, *, activation: str = "sigmoid", mode: str = "reverse"
) -> jax.Array:
    """∂z2/∂x per row by `jax.jacrev` (mode "reverse") or `jax.jacfwd` ("forward"), vmapped."""
    net = Net(activation)  # z2 does not depend on the loss
    params, x, _, _ = network.check_args(net, params, x)

    def z2(row: jax.Array) -> jax.Array:
        return network.forward_unchecked(net, params, row[None, :])[1].z2[0]

    jac = {"reverse": jax.jacrev, "forward": jax.jacfwd}[mode]
    return jax.vmap(jac(z2))(x)
