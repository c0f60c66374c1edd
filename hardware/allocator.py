"""A steady allocator: freed memory stays in the process for the next kernel to reuse.

glibc's malloc serves large blocks with `mmap` and hands them back to the system
when they are freed, and it moves that threshold as the program runs. A kernel
whose result is a few megabytes then pays a page fault for every 4 KiB of it on
some calls and not on others, depending on what ran before: the same call was
measured at 0.5 ms and at 3.4 ms in one process. Physics workloads run the same
kernels on the same sizes again and again, so annc asks malloc to keep freed
memory (no `mmap` blocks, no trimming) in every process that runs or measures
kernels: calibration's worker and `annc run` alike, so that what is measured is
what runs. The cost is that the process keeps its peak memory until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
"""`mallopt` parameters, from glibc's malloc.h."""

_done = False


def keep_freed_memory() -> bool:
    """Tells glibc's malloc to keep freed memory for reuse; False where that is not glibc."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    return _done
