"""On a GPU: the fused step against the XLA step at each precision, and where a fused step's
time goes (µs per kernel). Part of `scripts/gpu_bench.sh`; runs alone too:

    PYTHONPATH=. python scripts/gpu_check.py [--json FILE]

1. XLA's own float32 matmul precision on this GPU (its default against float32 and float64).
2. `training.fused_check.compare` for tf32, float32 and bfloat16 products, each against the
   XLA step at the same precision and against the float32 XLA step, at 784-512-10 batch 128
   (Adam) and 784-1024-10 batch 1024 (AdamW, weight average).
3. Each of the three kernels, and the whole step, run alone in an unrolled loop of one
   epoch's steps on resident MNIST-shaped data: µs per call, the empty loop's time taken off.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import fused, training
from jaxcalc.fused import Blocks, Layout, groups
from jaxcalc.fused.forward import forward
from jaxcalc.fused.head import head
from jaxcalc.fused.update import update_w1
from jaxcalc.training import fused_epoch
from jaxcalc.training.fused_check import compare

JOBS = {  # name: (hidden, batch, recipe)
    "512/128": (512, 128, dict(optimizer="adam", weight_decay=0.0, ema=0.0)),
    "1024/1024": (1024, 1024, dict(optimizer="adamw", ema=0.998)),
}
N_TRAIN, STEPS = 60_000, 10
SMOKE = False  # --smoke: a dry run of this script on a CPU (tiny sizes, interpreted kernels)


def config(hidden: int, batch: int, recipe: dict) -> training.Config:
    fields = dict(lr=1e-3, schedule="constant", augment="none", label_smoothing=0.1, deskew=False)
    return training.Config(hidden=hidden, batch_size=batch, **{**fields, **recipe}).check()


def xla_precision() -> dict:
    """Relative error of XLA's float32 product at each precision against float64."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2))
    exact = a.astype(np.float64) @ b.astype(np.float64)
    out = {}
    for name in ("default", "tensorfloat32", "float32", "bfloat16"):
        with jax.default_matmul_precision(None if name == "default" else name):
            got = np.asarray(jax.jit(jnp.matmul)(a, b), np.float64)
        out[name] = float(np.linalg.norm(got - exact) / np.linalg.norm(exact))
    return out


def numerics() -> list[dict]:
    rows = []
    for job, (hidden, batch, recipe) in JOBS.items():
        cfg = config(hidden, batch, recipe)
        base = fused_epoch.blocks_from_env(batch)
        for precision in ("tf32", "float32", "bfloat16"):
            blocks = Blocks(**{**base.__dict__, "precision": precision})
            for reference in dict.fromkeys((precision, "float32")):
                c = compare(
                    cfg, steps=STEPS, blocks=blocks, reference_precision=reference, interpret=SMOKE
                )
                print(f"  {job}: {c}", flush=True)
                rows.append({"job": job, **c.__dict__, "ok": c.ok})
    return rows


def timed(fn, carry, n: int, repeats: int = 5) -> float:
    """Median seconds of `fn(carry, n)` (compiled first)."""
    jax.block_until_ready(fn(carry, n))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(carry, n))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def kernel_times(job: str) -> dict:
    """µs per call of each kernel and of the step, in a loop unrolled 8 times."""
    hidden, batch, recipe = JOBS[job]
    cfg = config(hidden, batch, recipe)
    layout = Layout(784, hidden, 10, batch, fused_epoch.blocks_from_env(batch))
    steps = N_TRAIN // batch
    hp = fused_epoch.hyper(cfg)
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8))
    labels = jnp.asarray(rng.integers(0, 10, N_TRAIN).astype(np.int32))
    order = jnp.asarray(rng.permutation(N_TRAIN)[: steps * batch].reshape(steps, batch))
    src = fused.resident(images, labels, order, layout)
    opt = training.make_optimizer(cfg, steps)
    fs = fused_epoch.to_fused(training.init_state(cfg, opt, 784, 10), layout)
    coefs = fused.coefficient_table(jnp.zeros([], jnp.int32), steps, 1e-3, hp)
    tally = fused.Tally(jnp.zeros(steps, jnp.float32), jnp.zeros(steps, jnp.int32))
    i0 = jnp.zeros(1, jnp.int32)
    kw = {"interpret": SMOKE}
    h1, part = forward(i0, src, fs.params, layout, **kw)
    dz1, _, _ = head(i0, coefs, src, part, h1, tally, groups(fs), layout, hp, **kw)
    step = fused.make_fused_step(layout, hp, smoothing=cfg.label_smoothing, **kw)

    def loop(body):
        def run(carry, n):
            def one(k, c):
                return body(jnp.reshape(k % steps, (1,)).astype(jnp.int32), c)

            return jax.lax.fori_loop(0, n, one, carry, unroll=8)

        return jax.jit(run, static_argnums=1)

    bodies = {
        "empty loop": (lambda i, c: c + i[0], jnp.zeros((), jnp.int32)),
        "forward": (lambda i, c: forward(i, src, fs.params, layout, **kw), (h1, part)),
        "head": (
            lambda i, c: head(i, coefs, src, part, h1, c[1], c[2], layout, hp, **kw),
            (dz1, tally, {k: v for k, v in groups(fs).items() if k != "W1"}),
        ),
        "update_w1": (
            lambda i, c: update_w1(i, coefs, src, dz1, c, layout, hp, **kw),
            groups(fs)["W1"],
        ),
        "whole step": (lambda i, c: step(c[0], src, coefs, i, c[1]), (fs, tally)),
    }
    n = 8 * (steps // 8)
    seconds = {name: timed(loop(body), carry, n) for name, (body, carry) in bodies.items()}
    empty = seconds.pop("empty loop")
    out = {name: 1e6 * (s - empty) / n for name, s in seconds.items()}
    out["empty loop"] = 1e6 * empty / n
    out["samples/s (whole step)"] = batch / (out["whole step"] * 1e-6)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--smoke", action="store_true", help="a dry run on a CPU, tiny sizes")
    args = parser.parse_args()
    if args.smoke:
        global SMOKE, N_TRAIN, STEPS
        SMOKE, N_TRAIN, STEPS = True, 256, 2
        JOBS.update({k: (32, 32, r) for k, (_, _, r) in JOBS.items()})
    elif jax.default_backend() != "gpu":
        print("gpu_check: JAX sees no GPU here", file=sys.stderr)
        return 2
    result = {"jax": jax.__version__, "device": jax.devices()[0].device_kind}
    print(f"jax {result['jax']} on {result['device']}", flush=True)
    result["xla_matmul_error"] = xla_precision()
    print("XLA float32 matmul, relative error against float64:", result["xla_matmul_error"])
    print("fused step against the XLA step:", flush=True)
    result["numerics"] = numerics()
    result["kernels_us"] = {}
    for job in JOBS:
        result["kernels_us"][job] = times = kernel_times(job)
        print(f"  {job}: " + ", ".join(f"{k} {v:,.1f}" for k, v in times.items()), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if all(r["ok"] for r in result["numerics"]) else 1


if __name__ == "__main__":
    sys.exit(main())
