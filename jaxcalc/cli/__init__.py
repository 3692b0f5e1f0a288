"""The `jaxcalc` command (also `python -m jaxcalc`).

Each subcommand lives in its own module of this package (listed in `SUBCOMMANDS`) and
exposes `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
Bad input is one line on stderr and exit status 2; a data problem exit 1; no tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from pathlib import Path

from jaxcalc import __version__
from jaxcalc.validation import DataError, InputError

#: The subcommand modules, in the order `jaxcalc --help` lists them.
SUBCOMMANDS = ("bench", "derivatives", "descent", "exercises", "gradcheck", "train")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: `jaxcalc train: error: ...`, exit 2."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def nonnegative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def nonnegative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


def check_writable(path: str | os.PathLike, flag: str, *, folder: bool) -> Path:
    """Raise `InputError` naming `flag` unless `path` (a folder or a file) can be written.

    Checked before any work and without creating anything: an existing `path` must be of
    the right kind, and its nearest existing ancestor a writable folder.
    """
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        kind = "a file, not a folder" if folder else "a folder, not a file"
        raise InputError(f"{flag} {path} is {kind}")
    ancestor = path if folder and path.exists() else path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {flag} {path}: {ancestor} is not a writable folder")
    return path


def build_parser() -> Parser:
    parser = Parser(
        prog="jaxcalc",
        description="Calculus and gradients for machine learning, in pure JAX.",
    )
    parser.add_argument("--version", action="version", version=f"jaxcalc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"jaxcalc {args.command}"
    try:
        return int(args.func(args) or 0)
    except InputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # e.g. a disk that is full or an output path that cannot be made
        print(f"{prog}: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{prog}: error: out of memory; try smaller sizes", file=sys.stderr)
        return 1
    except Exception as e:  # XLA reports an allocation failure as JaxRuntimeError
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        print(f"{prog}: error: out of device memory; try smaller sizes", file=sys.stderr)
        return 1
