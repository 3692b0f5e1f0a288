"""JAX's own derivative rules as correct controls: jax.nn, jnp.linalg, jax.scipy.special and
lax.conv, each at a point where it is differentiable (no kink, a well-conditioned matrix,
distinct eigenvalues, arguments inside the domain)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as sp
import numpy as np
from jax import lax

from jaxcalc.bench.corpus import Case


def _normal(*shape):
    return lambda rng: (rng.normal(size=shape),)


def _uniform(lo, hi, *shape):
    return lambda rng: (rng.uniform(lo, hi, size=shape),)


def _away(*shape):
    def draw(rng):
        x = rng.normal(size=shape)
        return (np.where(x >= 0, x + 0.2, x - 0.2),)

    return draw


def _matrix(rng):
    return (rng.normal(size=(4, 4)) + 4 * np.eye(4),)


def _spd(rng):
    a = rng.normal(size=(4, 4))
    return (a @ a.T + 4 * np.eye(4),)


def _symmetric(rng):
    a = rng.normal(size=(4, 4))
    return (a + a.T + np.diag([0.0, 3.0, 6.0, 9.0]),)  # well-separated eigenvalues


def _images(rng):
    return rng.normal(size=(2, 3, 6, 6)), rng.normal(size=(4, 3, 3, 3)) / 3


def _conv(x, w, **kw):
    return lax.conv_general_dilated(x, w, **kw, dimension_numbers=("NCHW", "OIHW", "NCHW"))


CONTROLS = {
    # jax.nn
    "jax.nn.relu": (jax.nn.relu, _away(8)),
    "jax.nn.gelu": (jax.nn.gelu, _normal(8)),
    "jax.nn.silu": (jax.nn.silu, _normal(8)),
    "jax.nn.softplus": (jax.nn.softplus, _normal(8)),
    "jax.nn.sigmoid": (jax.nn.sigmoid, _normal(8)),
    "jax.nn.elu": (jax.nn.elu, _away(8)),
    "jax.nn.selu": (jax.nn.selu, _away(8)),
    "jax.nn.celu": (jax.nn.celu, _away(8)),
    "jax.nn.log_softmax": (lambda x: jax.nn.log_softmax(x, axis=-1), _normal(4, 4)),
    "jax.nn.softmax": (lambda x: jax.nn.softmax(x, axis=-1), _normal(4, 4)),
    "jax.nn.logsumexp": (lambda x: jax.nn.logsumexp(x, axis=0), _normal(4, 4)),
    "jax.nn.standardize": (lambda x: jax.nn.standardize(x, axis=-1), _normal(4, 4)),
    "jax.nn.glu": (jax.nn.glu, _normal(8)),
    # jnp.linalg
    "jnp.linalg.inv": (jnp.linalg.inv, _matrix),
    "jnp.linalg.det": (jnp.linalg.det, _matrix),
    "jnp.linalg.slogdet": (lambda a: jnp.linalg.slogdet(a)[1], _matrix),
    "jnp.linalg.solve": (jnp.linalg.solve, lambda rng: (*_matrix(rng), rng.normal(size=4))),
    "jnp.linalg.cholesky": (jnp.linalg.cholesky, _spd),
    "jnp.linalg.eigh": (lambda a: jnp.linalg.eigh(a)[0], _symmetric),
    "jnp.linalg.svd": (lambda a: jnp.linalg.svd(a, compute_uv=False), _symmetric),
    "jnp.linalg.qr": (lambda a: jnp.linalg.qr(a)[1], _matrix),
    "jnp.linalg.norm": (jnp.linalg.norm, _normal(4, 4)),
    "jnp.linalg.matrix_power": (lambda a: jnp.linalg.matrix_power(a, 3), _normal(4, 4)),
    "jnp.linalg.pinv": (jnp.linalg.pinv, _matrix),
    # jax.scipy.special
    "sp.erf": (sp.erf, _normal(8)),
    "sp.erfc": (sp.erfc, _normal(8)),
    "sp.gammaln": (sp.gammaln, _uniform(0.5, 3.0, 8)),
    "sp.digamma": (sp.digamma, _uniform(0.5, 3.0, 8)),
    "sp.xlogy": (sp.xlogy, lambda rng: (rng.normal(size=8), rng.uniform(0.5, 2.0, size=8))),
    "sp.logsumexp": (lambda x: sp.logsumexp(x), _normal(8)),
    "sp.expit": (sp.expit, _normal(8)),
    "sp.logit": (sp.logit, _uniform(0.1, 0.9, 8)),
    "sp.betaln": (sp.betaln, lambda rng: (rng.uniform(0.5, 3, 8), rng.uniform(0.5, 3, 8))),
    "sp.i0e": (sp.i0e, _away(8)),
    "sp.ndtri": (sp.ndtri, _uniform(0.1, 0.9, 8)),
    # lax.conv
    "lax.conv": (lambda x, w: _conv(x, w, window_strides=(1, 1), padding="VALID"), _images),
    "lax.conv stride 2": (
        lambda x, w: _conv(x, w, window_strides=(2, 2), padding="SAME"),
        _images,
    ),
    "lax.conv_transpose": (
        lambda x, w: lax.conv_transpose(
            x, w, strides=(2, 2), padding="SAME", dimension_numbers=("NCHW", "OIHW", "NCHW")
        ),
        lambda rng: (rng.normal(size=(2, 3, 4, 4)), rng.normal(size=(4, 3, 3, 3)) / 3),
    ),
    "lax.conv depthwise": (
        lambda x, w: _conv(x, w, window_strides=(1, 1), padding="SAME", feature_group_count=3),
        lambda rng: (rng.normal(size=(2, 3, 6, 6)), rng.normal(size=(3, 1, 3, 3)) / 3),
    ),
}

CASES = [Case(name, f, args, False, "control") for name, (f, args) in CONTROLS.items()]
