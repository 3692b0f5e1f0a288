"""`jaxcalc hessian` on the MNIST network: its loss Hessian's spectrum, saliency, sharpness.

The maths lives elsewhere: `mlp.second_order` gives the network's Hessian-vector products,
`curvature` the spectrum of any symmetric matrix known through its products. Here:

- `trained_network`: the evaluated weights and the config of a `jaxcalc train` checkpoint;
- `examples`: the slices of a loaded data set to use, the images as the training run saw
  them (deskewed when it was); `training_examples`, `test_examples`: those as the
  network's inputs (`training.preprocess`), and the targets of its loss (label smoothing
  included);
- `spectrum`: top eigenvalues (each with its residual bound), Hutchinson trace and Lanczos
  quadrature of the Hessian H (and the Gauss-Newton G) of the mean loss over a data set
  (`curvature.data_matvec`);
- `saliency`: ∂z2/∂x of the predicted class for a few test digits (`mlp.input_jacobian`);
- `sharpness`: full-batch gradient descent at each learning rate η on a fixed subset, with
  λ_max of H every K steps: gradient descent on a quadratic is stable for η < 2/λ, and
  Cohen et al. (2021) found networks train with λ_max rising to 2/η and hovering there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import curvature, data, mlp, training
from jaxcalc.data import Data
from jaxcalc.losses import one_hot, smooth_labels
from jaxcalc.training.preprocess import deskewed, inputs
from jaxcalc.validation import InputError

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- the network


def trained_network(path: str | Path) -> tuple[mlp.Params, training.Config, int]:
    """(evaluated weights, config, epochs trained) from a `jaxcalc train` checkpoint.

    `training.read_checkpoint` reads and checks it; the weights are those the run scored
    (`training.eval_params`: the running average when `ema` > 0). A missing or damaged file
    is a `DataError`; arrays that do not fit the config's network, an `InputError` (a
    checkpoint of another architecture).
    """
    try:
        state, cfg, history = training.read_checkpoint(path)
    except training.ArchitectureError as e:
        raise InputError(str(e)) from None
    return training.eval_params(state, cfg.ema), cfg, len(history)


def fresh_network(cfg: training.Config) -> mlp.Params:
    """The weights `jaxcalc train` starts from with `cfg` (its seed and initialisation)."""
    return training.fresh_state(cfg).params


# --------------------------------------------------------------------------- data


def examples(cfg: training.Config, d: Data, n_train: int, n_test: int) -> Data:
    """The first `n_train` training and `n_test` test examples of `d` (no validation split),
    the images as `cfg`'s run saw them: deskewed when it was, both slices in one call
    (`training.preprocess.deskewed`; deskewing is per image: the pixels are those of the run)."""
    if n_train > len(d.train_labels):
        raise InputError(f"--examples {n_train} exceeds the {len(d.train_labels)} training images")
    d = d._replace(
        train_images=d.train_images[:n_train],
        train_labels=d.train_labels[:n_train],
        val_images=d.val_images[:0],
        val_labels=d.val_labels[:0],
        test_images=d.test_images[:n_test],
        test_labels=d.test_labels[:n_test],
    )
    return deskewed(d) if cfg.deskew else d


def training_examples(
    cfg: training.Config, d: Data, *, smooth: bool = True
) -> tuple[jax.Array, jax.Array, np.ndarray]:
    """The training examples of `d` (from `examples`) as the run saw them, undistorted:
    (x (n, 784), targets, integer labels). Targets: one-hot with `cfg.label_smoothing`
    (the training loss) when `smooth` and the run smoothed, else the integer labels."""
    labels = d.train_labels.astype(np.int32)
    x = inputs(jnp.asarray(d.train_images))
    eps = cfg.label_smoothing
    if smooth and eps > 0:
        return x, smooth_labels(jnp.asarray(labels), len(d.classes), eps), labels
    return x, jnp.asarray(labels), labels


def test_examples(d: Data) -> tuple[jax.Array, np.ndarray, np.ndarray]:
    """The test examples of `d` (from `examples`) as the network sees them: (x (n, 784),
    uint8 images (n, 28, 28), integer labels)."""
    return inputs(jnp.asarray(d.test_images)), d.test_images, d.test_labels.astype(np.int32)


# --------------------------------------------------------------------------- the spectrum


#: Lanczos steps of each run of the density (`spectrum`'s `density_steps`).
DENSITY_STEPS = 40


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def spectrum(
    params: mlp.Params,
    x: jax.Array,
    y: jax.Array,
    *,
    activation: str,
    top: int = 1,
    trace: bool = False,
    density: bool = False,
    ggn: bool = False,
    key: jax.Array,
    lanczos_steps: int | None = None,
    tol: float | None = None,
    samples: int = 30,
    runs: int = 3,
    density_steps: int = DENSITY_STEPS,
    batch_size: int = 2000,
    progress: Progress = lambda message: None,
) -> dict[str, dict[str, Any]]:
    """{"H": {...}, "G": {...} (with `ggn`)}: each operator's top eigenvalues with their
    residual bounds (an eigenvalue of the operator lies within each; `tol`: Lanczos goes on
    until every bound is within it, `lanczos_steps` then being the cap), the Lanczos steps
    and seconds (compile included), Hutchinson trace ± standard error, and quadrature nodes,
    weights and smoothed density, over the mean loss on all rows of (x, y), `batch_size`
    rows at a time."""
    products = {"H": mlp.hvp, "G": mlp.ggn_vp} if ggn else {"H": mlp.hvp}
    out: dict[str, dict[str, Any]] = {}
    for name, product in products.items():
        matvec = curvature.data_matvec(
            product, params, x, y, batch_size=batch_size, activation=activation
        )
        k_top, k_trace, k_density = jax.random.split(jax.random.fold_in(key, len(out)), 3)
        progress(f"{name}: top {top} eigenvalues by Lanczos")
        find_top = partial(
            curvature.top_eigenvalues, matvec, params, top, key=k_top, with_bounds=True
        )
        ritz, seconds = _timed(lambda: find_top(steps=lanczos_steps, tol=tol))  # noqa: B023
        result: dict[str, Any] = {
            "top": np.asarray(ritz.values).tolist(),
            "top_bounds": np.asarray(ritz.bounds).tolist(),
            "lanczos_steps": ritz.steps,
            "top_seconds": seconds,
        }
        if trace:
            progress(f"{name}: trace from {samples} Rademacher probes")
            est, se = curvature.hutchinson_trace(matvec, params, key=k_trace, samples=samples)
            result["trace"] = {"estimate": float(est), "stderr": float(se), "samples": samples}
        if density:
            progress(f"{name}: density from {runs} runs of {density_steps} Lanczos steps")
            nodes, weights = curvature.lanczos_quadrature(
                matvec, params, key=k_density, runs=runs, steps=density_steps
            )
            grid, values = curvature.density_on_grid(nodes, weights)
            result["density"] = {
                "runs": runs,
                "steps": density_steps,
                "nodes": np.asarray(nodes).tolist(),
                "weights": np.asarray(weights).tolist(),
                "negative_mass": float(jnp.sum(jnp.where(nodes < 0, weights, 0.0)) / runs),
                "grid": np.asarray(grid).tolist(),
                "values": np.asarray(values).tolist(),
            }
        out[name] = result
    return out


def saliency(params: mlp.Params, x: jax.Array, *, activation: str) -> tuple[np.ndarray, ...]:
    """(∂z_c/∂x as (n, 28, 28), predicted classes c) for the rows of x: row c of the input
    Jacobian ∂z2/∂x (`mlp.input_jacobian`). For a relu network z2 is linear in x near x,
    z_c(x + δ) = z_c(x) + ∂z_c/∂x · δ, so the map says what ink adds to or takes from c."""
    jac = mlp.input_jacobian(params, x, activation=activation)  # (n, n_out, 784)
    pred = jnp.argmax(mlp.forward(params, x, activation=activation)[1].z2, axis=1)
    maps = jnp.take_along_axis(jac, pred[:, None, None], axis=1)[:, 0]
    return np.asarray(maps).reshape(-1, 28, 28), np.asarray(pred)


# --------------------------------------------------------------------------- sharpness


def sharpness_examples(n: int, data_dir: str | None = None) -> tuple[jax.Array, jax.Array]:
    """The first n MNIST training images, pixels in [0, 1] centred on the subset's mean
    image (so no single direction of W1, the mean input's, dominates the curvature), and
    their integer labels."""
    d = data.load("mnist", data_dir=data_dir, val_size=0)
    if n > len(d.train_labels):
        raise InputError(f"--examples {n} exceeds the {len(d.train_labels)} training images")
    x = inputs(jnp.asarray(d.train_images[:n]))
    return x - jnp.mean(x, axis=0, keepdims=True), jnp.asarray(d.train_labels[:n], jnp.int32)


def _descend(kw: dict[str, str]) -> Callable:
    """`(params, x, y, lr, steps)` -> (params after `steps` full-batch GD steps, losses)."""

    def descend(params, x, y, lr, steps):
        def step(p, _):
            loss, grads = mlp.loss_and_grad(p, x, y, **kw)
            return jax.tree.map(lambda a, g: a - lr * g, p, grads), loss

        return jax.lax.scan(step, params, None, length=steps)

    return jax.jit(descend, static_argnames="steps")


def sharpness(
    x: jax.Array,
    labels: jax.Array,
    lrs: list[float],
    *,
    steps: int,
    every: int,
    hidden: int = 200,
    activation: str = "tanh",
    loss: str = "mse",
    seed: int = 0,
    lanczos_steps: int = 20,
    progress: Progress = lambda message: None,
) -> list[dict[str, Any]]:
    """For each η: the loss at every step and λ_max of H every `every` steps (and at the
    end) of full-batch gradient descent from the same initial weights; stops at a
    non-finite loss (`diverged_at`). Summary: `summarise`."""
    kw = {"activation": activation, "loss": loss, "output": "identity"}
    y = labels if loss == "cross_entropy" else one_hot(labels, 10)
    params0 = mlp.init_params(jax.random.key(seed), (x.shape[1], hidden, 10), activation=activation)
    descend = _descend(kw)
    runs = []
    for lr in lrs:
        params, losses, at, lams, diverged = params0, [], [], [], None
        for t in range(0, steps + 1, every):
            matvec = curvature.data_matvec(mlp.hvp, params, x, y, **kw)
            key = jax.random.fold_in(jax.random.key(seed), t)
            lam = float(curvature.top_eigenvalues(matvec, params, key=key, steps=lanczos_steps)[0])
            at.append(t)
            lams.append(lam)
            progress(f"lr {lr:g}: step {t}, λ_max {lam:.2f} (2/η = {2 / lr:.2f})")
            if t + every > steps:
                break
            params, chunk = descend(params, x, y, lr, every)
            losses += np.asarray(chunk).tolist()
            if not np.isfinite(chunk).all():
                diverged = t + int(np.argmin(np.isfinite(chunk)))
                break
        run = {"lr": lr, "threshold": 2 / lr, "steps": at, "sharpness": lams, "loss": losses}
        run["diverged_at"] = diverged
        runs.append({**run, "summary": summarise(run)})
    return runs


def summarise(run: dict[str, Any], *, reach: float = 0.95) -> dict[str, Any]:
    """Did λ_max rise to 2/η and hover there? λ_max at the start, its least (and when) and
    largest; the first step after the least with λ ≥ `reach`·2/η (from a start above 2/η,
    gradient descent first throws λ_max below it); λ / (2/η) over the last half of the steps."""
    lam, steps = np.asarray(run["sharpness"], float), np.asarray(run["steps"])
    ratio = lam / run["threshold"]
    least = int(np.argmin(lam))
    reached = [i for i in range(least, len(ratio)) if ratio[i] >= reach]
    late = ratio[steps >= steps[-1] / 2]
    return {
        "initial": float(lam[0]),
        "least": float(lam[least]),
        "least_at": int(steps[least]),
        "largest": float(np.max(lam)),
        "reach": reach,
        "reached_at": int(steps[reached[0]]) if reached else None,
        "late_mean_ratio": float(np.mean(late)),
        "late_min_ratio": float(np.min(late)),
        "late_max_ratio": float(np.max(late)),
    }
