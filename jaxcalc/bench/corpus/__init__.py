"""The gradient-check corpus: derivative rules with planted bugs, their correct twins, and
JAX's own rules as controls, in a format any corpus module can follow.

A corpus is a module with `CASES`, a sequence of `Case`. `jaxcalc bench --gradcheck
--corpus package.module` scores any such module the same way as this one (`jaxcalc.bench.
gradcheck`): each case in float32 and in float64, by each checker at its defaults.

    Case(name, f, args, buggy, kind, grad_fn=None, order=1, leaves=(), pattern="", torch=None)

- `f(*args)`: the function whose derivative is checked (the rule under test is inside it: a
  `custom_vjp`, a `custom_jvp`, or, with `grad_fn`, a hand-written gradient of a scalar f);
- `args(rng)`: the point, a tuple of pytrees of float64 NumPy arrays (ints stay ints); the
  benchmark casts the floats to each dtype;
- `buggy`: whether the rule is wrong; `kind`: the kind of mistake ("sign", "factor", ...),
  or "twin" / "control" for a correct rule;
- `order`: 2 for a rule wrong only in its second derivative;
- `leaves`: the argument leaves a bug lives in, as the report names them (`x`,
  `params['b']`); `pattern`: the pattern the report should name ("sign", "factor",
  "transpose", "zeros"), "" when none is asked;
- `torch`: an optional port, `torch(*tensors)` with the same arguments as f (a
  `torch.autograd.Function` holding the same rule), for `torch.autograd.gradcheck`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


class Case(NamedTuple):
    name: str
    f: Callable
    args: Callable[[Any], tuple]
    buggy: bool
    kind: str
    grad_fn: Callable | None = None
    order: int = 1
    leaves: tuple[str, ...] = ()
    pattern: str = ""
    torch: Callable | None = None


def cases() -> list[Case]:
    """This project's corpus: the rules of `rules` (bug and twin each) and `controls`."""
    from jaxcalc.bench.corpus import controls, rules

    return [*rules.CASES, *controls.CASES]


CASES = cases()
