"""IDX parsing, the data search order, download + verification, and every broken file.

Broken and fake data sets are built in tmp_path; nothing is downloaded (the mirror is a
file:// folder or a fake `urlopen`).
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from jaxcalc import data
from jaxcalc.validation import DataError, InputError


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: 0, 0, type 0x08, ndim, big-endian sizes, values."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def tiny_arrays(n_train: int = 12, n_test: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 4, 4), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 4, 4), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    """A fake data set "tiny" of four gzip IDX files, registered with their checksums.

    The search path is confined to tmp_path (no env var, cwd and data/ inside tmp_path).
    """
    folder = tmp_path / "tiny-files"
    folder.mkdir()
    digests = []
    for stem, array in tiny_arrays().items():
        content = idx_bytes(array)
        (folder / f"{stem}.gz").write_bytes(gzip.compress(content))
        digests.append(hashlib.sha256(content).hexdigest())
    source = data.Source("Tiny", folder.as_uri() + "/", tuple(digests), tuple("0123456789"))
    monkeypatch.setitem(data.DATASETS, "tiny", source)
    monkeypatch.delenv("JAXCALC_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "default_dir", lambda name: tmp_path / "repo" / "data" / name)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    return folder


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_roundtrip(tmp_path, compress):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    content = idx_bytes(array)
    path = tmp_path / ("a.gz" if compress else "a")
    path.write_bytes(gzip.compress(content) if compress else content)
    out, _ = data._read(path, "train-images-idx3-ubyte")
    assert out.dtype == np.uint8 and out.shape == (2, 3, 5)
    np.testing.assert_array_equal(out, array)


def test_parse_idx_other_types():
    values = np.array([1.5, -2.0], ">f4")
    content = bytes([0, 0, 0x0D, 1]) + np.array([2], ">u4").tobytes() + values.tobytes()
    np.testing.assert_array_equal(data.parse_idx(content), [1.5, -2.0])


@pytest.mark.parametrize(
    "content, message",
    [
        (gzip.compress(idx_bytes(np.zeros((3, 4, 4))))[:-30], "truncated or corrupt gzip"),
        (b"hello, not gzip at all", "not a gzip file"),
        (gzip.compress(idx_bytes(np.zeros((3, 4, 4)))[:-5]), "truncated or corrupt"),
        (gzip.compress(idx_bytes(np.zeros(3))), "wrong magic number 0x00000801"),
        (gzip.compress(b"\x08\x03junk"), "wrong magic number"),
    ],
    ids=["truncated-gzip", "not-gzip", "truncated-values", "labels-as-images", "garbage"],
)
def test_read_idx_broken(tmp_path, content, message):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        data._read(path, "train-images-idx3-ubyte")
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_parse_idx_not_idx():
    with pytest.raises(DataError, match="not an IDX file"):
        data.parse_idx(b"\x01\x02\x03\x04")


# --------------------------------------------------------------------------- loading


def test_load_tiny(tiny):
    d = data.load("tiny", data_dir=tiny, val_size=4)
    assert d.name == "tiny" and d.classes == tuple("0123456789")
    assert d.train_images.shape == (8, 4, 4) and d.val_images.shape == (4, 4, 4)
    assert d.test_images.shape == (6, 4, 4) and d.test_labels.shape == (6,)
    arrays = tiny_arrays()
    # The split is a permutation of the training set: nothing lost, nothing duplicated.
    both = np.concatenate([d.train_labels, d.val_labels])
    assert sorted(both) == sorted(arrays["train-labels-idx1-ubyte"])


def test_load_fold(tiny):
    d0 = data.load("tiny", data_dir=tiny, val_size=4)
    d1 = data.load("tiny", data_dir=tiny, val_size=4, val_fold=1)
    labels = tiny_arrays()["train-labels-idx1-ubyte"]
    images = tiny_arrays()["train-images-idx3-ubyte"]
    for d, fold in ((d0, 0), (d1, 1)):
        expected = data.split(images, labels, 4, fold)
        got = (d.train_images, d.train_labels, d.val_images, d.val_labels)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(d0.val_images, d1.val_images)


def test_load_raw_and_gzip_mixed(tiny):
    stem = "t10k-labels-idx1-ubyte"
    (tiny / stem).write_bytes(gzip.decompress((tiny / f"{stem}.gz").read_bytes()))
    (tiny / f"{stem}.gz").unlink()
    d = data.load("tiny", data_dir=tiny, val_size=0)
    np.testing.assert_array_equal(d.test_labels, tiny_arrays()[stem])


def test_checksum_mismatch(tiny):
    arrays = tiny_arrays()
    arrays["train-images-idx3-ubyte"][0, 0, 0] ^= 1  # valid IDX, one bit different
    path = tiny / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(arrays["train-images-idx3-ubyte"])))
    with pytest.raises(DataError, match="SHA-256") as e:
        data.load("tiny", data_dir=tiny)
    assert str(path) in str(e.value)


def test_count_mismatch(tiny):
    labels = tiny_arrays()["train-labels-idx1-ubyte"][:-1]
    path = tiny / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataError, match="11 labels for the 12 images") as e:
        data.load("tiny", data_dir=tiny)
    assert str(path) in str(e.value)


def test_explicit_dir_missing_file(tiny):
    (tiny / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*--data-dir"):
        data.load("tiny", data_dir=tiny)


def test_unknown_dataset():
    with pytest.raises(InputError, match="unknown dataset"):
        data.load("cifar")


def test_split_folds_are_disjoint_blocks_of_one_permutation():
    images, labels = np.arange(12)[:, None] * np.ones((1, 2)), np.arange(12)
    folds = [data.split(images, labels, 4, fold) for fold in range(3)]
    vals = [set(val_y) for *_, val_y in folds]
    assert set.union(*vals) == set(range(12)) and sum(map(len, vals)) == 12
    for train_x, train_y, val_x, val_y in folds:
        assert sorted([*train_y, *val_y]) == list(range(12))
        np.testing.assert_array_equal(train_x[:, 0], train_y)  # rows stay with their labels
        np.testing.assert_array_equal(val_x[:, 0], val_y)
    # Fold 0 is the default split, and every fold keeps the permutation's order.
    order = np.random.default_rng(0).permutation(12)
    np.testing.assert_array_equal(folds[0][3], order[:4])
    np.testing.assert_array_equal(folds[0][1], order[4:])
    np.testing.assert_array_equal(folds[1][1], np.concatenate([order[:4], order[8:]]))


@pytest.mark.parametrize("val_size, fold", [(4, 3), (4, -1), (5, 2), (0, 1)])
def test_split_bad_fold(val_size, fold):
    with pytest.raises(InputError, match="val_fold"):
        data.split(np.zeros((12, 2)), np.zeros(12), val_size, fold)


@pytest.mark.parametrize("val_size", [-1, 12])
def test_split_bad_size(val_size):
    with pytest.raises(InputError, match="val_size"):
        data.split(np.zeros((12, 2)), np.zeros(12), val_size)


def test_split_deterministic():
    x, y = np.arange(100).reshape(50, 2), np.arange(50)
    a, b = data.split(x, y, 10), data.split(x, y, 10)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert set(a[1]).isdisjoint(a[3]) and len(a[1]) == 40


# --------------------------------------------------------------------------- search order


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_search_order(tiny, tmp_path, monkeypatch):
    system = _copy(tiny, tmp_path / "system" / "tiny")
    assert data.locate("tiny") == system
    repo = _copy(tiny, tmp_path / "repo" / "data" / "tiny")
    assert data.locate("tiny") == repo
    cwd = _copy(tiny, tmp_path / "data" / "tiny")
    assert data.locate("tiny") == cwd
    env = _copy(tiny, tmp_path / "env" / "tiny")
    monkeypatch.setenv("JAXCALC_DATA_DIR", str(tmp_path / "env"))
    assert data.locate("tiny") == env
    assert data.locate("tiny", tiny) == tiny
    # An incomplete folder is skipped.
    (env / "train-labels-idx1-ubyte.gz").unlink()
    assert data.locate("tiny") == cwd


def test_candidates_list(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCALC_DATA_DIR", "/somewhere")
    assert data.candidates("tiny") == [
        Path("/somewhere/tiny"),
        tmp_path / "data" / "tiny",
        tmp_path / "repo" / "data" / "tiny",
        tmp_path / "system" / "tiny",
    ]


# --------------------------------------------------------------------------- download


def test_download_verifies_and_renames(tiny, tmp_path):
    d = data.load("tiny", val_size=2)  # nothing local: fetched from the file:// mirror
    target = tmp_path / "repo" / "data" / "tiny"
    assert sorted(p.name for p in target.iterdir()) == sorted(f"{s}.gz" for s in data.FILES)
    assert d.train_images.shape == (10, 4, 4)
    assert data.locate("tiny") == target  # the next run finds the download


def test_download_checksum_mismatch_leaves_nothing(tiny, tmp_path):
    stem = "t10k-labels-idx1-ubyte"
    (tiny / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(6))))
    with pytest.raises(DataError, match=f"{stem}.gz: downloaded content has SHA-256"):
        data.load("tiny")
    target = tmp_path / "repo" / "data" / "tiny"
    names = sorted(p.name for p in target.iterdir())
    assert f"{stem}.gz" not in names and not any(n.endswith(".part") for n in names)


def test_download_without_network(tiny, tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise URLError("no route to host")

    monkeypatch.setattr(data, "urlopen", offline)
    with pytest.raises(DataError, match="no route to host.*put the four IDX files") as e:
        data.load("tiny")
    assert str(tmp_path / "repo" / "data" / "tiny") in str(e.value)
    assert not (tmp_path / "repo" / "data" / "tiny").exists()  # no empty folder left behind


def test_no_download_allowed(tiny):
    with pytest.raises(DataError, match="Tiny not found in .*put the four IDX files"):
        data.load("tiny", allow_download=False)


# --------------------------------------------------------------------------- real MNIST


def test_real_mnist(mnist_dir):
    d = data.load("mnist", data_dir=mnist_dir)
    assert d.train_images.shape == (55000, 28, 28) and d.train_images.dtype == np.uint8
    assert d.val_images.shape == (5000, 28, 28) and d.test_images.shape == (10000, 28, 28)
    assert set(np.unique(d.test_labels)) == set(range(10))
    assert np.bincount(d.val_labels, minlength=10).min() > 400  # every class in validation
