"""What is checked: a function of its float leaves, its point, and the names of both sides.

`check_grads(f, args)` differentiates f(*args) with respect to every floating-point leaf of
the pytree `args` and nothing else: integer and boolean leaves are held fixed (as `jax.grad`
refuses them), complex leaves are refused. A `Problem` is that view of f:

    F(leaves) -> outs        leaves: the float leaves of args; outs: the float leaves of f(*args)

plus, where given, the user's gradient function (`grad`) and a plain twin (`ref`) on the same
leaves. Every leaf is named as Python would spell it: `x`, `params['W1']`, `out[0]`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.validation import InputError, InputTypeError, check_callable

Leaves = list[jax.Array]


class Problem(NamedTuple):
    """F on the float leaves of args, at `point`, with names for every leaf on both sides."""

    F: Callable[[Sequence[jax.Array]], Leaves]  # float leaves of args -> float leaves of f
    point: list[np.ndarray]  # the float leaves of args, as given (host copies)
    in_names: list[str]
    out_names: list[str]
    out_shapes: list[tuple[int, ...]]
    grad: Callable[[Sequence[jax.Array]], Leaves] | None = None  # the user's ∇f on leaves
    ref: Callable[[Sequence[jax.Array]], Leaves] | None = None  # a twin whose autodiff is exact
    inner: str = ""  # "" at order 1; the first derivative ("rev", "fwd", "grad_fn") at order 2

    @property
    def in_shapes(self) -> list[tuple[int, ...]]:
        return [p.shape for p in self.point]

    def at(self, point: list[np.ndarray]) -> Problem:
        return self._replace(point=point)

    def outputs(self, keep: list[int]) -> Problem:
        """The same problem on the output leaves `keep` only."""
        F, ref = self.F, self.ref
        return self._replace(
            F=lambda xs: [F(xs)[i] for i in keep],
            ref=None if ref is None else lambda xs: [ref(xs)[i] for i in keep],
            out_names=[self.out_names[i] for i in keep],
            out_shapes=[self.out_shapes[i] for i in keep],
        )


def arg_names(f: Callable, count: int) -> list[str]:
    """The names of f's first `count` positional parameters, else `args[i]`."""
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in kinds][:count]
    if len(names) < count or len(set(names)) < count:
        return [f"args[{i}]" for i in range(count)]
    return names


def _kind(leaf: Any) -> str:
    """ "float", "complex" or "fixed" (integers, booleans, anything else JAX holds fixed)."""
    dtype = jnp.result_type(leaf) if not isinstance(leaf, int | bool) else np.dtype(int)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return "complex"
    return "float" if jnp.issubdtype(dtype, jnp.floating) else "fixed"


def leaf_name(prefix: str, path: tuple) -> str:
    return prefix + jax.tree_util.keystr(path)


def build(
    f: Callable,
    args: Any,
    *,
    grad_fn: Callable | None = None,
    reference: Callable | None = None,
) -> tuple[Problem, Any]:
    """The `Problem` of f at args, and f(*args). `InputError` for anything that cannot be
    checked: f not callable, args not a tuple, a complex, empty or non-finite float leaf, no
    float leaf at all, f raising at args, or a grad_fn whose result does not match args."""
    check_callable("f", f)
    if grad_fn is not None:
        check_callable("grad_fn", grad_fn)
    if reference is not None:
        check_callable("reference", reference)
    if not isinstance(args, tuple):
        raise InputTypeError(
            f"args must be a tuple of f's arguments, e.g. (x,), got {type(args).__name__}"
        )
    names = arg_names(f, len(args))
    flat, treedef = jax.tree_util.tree_flatten_with_path(args)
    float_at, point, in_names = [], [], []
    leaves = []
    for path, leaf in flat:
        name = leaf_name(names[path[0].idx], path[1:])
        kind = _kind(leaf)
        if kind == "complex":
            raise InputTypeError(
                f"{name} is complex ({jnp.result_type(leaf)}): complex derivatives are not "
                "checked; pass the real and imaginary parts as two real arguments"
            )
        if kind == "float":
            a = np.asarray(jnp.asarray(leaf))
            if a.size == 0:
                raise InputError(f"{name} is empty (shape {a.shape}): nothing to differentiate")
            if not np.all(np.isfinite(a)):
                bad = np.argwhere(~np.isfinite(a))[0]
                raise InputError(
                    f"{name} holds {a[tuple(bad)]} at index {tuple(int(i) for i in bad)}: "
                    "check at a finite point"
                )
            float_at.append(len(leaves))
            point.append(a)
            in_names.append(name)
        leaves.append(leaf)
    if not point:
        raise InputError("args hold no floating-point array to differentiate")

    def rebuild(xs: Sequence[jax.Array]) -> Any:
        full = list(leaves)
        for i, x in zip(float_at, xs, strict=True):
            full[i] = x
        return jax.tree_util.tree_unflatten(treedef, full)

    try:
        out = f(*rebuild([jnp.asarray(p) for p in point]))
    except Exception as e:  # noqa: BLE001 - whatever f raises is the user's bad input
        raise InputError(f"f(*args) raised {type(e).__name__}: {first_line(e)}") from None
    out_flat, _ = jax.tree_util.tree_flatten_with_path(out)
    out_at, out_names, out_shapes = [], [], []
    for i, (path, leaf) in enumerate(out_flat):
        kind = _kind(leaf)
        if kind == "complex":
            raise InputTypeError(
                f"f returns a complex {leaf_name('out', path)}: complex derivatives are not "
                "checked; return the real and imaginary parts as two real outputs"
            )
        if kind == "float":
            out_at.append(i)
            out_names.append(leaf_name("out", path))
            out_shapes.append(tuple(np.shape(leaf)))
    if not out_at:
        raise InputError("f returns no floating-point array: nothing to differentiate")

    def pick(o: Any) -> Leaves:
        flat_o = jax.tree_util.tree_leaves(o)
        return [jnp.asarray(flat_o[i]) for i in out_at]

    F = lambda xs: pick(f(*rebuild([jnp.asarray(x) for x in xs])))  # noqa: E731
    grad = None if grad_fn is None else _grad_leaves(grad_fn, rebuild, args, float_at, in_names)
    if grad is not None:
        if len(out_at) != 1 or out_shapes[0] != ():
            shapes = ", ".join(str(s) for s in out_shapes)
            raise InputError(f"grad_fn needs f to return one scalar, got shapes {shapes}")
        _check_grad_shapes(grad(point), point, in_names)
    ref = None
    if reference is not None:
        ref = lambda xs: pick(reference(*rebuild([jnp.asarray(x) for x in xs])))  # noqa: E731
        _check_reference(ref, F, point)
    problem = Problem(F, point, in_names, out_names, out_shapes, grad=grad, ref=ref)
    return problem, out


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _grad_leaves(grad_fn, rebuild, args, float_at, in_names) -> Callable:
    """grad_fn on float leaves -> its float leaves, in the order of `in_names`.

    grad_fn(*args) returns the gradient with the structure of args (a tuple, one entry per
    argument), or, for one argument, with the structure of that argument.
    """
    count = len(jax.tree_util.tree_leaves(args))

    def grad(xs: Sequence[jax.Array]) -> Leaves:
        g = grad_fn(*rebuild([jnp.asarray(x) for x in xs]))
        flat = jax.tree_util.tree_leaves(g)
        if len(flat) == count:
            return [jnp.asarray(flat[i]) for i in float_at]
        if len(flat) == len(float_at):
            return [jnp.asarray(x) for x in flat]
        raise InputError(
            f"grad_fn must return the gradient with the structure of args ({len(float_at)} "
            f"float arrays: {', '.join(in_names)}), got {len(flat)} arrays"
        )

    def checked(xs: Sequence[jax.Array]) -> Leaves:
        try:
            return grad(xs)
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's gradient failed at this point
            raise InputError(f"grad_fn raised {type(e).__name__}: {first_line(e)}") from None

    return checked


def _check_grad_shapes(g: Leaves, point: list[np.ndarray], in_names: list[str]) -> None:
    for name, gi, x in zip(in_names, g, point, strict=True):
        if tuple(np.shape(gi)) != x.shape:
            raise InputError(
                f"grad_fn returned shape {tuple(np.shape(gi))} for {name}, expected {x.shape}"
            )


def _check_reference(ref: Callable, F: Callable, point: list[np.ndarray]) -> None:
    """The reference must compute the same function: same shapes, and the same values to at
    least half the digits of their float type (|a − b| ≤ √eps · max |a|)."""
    try:
        mine, theirs = F(point), ref(point)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"reference(*args) raised {type(e).__name__}: {first_line(e)}") from None
    for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        eps = float(jnp.finfo(jnp.result_type(mine[i])).eps)
        if a.shape != b.shape or np.max(np.abs(a - b), initial=0) > np.sqrt(eps) * max(
            np.max(np.abs(a), initial=0), 1e-300
        ):
            raise InputError(
                "reference must compute the same function as f: its outputs differ at args"
            )
    if len(mine) != len(theirs):
        raise InputError("reference must return the same outputs as f")
