"""Atomic writes: complete or absent, with the usual permissions."""

import os
import stat

import pytest

from jaxcalc.files import atomic_write, write_json


def test_write_json_is_complete_and_readable(tmp_path):
    path = write_json(tmp_path / "sub" / "m.json", {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}\n'
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert os.listdir(path.parent) == ["m.json"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    path = write_json(tmp_path / "m.json", {"old": True})

    def broken(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == '{\n  "old": true\n}\n'
    assert os.listdir(tmp_path) == ["m.json"]
