"""Order 2: the derivative of the derivative, as an order-1 check of the first derivative.

The first derivative is a function of the same arguments, and checking its own derivatives
(forward and reverse, against central differences of it) checks the second order:

    G_rev(x) = vᵀ J(x) = vjp(f, x)(v)    reverse mode; v fixed (1 for a scalar f, else N(0, I))
    G_fwd(x) = J(x) u  = jvp(f, x)(u)    forward mode; u fixed, N(0, I) ⊙ max(1, |x|)
    G(x)     = grad_fn(x)                the user's gradient

Their rows read "fwd∘rev" (forward over reverse), "rev∘rev", "fwd∘fwd", "rev∘fwd". A rule
can be right in its first derivative and wrong in its second: a backward pass that applies
`stop_gradient` to something it should differentiate gives the right vᵀJ, but G_rev's own
derivative misses a term, and the difference of G_rev shows it. A `custom_vjp` function has
no forward mode, so its G_fwd is skipped; G_rev has both modes, since the backward rule is
ordinary JAX code.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.check.problem import Problem


def _rev(F: Callable, v: list[np.ndarray]) -> Callable:
    def G(xs):
        outs, pullback = jax.vjp(F, list(xs))
        return pullback([jnp.asarray(vi, o.dtype) for vi, o in zip(v, outs, strict=True)])[0]

    return G


def _fwd(F: Callable, u: list[np.ndarray]) -> Callable:
    def G(xs):
        return jax.jvp(
            F, (list(xs),), ([jnp.asarray(ui, x.dtype) for ui, x in zip(u, xs, strict=True)],)
        )[1]

    return G


def derivatives(problem: Problem, inner: list[str], rng: np.random.Generator) -> list[Problem]:
    """The problems of order 2: one per first derivative in `inner` ("grad_fn", "rev",
    "fwd"), each a function of the same leaves (module docstring)."""
    names, outs = problem.in_names, problem.out_names
    one_scalar = len(outs) == 1 and problem.out_shapes[0] == ()
    problems = []
    for mode in inner:
        if mode == "grad_fn":
            v = [np.ones(())]
            G, ref = problem.grad, None if problem.ref is None else _rev(problem.ref, v)
            out_names = [f"∂{outs[0]}/∂{n}" for n in names]
            shapes = problem.in_shapes
        elif mode == "rev":
            v = [np.ones(s) if one_scalar else rng.standard_normal(s) for s in problem.out_shapes]
            G, ref = _rev(problem.F, v), None if problem.ref is None else _rev(problem.ref, v)
            label = outs[0] if one_scalar else "vᵀout"
            out_names = [f"∂{label}/∂{n}" for n in names]
            shapes = problem.in_shapes
        else:
            u = [rng.standard_normal(x.shape) * np.maximum(1.0, np.abs(x)) for x in problem.point]
            G, ref = _fwd(problem.F, u), None if problem.ref is None else _fwd(problem.ref, u)
            out_names = [f"∂{o}·u" for o in outs]
            shapes = problem.out_shapes
        problems.append(
            Problem(G, problem.point, names, out_names, list(shapes), ref=ref, inner=mode)
        )
    return problems
