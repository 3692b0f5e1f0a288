"""`pallas_call` over named operands, with the in-place updates derived from their trees.

`pallas_call` takes pytrees: each argument and each output may be a dict or a NamedTuple
of arrays (a `Source`, a parameter's `adam.Group`), and the kernel gets its refs in the
same trees, so a kernel names every ref (`state["W2"].theta`) instead of counting them. Only
`input_output_aliases` is flat: an index into the flattened inputs for one into the
flattened outputs. `aliases` computes those indices from the trees, so no code counts refs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
from jax.experimental import pallas as pl


def shapes(tree: Any) -> Any:
    """The `jax.ShapeDtypeStruct` of every array of `tree` (an output shaped like an input)."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)


def each(spec: Any, tree: Any) -> Any:
    """`spec` for every leaf of `tree`: the block specs of a tree whose arrays block alike."""
    return jax.tree.map(lambda _: spec, tree)


def _first_leaves(trees: Mapping[str, Any]) -> dict[str, int]:
    """For each named tree, the index of its first leaf among all their leaves, in order."""
    first, n = {}, 0
    for name, tree in trees.items():
        first[name] = n
        n += len(jax.tree.leaves(tree))
    return first


def aliases(
    inputs: Mapping[str, Any], outputs: Mapping[str, Any], names: Sequence[str]
) -> dict[int, int]:
    """`input_output_aliases` of `pallas_call(kernel, tuple(outputs.values()))(*inputs.values())`
    in which each input named in `names` is updated in place as the output of the same name,
    leaf by leaf (the two must be trees of the same structure)."""
    first_in, first_out = _first_leaves(inputs), _first_leaves(outputs)
    pairs = {}
    for name in names:
        if jax.tree.structure(inputs[name]) != jax.tree.structure(outputs[name]):
            raise ValueError(f"{name}: its input and output are trees of different structure")
        leaves = len(jax.tree.leaves(inputs[name]))
        pairs.update({first_in[name] + k: first_out[name] + k for k in range(leaves)})
    return pairs


def pallas_call(
    kernel: Callable,
    *,
    inputs: Mapping[str, tuple[Any, Any]],
    outputs: Mapping[str, tuple[Any, Any]],
    in_place: Sequence[str] = (),
    **kwargs: Any,
) -> tuple:
    """`pl.pallas_call(kernel, ...)` over named operands; returns the outputs, in order.

    Args:
      kernel: called with a tree of refs per input, then per output, in the order given,
        so that its parameters bear their names (`kernel(step_ref, source, ..., dz1_ref)`).
      inputs: name -> (operand, its block specs): trees of the same structure.
      outputs: name -> (its `jax.ShapeDtypeStruct`s, its block specs), likewise.
      in_place: the inputs updated in place as the output of the same name (`aliases`).
      **kwargs: the rest of `pl.pallas_call`'s arguments (grid, name, interpret, ...).
    """
    return pl.pallas_call(
        kernel,
        out_shape=tuple(shape for shape, _ in outputs.values()),
        in_specs=[spec for _, spec in inputs.values()],
        out_specs=tuple(spec for _, spec in outputs.values()),
        input_output_aliases=aliases(
            {name: a for name, (a, _) in inputs.items()},
            {name: s for name, (s, _) in outputs.items()},
            in_place,
        ),
        **kwargs,
    )(*(operand for operand, _ in inputs.values()))
