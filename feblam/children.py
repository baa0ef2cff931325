"""Child processes that never outlive the FEBLAM process that started them.

A broker or a job started by ``feblam bench`` or ``feblam demo`` must stop
with its parent, also when the parent is killed with SIGKILL (no ``finally``,
no ``atexit`` runs then): :func:`die_with_parent`, given to ``subprocess.Popen``
as ``preexec_fn``, asks Linux to send the child SIGTERM when its parent dies
(``prctl(PR_SET_PDEATHSIG)``). On another system it does nothing.

The parent is the *thread* that started the child: start children from a
thread that lives as long as they should (the main thread, in FEBLAM).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before it runs its program: SIGTERM when the parent dies."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the request was made
        os._exit(1)


def exit_on_termination() -> None:
    """SIGTERM and SIGHUP end this process as Ctrl-C does (``finally`` blocks and ``atexit`` run: children
    stopped, files closed), instead of the default of dying on the spot."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
