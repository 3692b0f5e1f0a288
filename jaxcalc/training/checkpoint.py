"""Checkpoints: the training state, its config and history in one `.npz`, written atomically,
and read back with every check a damaged or foreign file needs (`read_checkpoint`)."""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcalc.data import DATASETS, PIXELS
from jaxcalc.files import atomic_write
from jaxcalc.training.config import Config
from jaxcalc.training.step import TrainState, fresh_state
from jaxcalc.validation import DataError, InputError

CHECKPOINT = "checkpoint.npz"  # its name in a run's output folder


def save_checkpoint(path: Path, state: TrainState, cfg: Config, history: list[dict]) -> Path:
    """Write the state, config and history after `len(history)` epochs, atomically."""
    arrays = {f"leaf_{i}": np.asarray(a) for i, a in enumerate(jax.tree.leaves(state))}
    arrays["config"] = np.array(json.dumps(dataclasses.asdict(cfg)))
    arrays["history"] = np.array(json.dumps(history))
    return atomic_write(path, lambda f: np.savez(f, **arrays))


class ArchitectureError(DataError):
    """A checkpoint whose arrays do not fit the network and optimiser state of its config."""


def read_checkpoint(path: str | Path) -> tuple[TrainState, Config, list]:
    """(state, config, history) of the `jaxcalc train` checkpoint at `path`, checked.

    The state's shapes are rebuilt from the checkpoint's own config (`fresh_state`). Raises
    `DataError` for a file that is missing, unreadable or truncated, lacks its config or
    history, holds a config that is not `jaxcalc train`'s, or weights that are not finite;
    `ArchitectureError` (a `DataError`) for arrays of another shape or type than the config's.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint; `jaxcalc train --out DIR` writes one")
    try:
        with np.load(path, allow_pickle=False) as f:
            saved = json.loads(str(f["config"]))
            history = json.loads(str(f["history"]))
            arrays = {k: np.asarray(f[k]) for k in f.files if k.startswith("leaf_")}
    except Exception as e:  # noqa: BLE001 - zip, zlib, JSON, NumPy: each says "damaged"
        why = f"{type(e).__name__}: {str(e).splitlines()[0]}" if str(e) else type(e).__name__
        raise DataError(f"{path}: not a readable checkpoint ({why})") from None
    if not isinstance(saved, dict) or not isinstance(history, list):
        raise DataError(f"{path}: not a readable checkpoint (no config and history)")
    try:
        cfg = Config(**saved).check()
    except (TypeError, InputError) as e:
        raise DataError(f"{path}: its config is not one of jaxcalc train's ({e})") from None
    template = jax.eval_shape(lambda: fresh_state(cfg))
    want = jax.tree.leaves(template)
    _check_arrays(path, arrays, want, cfg)
    leaves = [jnp.asarray(arrays[f"leaf_{i}"]) for i in range(len(want))]
    return jax.tree.unflatten(jax.tree.structure(template), leaves), cfg, history


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], want: list, cfg: Config) -> None:
    """`ArchitectureError` unless `arrays` are `leaf_0`… shaped and typed as `want`;
    `DataError` if any floating-point array holds a NaN or an infinity."""
    n_out = len(DATASETS[cfg.dataset].classes)
    arch = f"the {PIXELS}-{cfg.hidden}-{n_out} network and {cfg.optimizer} state of its config"
    which = f"{path}: a checkpoint of another architecture, or damaged"
    if set(arrays) != {f"leaf_{i}" for i in range(len(want))}:
        raise ArchitectureError(f"{which}: {len(arrays)} arrays where {arch} has {len(want)}")
    for i, w in enumerate(want):
        a = arrays[f"leaf_{i}"]
        if a.shape != w.shape or a.dtype != w.dtype:
            raise ArchitectureError(
                f"{which}: leaf_{i} is {a.shape} {a.dtype} where {arch} has {w.shape} {w.dtype}"
            )
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise DataError(
                f"{path}: holds weights that are NaN or infinite; the run it saved had "
                "diverged or the file is damaged"
            )


def load_checkpoint(path: Path, cfg: Config) -> tuple[TrainState, list]:
    """The state and history saved at `path` by a run with the same config as `cfg`
    (`read_checkpoint`), to resume it.

    Raises `DataError` for a file that is damaged (truncated, not a checkpoint, arrays of
    the wrong shape or type, weights that are not finite) and `InputError` for one written
    with other options.
    """
    try:
        state, saved, history = read_checkpoint(path)
    except DataError as e:
        raise DataError(f"{e}; start again without --resume, or with another --out") from None
    mine, theirs = dataclasses.asdict(cfg), dataclasses.asdict(saved)
    changed = [k for k, v in mine.items() if theirs[k] != v]
    if changed:
        diffs = ", ".join(f"{k} {theirs[k]!r} -> {mine[k]!r}" for k in changed)
        raise InputError(
            f"{path} was written with other options ({diffs}); resume with the same options "
            "or choose another --out"
        )
    return state, history


def resume_advice(path: Path) -> str:
    """What a stopped run can do next: `--resume` from the checkpoint at `path`, if any."""
    if path.is_file():
        return f"--resume continues from {path}"
    return "no checkpoint was written yet (one is written after each epoch)"


class Writer:
    """Writes checkpoints on a background thread, one at a time, so that training goes on.

    `submit` first waits for the previous write (and re-raises its error), so the files
    are written in order; leaving the `with` block waits for the last one, so a finished,
    stopped or failed run always leaves a complete checkpoint. `seconds` is the time spent
    writing, off the training's critical path.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxcalc-checkpoint")
        self._pending: Future | None = None
        self.seconds = 0.0

    def submit(self, path: Path, state: TrainState, cfg: Config, history: list[dict]) -> None:
        """Write a host copy of `state` (taken now) and of `history` to `path`."""
        self.wait()
        state = jax.tree.map(lambda a: np.array(a, copy=True), state)
        self._pending = self._pool.submit(self._save, path, state, cfg, list(history))

    def _save(self, *args: Any) -> None:
        start = time.perf_counter()
        save_checkpoint(*args)
        self.seconds += time.perf_counter() - start

    def wait(self) -> None:
        """Block until the pending write is done; raise what it raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown()
