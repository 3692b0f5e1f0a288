"""Shared test set-up.

Rank promotion raises, so no hand-written derivative can broadcast silently; float64
tests use the `x64` fixture (or `jax.enable_x64(True)` locally). `jaxcalc train` keeps its
compilation cache in `$XDG_CACHE_HOME/jaxcalc`: the tests point that at a folder of their
own, so they never touch the user's cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def own_cache_folder(tmp_path_factory):
    """$XDG_CACHE_HOME for this session (subprocesses inherit it)."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture
def x64():
    """Run the test body with 64-bit floats enabled."""
    with jax.enable_x64(True):
        yield


def data_dir(name: str) -> Path:
    """The folder of data set `name` under $JAXCALC_DATA_DIR: skip if absent, fail in CI."""
    root = os.environ.get("JAXCALC_DATA_DIR")
    folder = Path(root) / name if root else None
    if folder is None or not folder.is_dir():
        msg = (
            f"data set {name!r} not found: set JAXCALC_DATA_DIR to a folder holding {name}/ "
            "(CI uses ../shared/data)"
        )
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return folder


@pytest.fixture
def mnist_dir() -> Path:
    return data_dir("mnist")
