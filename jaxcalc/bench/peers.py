"""The same job done the way people do it instead: hand-written NumPy and PyTorch eager.

Both train the n_in-H-n_out ReLU network with softmax cross-entropy and Adam
(lr 1e-3, β = (0.9, 0.999), ε = 1e-8) on rows of float32 images: each `*_trainer` sets the
job up and returns `epoch()`, which trains one epoch (a new permutation each time) and
returns when it is done, so the caller can time it. PyTorch is optional: `torch_trainer`
raises ImportError when it is not installed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _numpy_adam(params, grads, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    for k in params:
        m[k] = b1 * m[k] + (1 - b1) * grads[k]
        v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
        m_hat = m[k] / (1 - b1**t)
        v_hat = v[k] / (1 - b2**t)
        params[k] -= lr * m_hat / (np.sqrt(v_hat) + eps)


def numpy_trainer(
    x: np.ndarray, y: np.ndarray, *, hidden: int, batch_size: int, seed: int = 0
) -> Callable[[], None]:
    """A hand-written NumPy forward/backward and Adam; returns `epoch()`."""
    rng = np.random.default_rng(seed)
    n, n_in = x.shape
    n_out = int(y.max()) + 1
    params = {
        "W1": (rng.standard_normal((n_in, hidden)) * np.sqrt(2 / n_in)).astype(np.float32),
        "b1": np.zeros(hidden, np.float32),
        "W2": (rng.standard_normal((hidden, n_out)) * np.sqrt(1 / hidden)).astype(np.float32),
        "b2": np.zeros(n_out, np.float32),
    }
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    eye = np.eye(n_out, dtype=np.float32)
    step = 0

    def epoch() -> None:
        nonlocal step
        order = rng.permutation(n)
        for i in range(n // batch_size):
            idx = order[i * batch_size : (i + 1) * batch_size]
            xb, yb = x[idx], eye[y[idx]]
            z1 = xb @ params["W1"] + params["b1"]
            a1 = np.maximum(z1, 0)
            z2 = a1 @ params["W2"] + params["b2"]
            p = np.exp(z2 - z2.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            dz2 = (p - yb) / batch_size
            da1 = dz2 @ params["W2"].T
            dz1 = da1 * (z1 > 0)
            grads = {
                "W1": xb.T @ dz1,
                "b1": dz1.sum(0),
                "W2": a1.T @ dz2,
                "b2": dz2.sum(0),
            }
            step += 1
            _numpy_adam(params, grads, m, v, step)

    return epoch


def torch_trainer(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int,
    batch_size: int,
    seed: int = 0,
    device: str = "cpu",
) -> Callable[[], None]:
    """`Linear-ReLU-Linear` with `torch.optim.Adam` in eager mode; returns `epoch()` (which
    waits for the device at its end)."""
    import torch

    torch.manual_seed(seed)
    dev = torch.device(device)
    xs = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(dev)
    ys = torch.from_numpy(y.astype(np.int64)).to(dev)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, int(y.max()) + 1),
    ).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = xs.shape[0]

    def epoch() -> None:
        order = torch.randperm(n, device=dev)
        for i in range(n // batch_size):
            idx = order[i * batch_size : (i + 1) * batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xs[idx]), ys[idx]).backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if dev.type == "cuda":
        torch.cuda.synchronize()
    return epoch
