"""A steady allocator: freed memory stays in the process for the next kernel to reuse.

glibc's malloc serves large blocks with `mmap` and hands them back to the system
when they are freed, and it moves that threshold as the program runs. A kernel
whose result is a few megabytes then pays a page fault for every 4 KiB of it on
some calls and not on others, depending on what ran before, and the same call's time
varies several-fold within one process (docs/design.md, "Measurements behind the code").
Physics workloads run the same kernels on the same sizes again and again, so annc
asks malloc to keep freed memory (no `mmap` blocks, no trimming) in every process
that runs or measures kernels: calibration's worker and `annc run` alike, so that
what is measured is what runs. The cost is that the process keeps its peak memory until it exits.

XLA reads a host array in place only when its data starts on a 64-byte boundary;
any other array it copies on every call. glibc's malloc aligns to 16 bytes, so
a numpy array is 64-byte aligned one time in four, and the same JAX call on the
same sizes takes about three times as long, by the address of its operands alone.
annc therefore
allocates the arrays it creates 64-byte aligned (`aligned_empty`): operands it
measures on, a program's inputs, Halide's results; and a running plan aligns a
value once (`aligned`) before a JAX kernel on the CPU reads it. `available_bytes` says
how much memory a new allocation can have now.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys

import numpy as np

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


ALIGNMENT = 64
"""Bytes: the boundary XLA needs to read a host array in place (a cache line)."""


def is_aligned(array: np.ndarray) -> bool:
    return array.ctypes.data % ALIGNMENT == 0


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an `ALIGNMENT` boundary."""
    dtype = np.dtype(dtype)
    nbytes = max(math.prod(shape), 1) * dtype.itemsize
    raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + nbytes].view(dtype)[:math.prod(shape)].reshape(shape)


def aligned(array: np.ndarray) -> np.ndarray:
    """The array itself where it is C-contiguous and aligned, else an aligned copy."""
    array = np.asarray(array)
    if array.flags.c_contiguous and is_aligned(array):
        return array
    copy = aligned_empty(array.shape, array.dtype)
    copy[...] = array
    return copy


def available_bytes() -> int:
    """Memory available to a new allocation now (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
