"""The images as the network reads them, for training, scoring and `jaxcalc hessian` alike.

- `deskewed(data)`: every split of a data set deskewed (`augment.deskew`), in one call;
- `scaled(images)`: uint8 pixels as float32 in [0, 1];
- `inputs(images, augment_name, key)`: a batch as the network's input rows, scaled, then
  distorted (`augment.AUGMENTATIONS`), then flattened.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc import augment
from jaxcalc.data import Data


def deskewed(data: Data) -> Data:
    """`data` with every image deskewed (`augment.deskew`): training, validation, test alike,
    in one call (one compilation) over the three splits together."""
    splits = (data.train_images, data.val_images, data.test_images)
    fixed = np.asarray(augment.deskew(np.concatenate(splits)))
    ends = np.cumsum([len(s) for s in splits])
    train, val, test = np.split(fixed, ends[:-1])
    return data._replace(train_images=train, val_images=val, test_images=test)


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
