"""MNIST and Fashion-MNIST: IDX parsing, location, download and verification.

A data set is four IDX files (gzip or raw), looked for in this order:

1. an explicit `data_dir` (the `--data-dir` option), the folder holding the four files;
2. `$JAXCALC_DATA_DIR/<name>/`;
3. `data/<name>/` in the current directory, then in the repository root;
4. `/usr/share/datasets/<name>/` (Debian's `dataset-fashion-mnist` installs there);
5. else a download into `data/<name>/` from the data set's mirror, written to a `.part`
   file and renamed only once the SHA-256 of its decompressed content is verified.

Every file is checked on every load (magic number, sizes, the decompressed SHA-256,
image and label counts); a broken one raises `DataError` with a one-line message
naming the file and what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.error import URLError
from urllib.request import urlopen

import numpy as np
from tqdm.auto import tqdm

from jaxcalc.validation import DataError, InputError

REPO = Path(__file__).resolve().parent.parent
SYSTEM_DIR = Path("/usr/share/datasets")
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Source:
    """Where a data set comes from: its mirror, the SHA-256 of each decompressed file.

    `sha256` lists the digests in the order of `FILES`.
    """

    title: str
    url: str
    sha256: tuple[str, str, str, str]
    classes: tuple[str, ...]


DATASETS: dict[str, Source] = {
    "mnist": Source(
        title="MNIST",
        url="https://storage.googleapis.com/cvdf-datasets/mnist/",
        sha256=(
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
        classes=tuple("0123456789"),
    ),
    "fashion-mnist": Source(
        title="Fashion-MNIST",
        url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        sha256=(
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}


PIXELS = 28 * 28  # every image of every data set here is 28 x 28: the network's inputs


class Data(NamedTuple):
    """A loaded data set: uint8 images (n, 28, 28) and uint8 labels (n,) per split.

    The validation split is held out of the training set; the test set is the
    data set's own (t10k) files.
    """

    name: str
    classes: tuple[str, ...]
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def _source(name: str) -> Source:
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def _digest(source: Source, stem: str) -> str:
    return source.sha256[FILES.index(stem)]


def _file(folder: Path, stem: str) -> Path | None:
    """`folder/stem.gz` or `folder/stem`, whichever exists (gzip first)."""
    for path in (folder / f"{stem}.gz", folder / stem):
        if path.is_file():
            return path
    return None


def _complete(folder: Path) -> bool:
    return all(_file(folder, stem) for stem in FILES)


def default_dir(name: str) -> Path:
    """`data/<name>/` of the repository when run from a checkout, else of the current directory."""
    root = REPO if (REPO / "pyproject.toml").is_file() else Path.cwd()
    return root / "data" / name


def candidates(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for data set `name`, in order (see the module docstring)."""
    if data_dir is not None:
        return [Path(data_dir)]
    folders = []
    if root := os.environ.get("JAXCALC_DATA_DIR"):
        folders.append(Path(root) / name)
    folders += [Path.cwd() / "data" / name, default_dir(name), SYSTEM_DIR / name]
    return list(dict.fromkeys(folders))


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder holding all four files of `name`, or None.

    An explicit `data_dir` must hold them: a missing file raises `DataError`.
    """
    _source(name)
    if data_dir is not None:
        folder = Path(data_dir)
        for stem in FILES:
            if _file(folder, stem) is None:
                raise DataError(
                    f"{folder / stem}(.gz) not found: --data-dir must be the folder "
                    f"holding the four {name} IDX files"
                )
        return folder
    return next((f for f in candidates(name) if _complete(f)), None)


def _decompress(path: Path, raw: bytes) -> bytes:
    """The content of `path`: gunzipped when it is gzip (by magic bytes), else as is."""
    if raw[:2] != b"\x1f\x8b":
        if path.suffix == ".gz":
            raise DataError(f"{path}: not a gzip file; {_fix(path)}")
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: truncated or corrupt gzip ({e}); {_fix(path)}") from None


def _fix(path: Path) -> str:
    return "delete it to download it again, or replace it with a good copy"


def parse_idx(data: bytes, *, path: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Parse decompressed IDX content into an array of the shape its header declares.

    IDX: two zero bytes, a type code (0x08 = uint8 ...), the number of dimensions d,
    d big-endian uint32 sizes, then the values in row-major order.
    """
    path = Path(path)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad header {data[:4].hex()}); {_fix(path)}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header; {_fix(path)}")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow past int64
    if len(data) - header != expected:
        raise DataError(
            f"{path}: holds {len(data) - header} bytes of values, its header {shape} says "
            f"{expected}: the file is truncated or corrupt; {_fix(path)}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _read(path: Path, stem: str) -> tuple[np.ndarray, str]:
    """Read `path` and check its magic number: (array, SHA-256 of the decompressed content)."""
    data = _decompress(path, path.read_bytes())
    magic, kind = (IMAGES_MAGIC, "images") if "images" in stem else (LABELS_MAGIC, "labels")
    if int.from_bytes(data[:4], "big") != magic:
        raise DataError(
            f"{path}: wrong magic number 0x{data[:4].hex()}, expected 0x{magic:08x} ({kind}); "
            f"{_fix(path)}"
        )
    return parse_idx(data, path=path), hashlib.sha256(data).hexdigest()


def download(name: str, folder: str | os.PathLike | None = None) -> Path:
    """Download the missing files of `name` into `folder` (default `data/<name>/`).

    Each file goes to `<file>.part` and is renamed only once its decompressed SHA-256
    is verified; nothing partial is left behind on failure.
    """
    source = _source(name)
    folder = Path(folder) if folder is not None else default_dir(name)
    created = not folder.exists()
    try:
        for stem in FILES:
            if _file(folder, stem) is not None:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{stem}.gz"
            part = folder / f"{stem}.gz.part"
            try:
                _fetch(source.url + target.name, part)
                data = _decompress(part, part.read_bytes())
                digest = hashlib.sha256(data).hexdigest()
                if digest != _digest(source, stem):
                    raise DataError(
                        f"{source.url}{target.name}: downloaded content has SHA-256 "
                        f"{digest[:12]}..., expected {_digest(source, stem)[:12]}...; "
                        f"try again later or put the four files in {folder}"
                    )
                os.replace(part, target)
            finally:
                part.unlink(missing_ok=True)
    except BaseException:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # leave no empty folder behind a failed first download
        raise
    return folder


def _fetch(url: str, part: Path) -> None:
    """Stream `url` into `part` with a progress bar; a network failure is a `DataError`."""
    try:
        with urlopen(url, timeout=60) as response, part.open("wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=part.name[:-5]) as bar:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
    except (URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(
            f"could not download {url} ({reason}); without network, put the four IDX files "
            f"in {part.parent} or pass --data-dir"
        ) from None


def split(
    images: np.ndarray, labels: np.ndarray, val_size: int, fold: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out `val_size` examples of the training set: (train_x, train_y, val_x, val_y).

    The split is a fixed random permutation (seed 0), the same for every training seed,
    so a validation score always means the same examples. `fold` k holds out the k-th block
    of `val_size` examples of that permutation: folds are disjoint, for k-fold
    cross-validation (fold 0 is the default split).
    """
    if not 0 <= val_size < len(labels):
        raise InputError(f"val_size must be in [0, {len(labels)}), got {val_size}")
    folds = len(labels) // val_size if val_size else 1
    if not 0 <= fold < folds:
        raise InputError(
            f"val_fold must be in [0, {folds}) for val_size {val_size} of {len(labels)} "
            f"training examples, got {fold}"
        )
    order = np.random.default_rng(0).permutation(len(labels))
    start, stop = fold * val_size, (fold + 1) * val_size
    val, train = order[start:stop], np.concatenate([order[:start], order[stop:]])
    return images[train], labels[train], images[val], labels[val]


def load(
    name: str = "mnist",
    *,
    data_dir: str | os.PathLike | None = None,
    val_size: int = 5000,
    val_fold: int = 0,
    allow_download: bool = True,
) -> Data:
    """Locate (or download), verify and load data set `name` with a validation split
    (`split`'s fold `val_fold`)."""
    source = _source(name)
    folder = locate(name, data_dir)
    if folder is None:
        if not allow_download:
            raise DataError(
                f"{source.title} not found in {', '.join(map(str, candidates(name)))}; "
                f"put the four IDX files in {default_dir(name)} or pass --data-dir"
            )
        folder = download(name)
    paths = {stem: _file(folder, stem) for stem in FILES}
    arrays, digests = {}, {}
    for stem, path in paths.items():
        arrays[stem], digests[stem] = _read(path, stem)
    for images, labels in (FILES[:2], FILES[2:]):
        if len(arrays[images]) != len(arrays[labels]):
            raise DataError(
                f"{paths[labels]}: {len(arrays[labels])} labels for the "
                f"{len(arrays[images])} images of {paths[images].name}; {_fix(paths[labels])}"
            )
        if len(arrays[labels]) == 0:
            raise DataError(f"{paths[labels]}: holds no examples; {_fix(paths[labels])}")
        if arrays[labels].max() >= len(source.classes):
            raise DataError(
                f"{paths[labels]}: label {arrays[labels].max()} is out of range for the "
                f"{len(source.classes)} classes of {source.title}; {_fix(paths[labels])}"
            )
    for stem, path in paths.items():
        if digests[stem] != _digest(source, stem):
            raise DataError(
                f"{path}: SHA-256 of the content {digests[stem][:12]}... is not "
                f"{source.title}'s {_digest(source, stem)[:12]}...: corrupt or another data set; "
                f"{_fix(path)}"
            )
    train = split(arrays[FILES[0]], arrays[FILES[1]], val_size, val_fold)
    return Data(name, source.classes, *train, arrays[FILES[2]], arrays[FILES[3]])
