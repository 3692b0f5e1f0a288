"""`jaxcalc train`'s persistent compilation cache: where it goes, that it is used, when not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from jaxcalc.training import compile_cache

PROGRAM = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp
    from jaxcalc.training import compile_cache
    folder = compile_cache.enable()
    print(folder)
    print(jax.jit(lambda x: jnp.sin(x) @ x.T).lower(jnp.ones((64, 64))).compile() is not None)
    """
)


def run(env: dict) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0]


def test_cache_goes_to_xdg_cache_home_and_fills(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    assert compile_cache.default_folder() == tmp_path / "jaxcalc"
    assert run(dict(os.environ)) == str(tmp_path / "jaxcalc")
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "jaxcalc").iterdir()}
    assert written  # the compiled program is on disk
    run(dict(os.environ))  # a second process reads it, writes nothing
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "jaxcalc").iterdir()} == written


def test_a_cache_configured_already_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "own"))
    assert run(dict(os.environ)) == "None"
    assert not (tmp_path / "xdg" / "jaxcalc").exists()


def test_an_unwritable_folder_turns_the_cache_off(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    assert run(dict(os.environ)) == "None"
