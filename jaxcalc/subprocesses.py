"""The child processes jaxcalc starts end with the process that started them.

Two commands run their work in a child: `jaxcalc train` over several processes (a worker
under `training.processes.supervise`) and `jaxcalc bench --devices` on virtual CPU devices
(a measurement under `bench.scaling`). A parent killed without a chance to stop its child
(SIGKILL, a crash) must not leave it running, so each child calls `die_with_parent` first.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # prctl(2): the signal the kernel sends when the parent thread exits


def die_with_parent(parent: int) -> None:
    """End this process as soon as process `parent`, the one that started it, is gone.

    On Linux the kernel kills it (SIGKILL, `prctl(PR_SET_PDEATHSIG)`), however busy it is
    in compiled code, when the thread that started it exits: start children from the main
    thread. Elsewhere a daemon thread checks every second and exits. A parent gone already
    (this process then has another parent, or `parent` was never it) ends it at once, with
    status 1.
    """
    if not _kernel_signals_orphan():
        threading.Thread(target=_watch, args=(parent,), daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _kernel_signals_orphan() -> bool:
    """Ask the kernel for SIGKILL when the parent exits; False where it cannot (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
