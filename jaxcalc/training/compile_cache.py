"""JAX's persistent compilation cache, which `jaxcalc train` turns on by default.

A second run of the same configuration then loads its programs from disk instead of
compiling them (seconds on a CPU, more on a GPU). The folder is
`$XDG_CACHE_HOME/jaxcalc/` (default `~/.cache/jaxcalc/`); a cache the user (or a test)
configured already, for example with `JAX_COMPILATION_CACHE_DIR`, is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax


def default_folder() -> Path:
    """`$XDG_CACHE_HOME/jaxcalc`, or `~/.cache/jaxcalc`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jaxcalc"


def enable(folder: str | os.PathLike | None = None) -> Path | None:
    """Cache every compiled program in `folder` (default `default_folder()`); return it, or
    None when a cache was configured already or the folder cannot be written."""
    if jax.config.jax_compilation_cache_dir:
        return None
    folder = Path(folder) if folder is not None else default_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    return folder
