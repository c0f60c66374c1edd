"""Ctrl-C: the first stops annc cleanly, a second during the clean-up stops it at once.

The first Ctrl-C raises `KeyboardInterrupt` where annc is: the run unwinds, its
helper processes are ended, and the command line says `annc: interrupted` and exits
130 at once (`exit_interrupted`). From that moment a further Ctrl-C (the user pressing
again while annc cleans up) ends the process at once with the same line and status,
never a traceback: Python's own handler would raise a second `KeyboardInterrupt`
inside whatever clean-up was running, and one raised in a shut-down hook is printed
with its traceback. Nothing annc keeps can be left half-written by that: every file it
keeps is written to a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType
from typing import Any

from annc.process import is_annc_program

MESSAGE = "annc: interrupted"
STATUS = 130

_said = [False]


def say_interrupted() -> None:
    """Writes `annc: interrupted` on standard error, once per command."""
    if _said[0]:
        return
    _said[0] = True
    print(MESSAGE, file=sys.stderr, flush=True)


def exit_interrupted() -> None:
    """Ends the `annc` program now with status 130, once its own clean-up is done.

    Python's shutdown would wait for threads that a Ctrl-C left inside native code (a
    product in BLAS: `hardware.execution.interruptible`) — a process whose daemon
    thread was inside BLAS never finished exiting, here — and run libraries' exit hooks,
    none of which keeps anything of annc's. Where annc's functions are called from
    another program (tests), the caller decides instead: nothing happens."""
    if not is_annc_program():
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(STATUS)


def _first(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, _again)
    raise KeyboardInterrupt


def _again(signum: int, frame: FrameType | None) -> None:
    if not _said[0]:
        _said[0] = True
        with contextlib.suppress(OSError):
            os.write(2, (MESSAGE + "\n").encode())
    os._exit(STATUS)


def take_ctrl_c() -> Any:
    """Installs annc's handler where Python's default one is (not where SIGINT is ignored,
    as a shell does for a background job, nor outside the main thread); returns the
    handler it replaced, or None where it installed nothing."""
    _said[0] = False
    try:
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.default_int_handler:
            return None
        signal.signal(signal.SIGINT, _first)
    except ValueError:  # not the main thread
        return None
    return previous


def give_back_ctrl_c(previous: Any) -> None:
    """Puts back the handler `take_ctrl_c` replaced, unless a Ctrl-C came: then a further
    one still ends the process at once (Python may be shutting down)."""
    if previous is None:
        return
    with contextlib.suppress(ValueError):  # not the main thread
        if signal.getsignal(signal.SIGINT) is _first:
            signal.signal(signal.SIGINT, previous)
