"""The graph of a `jaxcalc.scalar.Value`: each node with its data and grad, drawn with matplotlib.

Values are boxes (label, data, grad), operations are circles, edges run left to right from
the inputs to the output. The layout is layered: the output sits in the right-most column,
and each node one column left of the left-most node that uses it (its longest path to the
output), so an input stands next to where it is used; a few sweeps order each column by
the mean height of its neighbours, to uncross edges.
"""

from __future__ import annotations

from typing import NamedTuple

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

from jaxcalc.scalar import Value, topological_order
from jaxcalc.validation import InputError

#: Past this many nodes a drawing is unreadable: draw a smaller expression.
MAX_NODES = 150
_DX, _DY = 1.25, 1.0  # column and row spacing (data units)
_BOX_W, _BOX_H, _OP_R = 1.5, 0.78, 0.26


class Node(NamedTuple):
    """A node of the drawing: a value (box), the operation that made one (circle), or a bend
    (an invisible point where an edge that skips columns crosses one)."""

    kind: str  # "value", "op" or "bend"
    value: Value  # the value itself, the value an operation produced, or an edge's source
    column: int  # 0 = inputs on the left
    row: float  # position within the column


class Layout(NamedTuple):
    nodes: list[Node]
    edges: list[tuple[int, int]]  # (from, to) indices into nodes, one column left to right


def layout(root: Value, *, sweeps: int = 8) -> Layout:
    """Columns and rows of every value and operation under `root` (see the module docstring).

    Every edge spans one column: one that would skip columns runs through a bend node in each.
    """
    order = topological_order(root)
    if len(order) > MAX_NODES:
        raise InputError(f"the graph has {len(order)} values; draw one of at most {MAX_NODES}")
    depth = {id(root): 0}  # longest path to the root, counting op nodes: values even, ops odd
    for v in reversed(order):  # every user of v comes before v in this order
        for child in v._prev:
            depth[id(child)] = max(depth.get(id(child), 0), depth[id(v)] + 2)
    last = max(depth.values())

    nodes: list[Node] = []
    index: dict[tuple[str, int], int] = {}
    for v in order:
        index[("value", id(v))] = len(nodes)
        nodes.append(Node("value", v, last - depth[id(v)], 0.0))
        if v._prev:
            index[("op", id(v))] = len(nodes)
            nodes.append(Node("op", v, last - depth[id(v)] - 1, 0.0))
    edges = []
    for v in order:
        if v._prev:
            op = index[("op", id(v))]
            for child in v._prev:
                a = index[("value", id(child))]
                for column in range(nodes[a].column + 1, nodes[op].column):
                    nodes.append(Node("bend", child, column, 0.0))
                    edges.append((a, len(nodes) - 1))
                    a = len(nodes) - 1
                edges.append((a, op))
            edges.append((op, index[("value", id(v))]))
    rows = _order_columns(nodes, edges, sweeps)
    return Layout([n._replace(row=r) for n, r in zip(nodes, rows, strict=True)], edges)


def _order_columns(nodes: list[Node], edges: list[tuple[int, int]], sweeps: int) -> list[float]:
    """Row of each node, centred in its column: barycentre sweeps (Sugiyama).

    Sweeping right, each column is sorted by the mean row of its neighbours in the column
    to its left; sweeping left, by those to its right. The order with the fewest crossings
    is kept.
    """
    cols: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        cols.setdefault(n.column, []).append(i)
    pos = [0.0] * len(nodes)

    def place() -> None:
        for members in cols.values():
            for r, i in enumerate(members):
                pos[i] = float(r)

    def crossings() -> int:
        return sum(
            (pos[a1] - pos[a2]) * (pos[b1] - pos[b2]) < 0
            for k, (a1, b1) in enumerate(edges)
            for a2, b2 in edges[k + 1 :]
            if nodes[a1].column == nodes[a2].column
        )

    left: list[list[int]] = [[] for _ in nodes]
    right: list[list[int]] = [[] for _ in nodes]
    for a, b in edges:
        right[a].append(b)
        left[b].append(a)
    place()
    best = (crossings(), [list(m) for m in cols.values()])
    for sweep in range(sweeps):
        forward = sweep % 2 == 0
        for c in sorted(cols, reverse=not forward):
            side = left if forward else right
            key = {i: sum(pos[j] for j in side[i]) / len(side[i]) for i in cols[c] if side[i]}
            cols[c].sort(key=lambda i: key.get(i, pos[i]))  # stable: no neighbours, no move
            place()
        if crossings() < best[0]:
            best = (crossings(), [list(m) for m in cols.values()])
    cols = dict(zip(cols, best[1], strict=True))
    place()
    height = max(len(m) for m in cols.values())
    return [pos[i] + (height - len(cols[n.column])) / 2 for i, n in enumerate(nodes)]


def graph_figure(root: Value, *, title: str = "") -> plt.Figure:
    """Draw the graph under `root` (after `root.backward()`, the grads are the derivatives)."""
    lay = layout(root)
    n_cols = max(n.column for n in lay.nodes) + 1
    n_rows = max(n.row for n in lay.nodes) + 1
    fig, ax = plt.subplots(figsize=(0.95 * _DX * n_cols + 0.6, 0.95 * _DY * n_rows + 0.6))
    xy = [(n.column * _DX, -n.row * _DY) for n in lay.nodes]
    patches: list = []
    for node, (x, y) in zip(lay.nodes, xy, strict=True):
        v = node.value
        if node.kind == "bend":
            patches.append(None)
            continue
        if node.kind == "op":
            patch = Circle((x, y), _OP_R, fc="#fde2c4", ec="#a0522d", lw=1)
            ax.text(x, y, v._op, ha="center", va="center", fontsize=8)
        else:
            colour = "#d5e8f7" if not v._prev else ("#d9f2d0" if v is root else "#eeeeee")
            patch = FancyBboxPatch(
                (x - _BOX_W / 2, y - _BOX_H / 2), _BOX_W, _BOX_H,
                boxstyle="round,pad=0.02,rounding_size=0.08", fc=colour, ec="#555555", lw=1,
            )  # fmt: skip
            text = f"data {v.data:.4g}\ngrad {v.grad:.4g}"
            ax.text(x, y, f"{v.label}\n{text}" if v.label else text,
                    ha="center", va="center", fontsize=7, family="monospace")  # fmt: skip
        ax.add_patch(patch)
        patches.append(patch)
    seen: dict[tuple[int, int], int] = {}
    for a, b in lay.edges:
        k = seen[(a, b)] = seen.get((a, b), -1) + 1  # x * x: a second edge, bent
        into_bend = lay.nodes[b].kind == "bend"
        ax.add_patch(
            FancyArrowPatch(
                xy[a], xy[b], patchA=patches[a], patchB=patches[b],
                arrowstyle="-" if into_bend else "-|>", mutation_scale=8, lw=0.8,
                color="#444444", connectionstyle=f"arc3,rad={0.3 * k}", shrinkA=0, shrinkB=0,
            )
        )  # fmt: skip
    ax.set_xlim(-_DX / 2 - 0.2, (n_cols - 1) * _DX + _DX / 2 + 0.2)
    ax.set_ylim(-(n_rows - 1) * _DY - _DY / 2, _DY / 2)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return fig
