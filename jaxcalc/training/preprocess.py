"""The images as the network reads them, for training, scoring and `jaxcalc hessian` alike.

- `deskewed(data, cache=None)`: every split of a data set deskewed (`augment.deskew`), in
  one call; with a `cache` folder, the result is kept there and found again by the next run
  (`cached_deskew`);
- `scaled(images)`: uint8 pixels as float32 in [0, 1];
- `inputs(images, augment_name, key)`: a batch as the network's input rows, scaled, then
  distorted (`augment.AUGMENTATIONS`), then flattened.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import augment
from jaxcalc.data import Data
from jaxcalc.files import atomic_write

#: Bump when `augment.deskew` changes what it computes: older cache entries are then unused.
DESKEW_VERSION = 1
CACHE_ENTRIES = 4  # deskewed data sets kept in a cache folder (the least recently used go)


def deskewed(data: Data, *, cache: str | os.PathLike | None = None) -> Data:
    """`data` with every image deskewed (`augment.deskew`): training, validation, test alike,
    in one call (one compilation) over the three splits together; kept in and read from the
    folder `cache` when given (`cached_deskew`)."""
    splits = (data.train_images, data.val_images, data.test_images)
    images = np.concatenate(splits)
    if cache is None:
        fixed = np.asarray(augment.deskew(images))
    else:
        fixed = cached_deskew(images, Path(cache))
    ends = np.cumsum([len(s) for s in splits])
    train, val, test = np.split(fixed, ends[:-1])
    return data._replace(train_images=train, val_images=val, test_images=test)


def cache_key(images: np.ndarray) -> str:
    """The SHA-256 of `images` (shape, type, bytes) and of what computes their deskewing:
    `DESKEW_VERSION`, the JAX version and its platform (a different XLA may round otherwise)."""
    images = np.ascontiguousarray(images)
    what = f"deskew {DESKEW_VERSION} jax {jax.__version__} {jax.default_backend()} "
    digest = hashlib.sha256(f"{what}{images.shape} {images.dtype}\n".encode())
    digest.update(memoryview(images).cast("B"))
    return digest.hexdigest()


def cached_deskew(images: np.ndarray, folder: Path) -> np.ndarray:
    """`augment.deskew(images)`, read from `folder` when an earlier call kept it there.

    An entry is the file `deskew-<cache_key>.npz`, holding the deskewed images and the key.
    It is used only if it reads back whole (the zip's CRC-32 checks every byte), its key and
    its shape and type are those of `images`; anything else (damaged, stale, foreign) is
    recomputed and replaced. Written atomically; the least recently used entries beyond
    `CACHE_ENTRIES` are removed. A folder that cannot be written only costs the cache.
    """
    key = cache_key(images)
    path = folder / f"deskew-{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            fixed, saved_key = f["images"], str(f["key"])
        if saved_key == key and fixed.shape == images.shape and fixed.dtype == images.dtype:
            os.utime(path)  # recently used
            return fixed
    except Exception:  # noqa: BLE001 - missing, truncated, not a zip, bad CRC: recompute
        pass
    fixed = np.asarray(augment.deskew(images))
    try:
        atomic_write(path, lambda f: np.savez(f, images=fixed, key=np.array(key)))
        entries = sorted(folder.glob("deskew-*.npz"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-CACHE_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
    return fixed


def scaled(images: jax.Array) -> jax.Array:
    """uint8 pixels as the network reads them: floats in [0, 1], same shape (computed by
    XLA, also for a NumPy array, so that every caller gets the same bits)."""
    return jnp.asarray(images).astype(jnp.float32) / 255.0


def inputs(images: jax.Array, augment_name: str = "none", key: jax.Array | None = None):
    """A batch of uint8 images (B, h, w) as the network's input rows (B, h·w): scaled,
    then distorted by `augment.AUGMENTATIONS[augment_name]` with `key` (not for "none")."""
    x = scaled(images)
    if augment_name != "none":
        x = augment.AUGMENTATIONS[augment_name](key, x)
    return x.reshape(x.shape[0], -1)
