"""The scalar autodiff engine against jax.grad (float64), its chain-rule patterns, its graph."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcalc import chapter_network
from jaxcalc.plots.graph import MAX_NODES, graph_figure, layout
from jaxcalc.scalar import Value, topological_order
from jaxcalc.validation import InputError

# Each expression is written once, generically: `ops` is either Value's methods or jnp's.
EXPRESSIONS = {
    "polynomial": lambda a, b, c, ops: a * b + c * a - b**3 / 2.0,
    "neg, sub, rsub, rdiv": lambda a, b, c, ops: -a - (2.0 - b) + 3.0 / c,
    "exp, log": lambda a, b, c, ops: ops["exp"](a * b) + ops["log"](c * c + 1.0),
    "tanh, sigmoid": lambda a, b, c, ops: ops["tanh"](a - c) * ops["sigmoid"](b * 3.0),
    "relu, max": lambda a, b, c, ops: ops["relu"](a + b) + ops["max"](b, c) * a,
    "shared sub-expression": lambda a, b, c, ops: (lambda d: d * d + (d + d) / c)(a * b + c),
    "quotient": lambda a, b, c, ops: (a + b) / (b * c + 4.0) ** 0.5,
}

VALUE_OPS = {
    "exp": Value.exp,
    "log": Value.log,
    "tanh": Value.tanh,
    "sigmoid": Value.sigmoid,
    "relu": Value.relu,
    "max": Value.max,
}
JAX_OPS = {
    "exp": jnp.exp,
    "log": jnp.log,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "max": jnp.maximum,
}
POINTS = [(0.7, -1.3, 2.1), (-0.4, 0.9, 1.5), (1.2, 0.3, -0.8)]


def value_grads(expr, point):
    leaves = [Value(p) for p in point]
    out = expr(*leaves, VALUE_OPS)
    out.backward()
    return out.data, [v.grad for v in leaves]


@pytest.mark.parametrize("name", EXPRESSIONS)
@pytest.mark.parametrize("point", POINTS)
def test_gradients_match_jax_grad(name, point, x64):
    expr = EXPRESSIONS[name]
    data, grads = value_grads(expr, point)
    f = lambda *p: expr(*p, JAX_OPS)  # noqa: E731
    want = jax.grad(f, argnums=(0, 1, 2))(*map(jnp.float64, point))
    assert data == pytest.approx(float(f(*map(jnp.float64, point))), rel=1e-14)
    np.testing.assert_allclose(grads, np.array(want), rtol=1e-12, atol=1e-14)


def test_a_neuron_and_a_small_mlp_match_jax_grad(x64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=3)
    W1, b1 = rng.normal(size=(3, 4)), rng.normal(size=4)
    W2, b2 = rng.normal(size=(4, 2)), rng.normal(size=2)
    target = np.array([0.5, -0.25])

    def loss(W1, b1, W2, b2, *, value):
        """tanh hidden layer, linear output, L = ½ Σ (y − t)², written once for both."""
        act = (lambda v: v.tanh()) if value else jnp.tanh
        h = [act(sum((x[i] * W1[i][j] for i in range(3)), b1[j])) for j in range(4)]
        y = [sum((h[j] * W2[j][k] for j in range(4)), b2[k]) for k in range(2)]
        return sum(((y[k] - target[k]) ** 2 for k in range(2)), 0.0) * 0.5

    vals = [[[Value(w) for w in row] for row in W1], [Value(b) for b in b1]]
    vals += [[[Value(w) for w in row] for row in W2], [Value(b) for b in b2]]
    out = loss(*vals, value=True)
    out.backward()
    got = [
        np.array([[v.grad for v in row] for row in vals[0]]),
        np.array([v.grad for v in vals[1]]),
        np.array([[v.grad for v in row] for row in vals[2]]),
        np.array([v.grad for v in vals[3]]),
    ]
    want = jax.grad(lambda *p: loss(*p, value=False), argnums=(0, 1, 2, 3))(
        *(jnp.asarray(a) for a in (W1, b1, W2, b2))
    )
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-12, atol=1e-14)

    # A single neuron, micrograd's example: o = tanh(x1 w1 + x2 w2 + b).
    x1, x2, w1, w2, b = Value(2.0), Value(0.0), Value(-3.0), Value(1.0), Value(6.8813735870195432)
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.backward()
    assert o.data == pytest.approx(math.sqrt(0.5), rel=1e-12)
    assert [x1.grad, x2.grad, w1.grad, w2.grad] == pytest.approx([-1.5, 0.5, 1.0, 0.0], rel=1e-9)


def test_add_distributes_multiply_swaps_max_routes():
    a, b = Value(3.0), Value(-2.0)
    (a + b).backward()
    assert (a.grad, b.grad) == (1.0, 1.0)  # add: the same gradient to both
    a, b = Value(3.0), Value(-2.0)
    (a * b).backward()
    assert (a.grad, b.grad) == (-2.0, 3.0)  # multiply: each gets the other's value
    a, b = Value(3.0), Value(-2.0)
    (a.max(b) * 5.0).backward()
    assert (a.grad, b.grad) == (5.0, 0.0)  # max: all to the larger, none to the other
    a, b = Value(1.0), Value(1.0)
    a.max(b).backward()
    assert (a.grad, b.grad) == (1.0, 0.0)  # a tie goes to the first


def test_grads_accumulate_over_every_use():
    x = Value(2.0)
    y = x * x + x  # x used three times: dy/dx = 2x + 1
    y.backward()
    assert x.grad == 5.0
    z = Value(-1.5)
    w = z * 4.0
    (w + w * w).backward()  # w used twice: d/dz = 4 (1 + 2w)
    assert z.grad == 4.0 * (1 + 2 * -6.0)
    u = Value(0.5)
    (u + u).backward()  # both inputs of one operation are u
    assert u.grad == 2.0


def test_relu_kink_sends_nothing_back(x64):
    for at, want in ((0.0, 0.0), (1e-300, 1.0), (-1e-300, 0.0)):
        x = Value(at)
        x.relu().backward()
        assert x.grad == want
        assert x.grad == float(jax.grad(jax.nn.relu)(jnp.float64(at)))


def test_sigmoid_is_stable_and_topological_order_handles_long_chains():
    assert Value(-1000.0).sigmoid().data == 0.0 and Value(1000.0).sigmoid().data == 1.0
    x = Value(1.0)
    y = x
    for _ in range(5000):  # beyond Python's recursion limit
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**5000, rel=1e-9)
    order = topological_order(y)
    assert order[-1] is y and len(order) == 2 * 5000 + 1
    at = {id(v): i for i, v in enumerate(order)}
    assert all(at[id(c)] < at[id(v)] for v in order for c in v._prev)  # inputs first


def test_pow_takes_constant_exponents_only():
    with pytest.raises(TypeError, match="constant powers"):
        Value(2.0) ** Value(3.0)


def test_layout_every_edge_spans_one_column_left_to_right():
    a, b = Value(3.0, label="a"), Value(-2.0, label="b")
    c = (a * a + a) * b + (a - b).relu()
    lay = layout(c)
    kinds = [n.kind for n in lay.nodes]
    values = topological_order(c)
    assert kinds.count("value") == len(values)
    assert kinds.count("op") == sum(bool(v._prev) for v in values)
    for i, j in lay.edges:
        assert lay.nodes[j].column == lay.nodes[i].column + 1
    root = [n for n in lay.nodes if n.value is c and n.kind == "value"][0]
    assert root.column == max(n.column for n in lay.nodes)
    # no two nodes share a place
    places = {(n.column, n.row) for n in lay.nodes}
    assert len(places) == len(lay.nodes)


def test_graph_figure_draws_each_value_with_data_and_grad():
    x1, w1, b = Value(2.0, label="x1"), Value(-3.0, label="w1"), Value(1.0, label="b")
    o = (x1 * w1 + b).tanh()
    o.backward()
    fig = graph_figure(o, title="a neuron")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("x1\ndata 2\ngrad") for t in texts)
    assert {"*", "+", "tanh"} <= set(texts)
    assert sum(t.startswith(("data", "x1", "w1", "b")) for t in texts) == 6


def test_graph_figure_refuses_a_huge_graph():
    x = Value(1.0)
    for _ in range(MAX_NODES):
        x = x + 1.0
    with pytest.raises(InputError, match="at most"):
        layout(x)


def test_the_same_network_in_matrix_form_is_chapter_network(x64):
    """A 3-2-2 sigmoid network with MSE on two samples, Value by Value, against the matrix
    form of `jaxcalc.chapter_network` (whose backward pass is checked against `jax.grad`)."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 3)), np.array([[1.0, 0.0], [0.0, 1.0]])
    params = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=2),
              "W2": rng.normal(size=(2, 2)), "b2": rng.normal(size=2)}  # fmt: skip
    v = {k: np.vectorize(Value, otypes=[object])(p) for k, p in params.items()}
    loss = 0.0
    for xi, yi in zip(x, y, strict=True):
        a1 = [
            sum((xi[i] * v["W1"][i, j] for i in range(3)), v["b1"][j]).sigmoid() for j in range(2)
        ]
        a2 = [
            sum((a1[j] * v["W2"][j, k] for j in range(2)), v["b2"][k]).sigmoid() for k in range(2)
        ]
        loss = loss + sum((a2[k] - yi[k]) ** 2 for k in range(2)) / (2 * len(x))
    loss.backward()
    value, grads = chapter_network.loss_and_grad(
        {k: jnp.asarray(p) for k, p in params.items()}, jnp.asarray(x), jnp.asarray(y), loss="mse"
    )
    assert loss.data == pytest.approx(float(value), rel=1e-13)
    for k in params:
        got = np.vectorize(lambda node: node.grad)(v[k])
        np.testing.assert_allclose(got, grads[k], rtol=1e-12, atol=1e-15)
