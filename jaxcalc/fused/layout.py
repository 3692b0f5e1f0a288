"""The padded layout the fused step keeps its arrays in, and its block shapes.

Triton compiles only power-of-2 tiles, so every array the kernels touch is stored padded to
whole tiles, once, at rest (never padded again inside a step):

    W1 (K, H) -> (Kp, Hp)    b1 (H,) -> (Hp,)    W2 (H, O) -> (Hp, Op)    b2 (O,) -> (Op,)
    x (B, K)  -> (Bp, Kp)    labels (B,) -> (Bp,), padded rows labelled -1

with Kp a multiple of `blocks.k`, Hp of `blocks.hidden`, Bp of `blocks.batch` and
Op = max(16, next power of 2 ≥ O) (Triton's dot wants every side ≥ 16). The padding is
zeros and stays exactly zero through every step (see `jaxcalc.fused` for why): the
network computed is the unpadded one.

`Blocks` also holds Triton's launch settings, made by Pallas's Triton backend
(`jax.experimental.pallas.triton`), imported only when a kernel is compiled for a GPU
(`triton_params`): on a JAX without that backend, nothing else here needs it.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxcalc.validation import InputError, check_choice, check_positive_int

#: The fused matmuls' precision, and the unit roundoff of their operands (products in
#: float32): "tf32" TF32 tensor cores (10-bit mantissa; Triton's and XLA's default for float32
#: products on a GPU), "float32" IEEE float32, "bfloat16" operands rounded to bfloat16.
UNIT_ROUNDOFF = {"tf32": 2.0**-11, "float32": 2.0**-24, "bfloat16": 2.0**-8}
PRECISIONS = tuple(UNIT_ROUNDOFF)
MIN_DOT = 16  # Triton's tl.dot: every side of a product at least 16


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _is_pow2(n: int) -> bool:
    return isinstance(n, int) and n > 0 and n & (n - 1) == 0


@dataclass(frozen=True)
class Blocks:
    """Block shapes and Triton launch settings of the three kernels (all tunable).

    `batch`: rows of a batch block (the forward's grid, the batch loop of the others);
    `k`: rows of a W1 tile (the update's grid) and the K step of the forward's loop;
    `hidden`: columns of a W1 tile, the hidden block of every kernel. Each a power of 2,
    at least 16. `precision`: that of every product (`PRECISIONS`), accumulated in
    float32. In interpret mode (a CPU, which has no TF32) "tf32" products are float32.
    """

    batch: int = 32
    k: int = 64
    hidden: int = 32
    num_warps: int = 4
    num_stages: int = 3
    precision: str = "tf32"

    def check(self) -> Blocks:
        for name in ("batch", "k", "hidden"):
            value = getattr(self, name)
            if not (_is_pow2(value) and value >= MIN_DOT):
                raise InputError(f"block {name} must be a power of 2 >= {MIN_DOT}, got {value!r}")
        for name in ("num_warps", "num_stages"):
            check_positive_int(name, getattr(self, name))
        check_choice("precision", self.precision, PRECISIONS)
        return self

    def dot(self, a: jax.Array, b: jax.Array, *, trans_a: bool = False, trans_b: bool = False):
        """a @ b (aᵀ, bᵀ when asked) at this precision, accumulated in float32, in a kernel."""
        dims = (((0 if trans_a else 1,), (1 if trans_b else 0,)), ((), ()))
        precision = {"tf32": jax.lax.Precision.DEFAULT, "float32": jax.lax.Precision.HIGHEST}.get(
            self.precision
        )
        if self.precision == "bfloat16":  # cast here too, so that a CPU rounds as a GPU does
            a, b = a.astype(jnp.bfloat16), b.astype(jnp.bfloat16)
            precision = jax.lax.DotAlgorithmPreset.BF16_BF16_F32
        return jax.lax.dot_general(
            a, b, dims, precision=precision, preferred_element_type=jnp.float32
        )

    def compiler_params(self, *, interpret: bool) -> Any:
        """Triton's launch settings; None in interpret mode, which has no use for them."""
        if interpret:
            return None
        return triton_params()(num_warps=self.num_warps, num_stages=self.num_stages)

    @classmethod
    def parse(cls, text: str) -> Blocks:
        """Blocks from "batch,k,hidden[,warps[,stages[,precision]]]" (`$JAXCALC_FUSED_BLOCKS`),
        checked; `InputError` otherwise."""
        names = [field.name for field in dataclasses.fields(cls)]
        try:
            parts = text.split(",")
            if not 3 <= len(parts) <= len(names):
                raise ValueError(f"{len(parts)} values")
            values = [int(v) for v in parts[:5]] + parts[5:]
            return cls(**dict(zip(names, values, strict=False))).check()
        except (ValueError, TypeError) as e:  # InputError is a ValueError
            expected = "batch,k,hidden[,warps[,stages[,precision]]]"
            raise InputError(f"expected {expected} ({e})") from None


def default_blocks(batch_size: int) -> Blocks:
    """The block shapes for a batch of `batch_size` rows: `Blocks()` for small batches (many
    programs for few rows), larger tiles from a batch of 512 on (fewer re-reads of W1 and of
    the partial logits). Both timed on an H200 (docs/gpu/): at 784-512-10 batch 128, 3
    pipeline stages were the fastest of the sweep; at 784-1024-10 batch 1024 the tiles
    below (2 stages) were within 4% of the best. `scripts/gpu_bench.sh` times others."""
    if batch_size >= 512:
        return Blocks(64, 64, 64, num_warps=8, num_stages=2)
    return Blocks()


TRITON = "jax.experimental.pallas.triton"  # Pallas's Triton backend, the kernels' compiler


def triton_params() -> type:
    """Pallas's Triton `CompilerParams`, or an `InputError` saying in one line that this JAX
    lacks the backend.

    Imported here, not with this module: JAX may drop or move the Triton backend, and
    nothing but a kernel compiled for a GPU needs it."""
    try:
        return importlib.import_module(TRITON).CompilerParams
    except (ImportError, AttributeError) as e:
        raise InputError(
            f"JAX {jax.__version__} lacks Pallas's Triton backend ({TRITON}.CompilerParams: "
            f"{type(e).__name__})"
        ) from None


class Layout(NamedTuple):
    """True and padded sizes of one network and batch: `n_in`-`n_hidden`-`n_out`, `batch`."""

    n_in: int
    n_hidden: int
    n_out: int
    batch: int
    blocks: Blocks

    @property
    def k_pad(self) -> int:
        return _round_up(self.n_in, self.blocks.k)

    @property
    def h_pad(self) -> int:
        return _round_up(self.n_hidden, self.blocks.hidden)

    @property
    def o_pad(self) -> int:
        return max(MIN_DOT, 1 << (self.n_out - 1).bit_length())

    @property
    def b_pad(self) -> int:
        return _round_up(self.batch, self.blocks.batch)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The padded shape of each parameter."""
        return {
            "W1": (self.k_pad, self.h_pad),
            "b1": (self.h_pad,),
            "W2": (self.h_pad, self.o_pad),
            "b2": (self.o_pad,),
        }

    def true_shapes(self) -> dict[str, tuple[int, ...]]:
        """The unpadded shape of each parameter (as `mlp.init_params` makes them)."""
        k, h, o = self.n_in, self.n_hidden, self.n_out
        return {"W1": (k, h), "b1": (h,), "W2": (h, o), "b2": (o,)}


def pad_to(a: jax.Array, shape: tuple[int, ...], value: float | int = 0) -> jax.Array:
    """`a` padded at the end of each axis up to `shape` with `value`."""
    widths = [(0, n - s) for s, n in zip(a.shape, shape, strict=True)]
    if any(w < 0 for _, w in widths):
        raise InputError(f"cannot pad shape {a.shape} to the smaller {shape}")
    return jnp.pad(a, widths, constant_values=value) if any(w for _, w in widths) else a


def pad_tree(tree: dict[str, jax.Array], layout: Layout) -> dict[str, jax.Array]:
    """A params-shaped dict (`W1`, `b1`, `W2`, `b2`) in the padded layout."""
    shapes = layout.shapes()
    return {name: pad_to(a, shapes[name]) for name, a in tree.items()}


def unpad_tree(tree: dict[str, jax.Array], layout: Layout) -> dict[str, jax.Array]:
    """The inverse of `pad_tree`: the true-size corner of each padded array."""
    shapes = layout.true_shapes()
    return {name: a[tuple(slice(0, n) for n in shapes[name])] for name, a in tree.items()}


def pad_batch(x: jax.Array, labels: jax.Array, layout: Layout) -> tuple[jax.Array, jax.Array]:
    """Rows `x` (B, K) and integer `labels` (B,) padded to (Bp, Kp) and (Bp,) (label -1)."""
    x = pad_to(x, (layout.b_pad, layout.k_pad))
    return x, pad_to(labels.astype(jnp.int32), (layout.b_pad,), -1)
