"""The fused step (`jaxcalc.fused`) against the XLA step, numerically, at a stated precision.

Both start from the same state and take the same `steps` batches of random images. Their
products round differently (another order of summation; on a GPU TF32 or bfloat16 operands),
so they agree to within the products' unit roundoff u (`fused.layout.UNIT_ROUNDOFF`), not
bitwise. Measured:

    loss      max over steps |L_fused − L_xla| / |L_xla|
    gradient  max over leaves ‖g_fused − g_xla‖ / ‖g_xla‖ of the first step's gradient,
              read from Adam's first moment after one step (m = (1 − β₁) g, a linear image)
    weights   max over leaves ‖θ_fused − θ_xla‖ / ‖θ_xla − θ_0‖ after all steps (reported,
              not judged: Adam divides each gradient by its own RMS, so where a gradient is
              near zero its rounding moves the weight by up to the learning rate)

The loss and the gradient must stay below `TOLERANCE_FACTOR · u`, u the coarser of the two
steps' unit roundoffs. `scripts/gpu_bench.sh` runs this on a GPU, where "tf32" is real.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import fused
from jaxcalc.fused import UNIT_ROUNDOFF, Blocks, Layout
from jaxcalc.training.config import Config
from jaxcalc.training.fused_epoch import adam_state, batch_inputs, from_fused, hyper, to_fused
from jaxcalc.training.step import init_state, learning_rate, make_optimizer, make_step

#: Relative error allowed, in units of the products' unit roundoff (see the docstring).
TOLERANCE_FACTOR = 32.0
#: `jax.default_matmul_precision` of the XLA step at each of the fused step's precisions.
XLA_PRECISION = {"tf32": "tensorfloat32", "float32": "float32", "bfloat16": "bfloat16"}


@dataclasses.dataclass(frozen=True)
class Comparison:
    precision: str  # the fused step's
    reference_precision: str  # the XLA step's
    steps: int
    loss_error: float
    gradient_error: float
    weight_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(max(self.loss_error, self.gradient_error) <= self.tolerance)

    def __str__(self) -> str:
        return (
            f"fused {self.precision} vs xla {self.reference_precision}: "
            f"loss {self.loss_error:.1e}, gradient {self.gradient_error:.1e} "
            f"(tolerance {self.tolerance:.1e}): {'ok' if self.ok else 'FAIL'}; "
            f"weights after {self.steps} steps {self.weight_error:.1e}"
        )


def _relative(a: Any, b: Any, origin: Any = None) -> float:
    """max over leaves of ‖a − b‖ / ‖b − origin‖ (origin: zeros by default)."""
    origin = jax.tree.map(jnp.zeros_like, b) if origin is None else origin
    errors = [
        float(jnp.linalg.norm(x - y) / max(float(jnp.linalg.norm(y - o)), 1e-30))
        for x, y, o in zip(*(jax.tree.leaves(t) for t in (a, b, origin)), strict=True)
    ]
    return max(errors)


def compare(
    cfg: Config,
    *,
    n_in: int = 784,
    classes: int = 10,
    steps: int = 10,
    blocks: Blocks | None = None,
    reference_precision: str | None = None,
    interpret: bool = False,
    seed: int = 0,
) -> Comparison:
    """`steps` updates of the XLA step (`training.make_step`) and of the fused step from one
    state, on random batches of `cfg.batch_size` images of `n_in` pixels.

    `blocks`: the fused step's block shapes and precision (`Blocks()`: TF32);
    `reference_precision`: the XLA step's (default: the fused step's).
    """
    blocks = (blocks or Blocks()).check()
    reference = reference_precision or blocks.precision
    layout = Layout(n_in, cfg.hidden, classes, cfg.batch_size, blocks)
    opt = make_optimizer(cfg, steps)
    start = init_state(cfg, opt, n_in, classes)
    with jax.default_matmul_precision(XLA_PRECISION[reference]):
        xla_step = jax.jit(make_step(cfg, opt, classes))
        hp = hyper(cfg)
        step = fused.make_fused_step(layout, hp, smoothing=cfg.label_smoothing, interpret=interpret)
        coefs = fused.coefficient_table(
            jnp.zeros([], jnp.int32), steps, learning_rate(cfg, steps), hp
        )

        @jax.jit
        def fused_step(fs, tally, i, images, labels, key):
            source = batch_inputs(cfg, layout, images, labels, key)
            return step(fs, source, coefs, i, tally)

        rng = np.random.default_rng(seed)
        state, fs = start, to_fused(start, layout)
        tally = fused.Tally(jnp.zeros(steps, jnp.float32), jnp.zeros(steps, jnp.int32))
        xla_losses = []
        for i in range(steps):
            images = jnp.asarray(rng.integers(0, 256, (cfg.batch_size, n_in), dtype=np.uint8))
            labels = jnp.asarray(rng.integers(0, classes, cfg.batch_size).astype(np.int32))
            key = jax.random.PRNGKey(i)
            state, stats = xla_step(state, (images, labels, key))
            xla_losses.append(float(stats.loss))
            fs, tally = fused_step(fs, tally, jnp.array([i], jnp.int32), images, labels, key)
            if i == 0:  # Adam's m after one step: (1 − β₁) times the first gradient
                mine = from_fused(fs, state, layout, 0).opt_state
                gradient_error = _relative(*(adam_state(s).mu for s in (mine, state.opt_state)))
    want = np.array(xla_losses)
    loss_error = float(np.max(np.abs(np.asarray(tally.losses) - want) / np.abs(want)))
    got = from_fused(fs, state, layout, 0)
    u = max(UNIT_ROUNDOFF[blocks.precision], UNIT_ROUNDOFF[reference])
    return Comparison(
        blocks.precision,
        reference,
        steps,
        loss_error,
        gradient_error,
        _relative(got.params, state.params, start.params),
        TOLERANCE_FACTOR * u,
    )
