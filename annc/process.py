"""This process: whether it is the `annc` program, and how long it has been running."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def startup_seconds() -> float:
    """Seconds since the `annc` process started, when this command runs as the program.

    `--budget` counts from the moment the user started `annc`, so the command
    returns within it; when called from Python (tests) it counts from the call.
    """
    if not is_annc_program():
        return 0.0
    try:
        with open("/proc/self/stat") as stat:
            start_ticks = int(stat.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime") as uptime:
            now = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, now - start_ticks / os.sysconf("SC_CLK_TCK"))


def is_annc_program() -> bool:
    """Whether this process is `annc` or `python -m annc` (not `python -m pytest` or a
    program that calls annc's functions)."""
    program = Path(sys.argv[0])
    return program.name == "annc" or program.parts[-2:] == ("annc", "__main__.py")
