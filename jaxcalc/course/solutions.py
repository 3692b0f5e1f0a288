"""Reference solutions of the course's "your turn" exercises, as a learner would write them.

Each function has the signature the exercise asks for; `jaxcalc.course.checks` checks a
learner's function against the library, and `jaxcalc.course.solutions_markdown()` renders
these sources for the solutions page.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxcalc.activations import sigmoid, softmax


def central_difference(f, x, h):
    """f'(x) by the central difference with step h."""
    return (f(x + h) - f(x - h)) / (2 * h)


def gradient_f(p):
    """∇f at p = (x, y) for f(x, y) = x³y² + 2xy − y³, by hand."""
    x, y = p[0], p[1]
    df_dx = 3 * x**2 * y**2 + 2 * y  # y held constant
    df_dy = 2 * x**3 * y + 2 * x - 3 * y**2  # x held constant
    return jnp.array([df_dx, df_dy])


def backprop_example(x, w1, w2, target):
    """(dL/dw1, dL/dw2) for y = w2 σ(w1 x), L = ½ (y − target)², one chain-rule step a line."""
    z1 = w1 * x  # forward
    a1 = sigmoid(z1)
    y = w2 * a1
    dL_dy = y - target  # backward
    dL_dw2 = dL_dy * a1
    dL_da1 = dL_dy * w2
    dL_dz1 = dL_da1 * a1 * (1 - a1)  # σ'(z1) = σ(z1)(1 − σ(z1))
    dL_dw1 = dL_dz1 * x
    return dL_dw1, dL_dw2


def jacobian(f, x, h):
    """∂f_i/∂x_j of f: Rⁿ → Rᵐ at x, (m, n), by central differences."""
    columns = []
    for j in range(x.shape[0]):
        e = jnp.zeros_like(x).at[j].set(h)  # step along x_j only
        columns.append((f(x + e) - f(x - e)) / (2 * h))  # column j: ∂f/∂x_j
    return jnp.stack(columns, axis=1)


def gradient_descent(grad, x0, learning_rate, steps):
    """x_{t+1} = x_t − α ∇f(x_t), `steps` times: the trajectory x_0 … x_steps."""
    xs = [x0]
    for _ in range(steps):
        xs.append(xs[-1] - learning_rate * grad(xs[-1]))
    return jnp.stack(xs)


def sigmoid_prime(z):
    """σ'(z)."""
    s = sigmoid(z)
    return s * (1 - s)


def tanh_prime(z):
    """tanh'(z)."""
    return 1 - jnp.tanh(z) ** 2


def relu_prime(z):
    """relu'(z), 0 at z = 0."""
    return jnp.where(z > 0, 1.0, 0.0)


def backward(params, x, y):
    """The 2-layer network's gradients: sigmoid hidden layer, softmax cross-entropy, y one-hot."""
    z1 = x @ params["W1"] + params["b1"]  # forward
    a1 = sigmoid(z1)
    z2 = a1 @ params["W2"] + params["b2"]
    a2 = softmax(z2)
    n = x.shape[0]
    dz2 = (a2 - y) / n  # dL/dz2
    dW2 = a1.T @ dz2  # dL/dW2
    db2 = dz2.sum(axis=0)  # dL/db2: sum over the batch
    da1 = dz2 @ params["W2"].T  # dL/da1
    dz1 = da1 * a1 * (1 - a1)  # dL/dz1 = dL/da1 ⊙ σ'(z1)
    dW1 = x.T @ dz1  # dL/dW1
    db1 = dz1.sum(axis=0)  # dL/db1
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def adam_step(params, grads, m, v, t, learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """One Adam update at step t = 1, 2, …: returns (params, m, v)."""
    m = b1 * m + (1 - b1) * grads  # first moment
    v = b2 * v + (1 - b2) * grads**2  # second moment
    m_hat = m / (1 - b1**t)  # bias corrections
    v_hat = v / (1 - b2**t)
    params = params - learning_rate * m_hat / (jnp.sqrt(v_hat) + eps)
    return params, m, v


def dense_bwd(res, g):
    """The backward rule of y = tanh(x W + b): (dx, dW, db) for the output cotangent g."""
    x, W, y = res  # saved by the forward rule
    dz = g * (1 - y**2)  # through tanh: tanh'(z) = 1 − tanh(z)² = 1 − y²
    dx = dz @ W.T  # dL/dx = dL/dz Wᵀ
    dW = x.T @ dz  # dL/dW = xᵀ dL/dz
    db = dz.sum(axis=0)  # dL/db: sum over the batch
    return dx, dW, db
