"""Random distortions of image batches, pure and jit-able: `(key, images) -> images`.

`images` is a batch of square grey-level images, (n, s·s) rows or (n, s, s), values in [0, 1];
the result has the same shape and dtype. Every image gets its own random distortion.

All warps are written as a sampling map: output pixel q = (row, col) takes the input's value at
p(q) = q + d(q), by bilinear interpolation, with zeros outside the image:

    out(q) = Σ_{a,b ∈ {0,1}} (1 − |u − a|)(1 − |v − b|) · in(⌊p_r⌋ + a, ⌊p_c⌋ + b),
    (u, v) = p − ⌊p⌋.

- `shift`:   d(q) = t, t an integer vector with |t_i| ≤ max_shift (exact, no interpolation).
- `affine`:  p = c + A (q − c) + t about the centre c, A = R(θ) · Sh(h) · diag(s_r, s_c),
             θ ~ U(±max_rotation°), h ~ U(±max_shear), s_i ~ U(1 ± max_scale),
             t_i ~ U(±max_translate) pixels.
- `elastic`: d = α · (G ξ Gᵀ) per component (Simard et al. 2003): ξ a field of independent
             U(−1, 1) values, G a Gaussian smoothing of width σ; see `elastic`.
- `affine_elastic`: both at once, p = affine(q) + elastic d(q), one interpolation.

`AUGMENTATIONS` maps a name (for `jaxcalc train --augment NAME`) to a distortion with the
parameters used in the project's MNIST recipe.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.validation import InputError, check_nonempty, check_rows


def _as_square(images: jax.Array) -> jax.Array:
    """(n, s·s) or (n, s, s) -> (n, s, s); `InputError` for any other shape or no image."""
    if images.ndim not in (2, 3) or (images.ndim == 3 and images.shape[1] != images.shape[2]):
        raise InputError(f"images must be (n, s·s) rows or (n, s, s), got shape {images.shape}")
    check_rows("images", images.shape, what="image")
    check_nonempty("images", images.shape)
    if images.ndim == 3:
        return images
    side = math.isqrt(images.shape[-1])
    if side * side != images.shape[-1]:
        raise InputError(f"rows of {images.shape[-1]} pixels are not square images")
    return images.reshape(images.shape[0], side, side)


def _grid(side: int) -> tuple[jax.Array, jax.Array]:
    """Row and column index of every pixel, two (side, side) float32 arrays."""
    r = jnp.arange(side, dtype=jnp.float32)
    return jnp.broadcast_to(r[:, None], (side, side)), jnp.broadcast_to(r[None, :], (side, side))


def bilinear(images: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """Sample each (s, s) image at real positions (rows, cols), each (n, s, s); zero outside.

    A hand-written gather (4 reads per pixel) on the image zero-padded by one pixel before
    and two after; positions are clipped into that border, so anything beyond the image reads
    0. Same result as `jax.scipy.ndimage.map_coordinates(image, [rows, cols], order=1,
    mode="constant")`, several times faster on CPU.
    """
    n, side, _ = images.shape
    width = side + 3
    padded = jnp.pad(images, ((0, 0), (1, 2), (1, 2))).reshape(n, width * width)
    rows = jnp.clip(rows, -1.0, float(side))
    cols = jnp.clip(cols, -1.0, float(side))
    r0, c0 = jnp.floor(rows), jnp.floor(cols)
    u, v = rows - r0, cols - c0
    # Index into the padded image: the +1 undoes the padding, so 0 <= index of a corner.
    index = ((r0.astype(jnp.int32) + 1) * width + c0.astype(jnp.int32) + 1).reshape(n, -1)

    def at(offset: int) -> jax.Array:
        return jnp.take_along_axis(padded, index + offset, axis=1).reshape(n, side, side)

    top = (1.0 - v) * at(0) + v * at(1)
    bottom = (1.0 - v) * at(width) + v * at(width + 1)
    return ((1.0 - u) * top + u * bottom).astype(images.dtype)


def shift(key: jax.Array, images: jax.Array, max_shift: int = 2) -> jax.Array:
    """Move each image by a random integer vector t, |t_i| ≤ max_shift; vacated pixels are 0."""
    square = _as_square(images)
    n, side, _ = square.shape
    m = max_shift
    t = jax.random.randint(key, (n, 2), -m, m + 1)
    padded = jnp.pad(square, ((0, 0), (m, m), (m, m)))
    # out[q] = in[q - t]: the window of the padded image starting at m - t.
    out = jax.vmap(lambda img, s: jax.lax.dynamic_slice(img, (m - s[0], m - s[1]), (side, side)))(
        padded, t
    )
    return out.reshape(images.shape)


def _affine_positions(
    key: jax.Array,
    n: int,
    side: int,
    max_rotation: float,
    max_scale: float,
    max_shear: float,
    max_translate: float,
) -> tuple[jax.Array, jax.Array]:
    """Sampling positions p = c + A (q − c) + t of random affine maps, two (n, s, s) arrays."""
    k_rot, k_scale, k_shear, k_move = jax.random.split(key, 4)
    theta = jnp.deg2rad(jax.random.uniform(k_rot, (n,), minval=-max_rotation, maxval=max_rotation))
    scale = 1.0 + jax.random.uniform(k_scale, (n, 2), minval=-max_scale, maxval=max_scale)
    shear = jax.random.uniform(k_shear, (n,), minval=-max_shear, maxval=max_shear)
    move = jax.random.uniform(k_move, (n, 2), minval=-max_translate, maxval=max_translate)
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    # A = R(θ) [[1, h], [0, 1]] diag(s_r, s_c), written out entry by entry.
    a_rr = cos * scale[:, 0]
    a_rc = (cos * shear - sin) * scale[:, 1]
    a_cr = sin * scale[:, 0]
    a_cc = (sin * shear + cos) * scale[:, 1]
    centre = (side - 1) / 2.0
    q_r, q_c = _grid(side)
    q_r, q_c = q_r[None] - centre, q_c[None] - centre

    def col(x: jax.Array) -> jax.Array:
        return x[:, None, None]

    rows = centre + col(a_rr) * q_r + col(a_rc) * q_c + col(move[:, 0])
    cols = centre + col(a_cr) * q_r + col(a_cc) * q_c + col(move[:, 1])
    return rows, cols


def affine(
    key: jax.Array,
    images: jax.Array,
    max_rotation: float = 8.0,
    max_scale: float = 0.08,
    max_shear: float = 0.1,
    max_translate: float = 2.0,
) -> jax.Array:
    """Random affine warp about the image centre (rotation in degrees, the rest as fractions
    and pixels); the identity when every `max_*` is 0."""
    square = _as_square(images)
    n, side, _ = square.shape
    rows, cols = _affine_positions(key, n, side, max_rotation, max_scale, max_shear, max_translate)
    return bilinear(square, rows, cols).reshape(images.shape)


@functools.cache
def _smoothing_matrix(side: int, sigma: float, grid: int) -> np.ndarray:
    """G (side, m): G[i, j] = √grid · N(i; x_j, σ²) on noise points x_j = j·grid − pad.

    The noise grid extends pad = ⌈3σ⌉ beyond the image on each side, so the field has the
    same statistics everywhere (no boundary effect). With grid = 1 this is Simard's
    convolution with a normalised Gaussian; a coarser grid (≤ σ) draws grid² times fewer
    random numbers and, thanks to the √grid per axis, gives a field of the same variance and
    spectrum, up to ripples of relative size ~2·exp(−π²σ²/grid²) (< 1e-4 for grid ≤ σ).
    """
    pad = math.ceil(3 * sigma)
    points = np.arange(-pad, side + pad, grid, dtype=np.float32)
    pixels = np.arange(side, dtype=np.float32)
    gauss = np.exp(-0.5 * ((pixels[:, None] - points[None, :]) / sigma) ** 2)
    return (math.sqrt(grid) / (math.sqrt(2 * math.pi) * sigma) * gauss).astype(np.float32)


def _elastic_displacements(
    key: jax.Array, n: int, side: int, alpha: float, sigma: float, grid: int
) -> jax.Array:
    """Displacement fields d = α · G ξ Gᵀ for rows and columns, (n, 2, s, s)."""
    g = _smoothing_matrix(side, sigma, grid)
    m = g.shape[1]
    noise = jax.random.uniform(key, (n, 2, m, m), minval=-1.0, maxval=1.0)
    return alpha * jnp.einsum("im,nkml,jl->nkij", g, noise, g)


def elastic(
    key: jax.Array, images: jax.Array, alpha: float = 34.0, sigma: float = 4.0, grid: int = 2
) -> jax.Array:
    """Elastic distortion (Simard, Steinkraus & Platt 2003): p(q) = q + d(q) with
    d = α · (ξ ∗ g_σ), ξ independent U(−1, 1) per noise point and component, g_σ the
    normalised 2-D Gaussian of width σ (computed as G ξ Gᵀ, see `_smoothing_matrix`;
    grid=1 is the exact construction, larger grids a cheaper one with the same statistics).
    Each displacement component has standard deviation α / (2√(3π) σ) ≈ 1.4 px for the
    defaults.
    """
    square = _as_square(images)
    n, side, _ = square.shape
    d = _elastic_displacements(key, n, side, alpha, sigma, grid)
    q_r, q_c = _grid(side)
    return bilinear(square, q_r[None] + d[:, 0], q_c[None] + d[:, 1]).reshape(images.shape)


def affine_elastic(
    key: jax.Array,
    images: jax.Array,
    max_rotation: float = 12.0,
    max_scale: float = 0.12,
    max_shear: float = 0.2,
    max_translate: float = 2.0,
    alpha: float = 34.0,
    sigma: float = 4.0,
    grid: int = 2,
) -> jax.Array:
    """`affine` and `elastic` composed into one sampling map p = affine(q) + d(q)."""
    square = _as_square(images)
    n, side, _ = square.shape
    k_affine, k_elastic = jax.random.split(key)
    rows, cols = _affine_positions(
        k_affine, n, side, max_rotation, max_scale, max_shear, max_translate
    )
    d = _elastic_displacements(k_elastic, n, side, alpha, sigma, grid)
    return bilinear(square, rows + d[:, 0], cols + d[:, 1]).reshape(images.shape)


def identity(key: jax.Array, images: jax.Array) -> jax.Array:
    """No distortion."""
    del key
    return images


@jax.jit
def deskew(images: jax.Array) -> jax.Array:
    """Straighten and centre each image by its moments (LeCun et al.'s deskewing).

    With the image as a mass distribution: centroid m = (m_r, m_c), slant
    a = cov(r, c) / var(r). Output pixel q samples the input at
        p_r = m_r + (q_r − c),   p_c = m_c + (q_c − c) + a (q_r − c),   c = (s − 1)/2,
    which moves the centroid to the centre c and makes cov(r, c) zero (upright strokes).
    Deterministic: applied alike to training, validation and test images (uint8 in and out,
    or floats in [0, 1]).
    """
    square = _as_square(images)
    x = square.astype(jnp.float32)
    n, side, _ = x.shape
    r, c = (g[None] for g in _grid(side))
    mass = jnp.maximum(jnp.sum(x, axis=(1, 2)), 1e-6)[:, None, None]
    m_r = jnp.sum(x * r, axis=(1, 2), keepdims=True) / mass
    m_c = jnp.sum(x * c, axis=(1, 2), keepdims=True) / mass
    var_r = jnp.sum(x * (r - m_r) ** 2, axis=(1, 2), keepdims=True) / mass
    cov_rc = jnp.sum(x * (r - m_r) * (c - m_c), axis=(1, 2), keepdims=True) / mass
    slant = cov_rc / jnp.maximum(var_r, 1e-6)
    centre = (side - 1) / 2
    out = bilinear(x, m_r + (r - centre), m_c + (c - centre) + slant * (r - centre))
    if jnp.issubdtype(images.dtype, jnp.integer):
        out = jnp.round(out)
    return out.astype(images.dtype).reshape(images.shape)


Augmentation = Callable[[jax.Array, jax.Array], jax.Array]

AUGMENTATIONS: dict[str, Augmentation] = {
    "none": identity,
    "shift": shift,
    "affine": affine,
    "elastic": elastic,
    "affine_elastic": affine_elastic,
}
