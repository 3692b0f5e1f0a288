"""Backpropagation as a graph: a scalar autodiff engine in the shape of micrograd.

Every arithmetic operation on a `Value` makes a new node that remembers its inputs and a
`_backward` closure: the chain rule for that one operation, out.grad times the local
derivative, added into each input's grad. `backward()` sorts the graph topologically and
calls each node's `_backward` from the output back to the leaves.

The patterns of the chain rule (cs231n):

- add distributes: c = a + b sends c.grad unchanged to a and to b;
- multiply swaps: c = a · b sends b · c.grad to a and a · c.grad to b;
- max routes: c = max(a, b) sends all of c.grad to the larger input, none to the other
  (a tie goes to a). relu(a), max(a, 0) by value, sends nothing back at a = 0, as
  `jax.nn.relu` does.

A value used twice receives the sum of both paths' gradients: grads accumulate (`+=`).

    >>> x = Value(2.0); y = x * x + x; y.backward(); x.grad   # dy/dx = 2x + 1
    5.0
"""

from __future__ import annotations

import math

from jaxcalc.validation import InputTypeError


class Value:
    """A scalar with its gradient, the operation that made it and that operation's inputs."""

    def __init__(self, data: float, _children: tuple = (), _op: str = "", label: str = ""):
        try:
            if isinstance(data, str | bytes) or getattr(data, "size", 1) != 1:
                raise TypeError
            self.data = float(data)
        except (TypeError, ValueError):
            raise InputTypeError(f"a Value holds one number, got {data!r}") from None
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = _children
        self._op = _op
        self.label = label

    def __add__(self, other) -> Value:
        other = as_value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():  # d(a + b)/da = 1, d(a + b)/db = 1: add distributes
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other) -> Value:
        other = as_value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():  # d(ab)/da = b, d(ab)/db = a: multiply swaps
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, k: float) -> Value:
        if not isinstance(k, int | float):
            raise TypeError(f"only constant powers: x ** k with k a number, got {k!r}")
        out = Value(self.data**k, (self,), f"**{k:g}")

        def _backward():  # d(x^k)/dx = k x^(k-1)
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():  # d(e^x)/dx = e^x
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Value:
        out = Value(math.log(self.data), (self,), "log")

        def _backward():  # d(ln x)/dx = 1/x
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():  # tanh'(x) = 1 − tanh(x)²
            self.grad += (1.0 - out.data**2) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        e = math.exp(-abs(self.data))  # stable for any x, as activations.sigmoid
        out = Value(1.0 / (1.0 + e) if self.data >= 0 else e / (1.0 + e), (self,), "σ")

        def _backward():  # σ'(x) = σ(x)(1 − σ(x))
            self.grad += out.data * (1.0 - out.data) * out.grad

        out._backward = _backward
        return out

    def max(self, other) -> Value:
        other = as_value(other)
        first = self.data >= other.data
        out = Value(self.data if first else other.data, (self, other), "max")

        def _backward():  # max routes: all of out.grad to the larger input (ties: self)
            (self if first else other).grad += out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward():  # relu'(x) = 1 if x > 0 else 0 (0 at the kink)
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    def backward(self) -> None:
        """d self / d node for every node of the graph, into node.grad (self.grad = 1)."""
        order = topological_order(self)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

    # The rest are compositions of the operations above: no derivative of their own.
    def __neg__(self) -> Value:
        return self * -1

    def __sub__(self, other) -> Value:
        return self + (-as_value(other))

    def __truediv__(self, other) -> Value:
        return self * as_value(other) ** -1

    def __radd__(self, other) -> Value:
        return self + other

    def __rmul__(self, other) -> Value:
        return self * other

    def __rsub__(self, other) -> Value:
        return as_value(other) - self

    def __rtruediv__(self, other) -> Value:
        return as_value(other) / self

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"


def as_value(x) -> Value:
    """x itself if a `Value`, else a constant leaf."""
    return x if isinstance(x, Value) else Value(x)


def topological_order(root: Value) -> list[Value]:
    """Every node under `root`, each after all of its inputs, `root` last.

    Depth-first with an explicit stack (no recursion limit on long chains): a node is
    pushed back as `done` before its inputs, so it is listed once they all are.
    """
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in node._prev)
    return order
