"""The `jaxcalc` command (also `python -m jaxcalc`).

Each subcommand lives in its own module of this package (listed in `SUBCOMMANDS`) and
exposes `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
Bad input is one line on stderr and exit status 2; a data problem or a failed run exit 1;
Ctrl-C 130 and SIGTERM 143, after the same clean-up; no tracebacks.
The argument types (`positive_int`, ...) are thin adapters over `jaxcalc.validation`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaxcalc import __version__
from jaxcalc.validation import (
    DataError,
    InputError,
    RunError,
    check_finite,
    check_in_range,
    check_nonnegative_finite,
    check_nonnegative_int,
    check_positive_finite,
    check_positive_int,
)

_IMPORTED = time.perf_counter()

#: The subcommand modules, in the order `jaxcalc --help` lists them.
SUBCOMMANDS = ("bench", "derivatives", "descent", "exercises", "gradcheck", "hessian", "train")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: `jaxcalc train: error: ...`, exit 2."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}\n")


def _argument(text: str, parse: Callable[[str], Any], check: Callable, expected: str) -> Any:
    """`parse` the text, then run the `jaxcalc.validation` check on it; argparse's error if not."""
    try:
        return check("value", parse(text))
    except ValueError:  # the text did not parse, or the check raised InputError (a ValueError)
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer > 0 (`validation.check_positive_int`)."""
    return _argument(text, int, check_positive_int, "a positive integer")


def positive_int_at_most(limit: int) -> Callable[[str], int]:
    """argparse type: an integer in [1, limit], for a size whose larger values would only
    run for hours or exhaust memory."""

    def check(name: str, value: Any) -> int:
        if check_positive_int(name, value) > limit:
            raise InputError(f"{name} must be at most {limit}, got {value}")
        return value

    return lambda text: _argument(text, int, check, f"a positive integer <= {limit}")


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0 (`validation.check_nonnegative_int`)."""
    return _argument(text, int, check_nonnegative_int, "an integer >= 0")


def finite_float(text: str) -> float:
    """argparse type: a finite number (`validation.check_finite`)."""
    return _argument(text, float, check_finite, "a finite number")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (`validation.check_positive_finite`)."""
    return _argument(text, float, check_positive_finite, "a positive finite number")


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (`validation.check_nonnegative_finite`)."""
    return _argument(text, float, check_nonnegative_finite, "a finite number >= 0")


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1) (`validation.check_in_range`)."""
    return _argument(
        text, float, lambda name, v: check_in_range(name, v, 0, 1), "a number in [0, 1)"
    )


def seconds_since_start() -> float:
    """Seconds since this process started (Linux: from /proc; elsewhere: since this import)."""
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rpartition(")")[2].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED


def progress_to_stderr(message: str) -> None:
    """A line of a long command's progress, on stderr at once."""
    print(message, file=sys.stderr, flush=True)


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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the program is, so that it unwinds (removing temporary files,
    stopping subprocesses) exactly as Ctrl-C does; exit status 143 (128 + SIGTERM)."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as given, for a worker child
    prog = f"jaxcalc {args.command}"
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return int(args.func(args) or 0)
    except InputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except (DataError, RunError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
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
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def command() -> None:
    """The `jaxcalc` command (and `python -m jaxcalc`): `main`, then exit without the
    interpreter's last garbage collection, which walks JAX's and matplotlib's million objects
    for about 0.35 s after the work is done and every file is closed (`gc.freeze`)."""
    code = main()
    gc.freeze()
    sys.exit(code)
