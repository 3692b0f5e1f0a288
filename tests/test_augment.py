"""Tests for jaxcalc.augment: shapes, identities, exact shifts, determinism, range, jit."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.ndimage import map_coordinates

from jaxcalc import augment

KEY = jax.random.PRNGKey(0)


@pytest.fixture(scope="module")
def images() -> jax.Array:
    """Four random 28×28 images in [0, 1] as (4, 784) rows, with a dark border like MNIST."""
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28))
    return jnp.pad(x[:, 4:-4, 4:-4], ((0, 0), (4, 4), (4, 4))).reshape(4, 784)


IDENTITY_PARAMS = {  # affine_elastic runs all the code of affine and elastic
    "shift": {"max_shift": 0},
    "affine_elastic": {
        "max_rotation": 0.0,
        "max_scale": 0.0,
        "max_shear": 0.0,
        "max_translate": 0.0,
        "alpha": 0.0,
    },
}


@pytest.mark.parametrize("name", sorted(augment.AUGMENTATIONS))
def test_shape_dtype_range_and_determinism(images, name):
    f = jax.jit(augment.AUGMENTATIONS[name])
    out = f(KEY, images)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    np.testing.assert_array_equal(out, f(KEY, images))
    if name != "none":
        assert not np.array_equal(out, f(jax.random.PRNGKey(2), images))
        assert not np.array_equal(out, images)


def test_square_images_keep_their_shape(images):
    square = images.reshape(4, 28, 28)
    out = augment.shift(KEY, square)
    assert out.shape == square.shape
    np.testing.assert_array_equal(out.reshape(4, 784), augment.shift(KEY, images))


@pytest.mark.parametrize("name", sorted(IDENTITY_PARAMS))
def test_identity_parameters_give_identity(images, name):
    f = functools.partial(augment.AUGMENTATIONS[name], **IDENTITY_PARAMS[name])
    np.testing.assert_allclose(jax.jit(f)(KEY, images), images, atol=1e-6)


def test_shift_moves_pixels_exactly():
    x = jnp.zeros((1, 28, 28)).at[0, 10, 12].set(1.0)
    t = jax.random.randint(KEY, (1, 2), -2, 3)[0]  # the draw `shift` makes with this key
    out = augment.shift(KEY, x, max_shift=2)
    expected = jnp.zeros((28, 28)).at[10 + t[0], 12 + t[1]].set(1.0)
    np.testing.assert_array_equal(out[0], expected)


def test_shift_range_and_zero_fill():
    x = jnp.ones((200, 28, 28))
    out = augment.shift(KEY, x, max_shift=2)
    # at most 2 rows and 2 columns of each image are vacated, and they become 0
    assert float(out[:, 2:-2, 2:-2].min()) == 1.0
    assert float(out.sum(axis=(1, 2)).min()) >= 28 * 28 - 4 * 28


def test_bilinear_integer_translation_is_exact():
    x = jax.random.uniform(KEY, (2, 28, 28))
    rows, cols = jnp.meshgrid(jnp.arange(28.0), jnp.arange(28.0), indexing="ij")
    out = augment.bilinear(x, jnp.stack([rows + 3] * 2), jnp.stack([cols - 2] * 2))
    # out[r, c] = x[r + 3, c − 2]; zero where that is outside the image
    np.testing.assert_allclose(out[:, :25, 2:], x[:, 3:, :26], atol=1e-6)
    assert float(jnp.abs(out[:, 25:, :]).max()) == 0.0 and float(jnp.abs(out[:, :, :2]).max()) == 0


def test_bilinear_matches_map_coordinates():
    x = jax.random.uniform(KEY, (4, 28, 28))
    rows = jax.random.uniform(jax.random.PRNGKey(3), (4, 28, 28), minval=-3.0, maxval=31.0)
    cols = jax.random.uniform(jax.random.PRNGKey(4), (4, 28, 28), minval=-3.0, maxval=31.0)
    expected = jax.vmap(lambda im, r, c: map_coordinates(im, [r, c], order=1, mode="constant"))(
        x, rows, cols
    )
    np.testing.assert_allclose(augment.bilinear(x, rows, cols), expected, atol=1e-6)


def test_elastic_displacement_statistics():
    """Each component has std α / (2√(3π) σ), for the exact (grid=1) and coarse grids."""
    alpha, sigma = 34.0, 4.0
    expected = alpha / (2 * np.sqrt(3 * np.pi) * sigma)
    for grid in (1, 4):
        d = augment._elastic_displacements(KEY, 100, 28, alpha, sigma, grid)
        assert abs(float(d.std()) / expected - 1) < 0.05, grid


def test_rejects_non_square_rows():
    with pytest.raises(ValueError, match="square"):
        augment.shift(KEY, jnp.zeros((2, 780)))


def _moments(img: np.ndarray) -> tuple[float, float, float]:
    r, c = np.mgrid[: img.shape[0], : img.shape[1]]
    m = img.sum()
    mr, mc = (img * r).sum() / m, (img * c).sum() / m
    return mr, mc, (img * (r - mr) * (c - mc)).sum() / m


def test_deskew_centres_and_straightens_a_slanted_bar():
    img = np.zeros((28, 28), np.float32)
    for row in range(6, 20):  # a bar leaning right by 0.5 px per row, off centre
        img[row, 3 + row // 2 : 5 + row // 2] = 1.0
    mr, mc, cov = _moments(img)
    assert abs(cov) > 1.0 and abs(mc - 13.5) > 1.0
    out = np.asarray(augment.deskew(jnp.asarray(img)[None]))[0]
    mr2, mc2, cov2 = _moments(out)
    assert abs(mr2 - 13.5) < 0.1 and abs(mc2 - 13.5) < 0.1
    assert abs(cov2) < 0.05 * abs(cov)


def test_deskew_keeps_uint8_and_an_upright_centred_image():
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 8:20, 13:15] = 200  # upright bar whose centroid is the centre (13.5, 13.5)
    out = np.asarray(augment.deskew(jnp.asarray(img)))
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out, img)
