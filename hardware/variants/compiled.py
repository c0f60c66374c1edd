"""Built variants, cached per process: each (variant, shapes, dtype) compiles once.

Building a variant is where JAX traces and XLA compiles, or Halide JIT-compiles
a pipeline; that takes from microseconds to seconds. `compiled` does it once
and remembers how long it took, so the timing harness, the checker and the
executable plans share the work.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from annc.hardware.variants.registry import Kernel, Shapes, Variant


@dataclass(frozen=True)
class Compiled:
    kernel: Kernel
    compile_s: float
    """Seconds the variant's `build` took, the first (and only) time."""


_CACHE: dict[tuple[object, ...], Compiled] = {}


class _Seconds(threading.local):
    total = 0.0


_SECONDS = _Seconds()
"""Per thread: a run's thread counts what it waited for, not what was loaded beside it
(`hardware.execution.beside`)."""


def build_seconds() -> float:
    """Seconds this thread of the process has spent building variants (compiles and
    cache loads)."""
    return _SECONDS.total


def count_build(seconds: float) -> None:
    """Adds a build made elsewhere (a region's compiled function) to `build_seconds`."""
    _SECONDS.total += seconds


def normalise_shapes(shapes: Shapes) -> Shapes:
    """Shapes as a hashable tuple of tuples of Python ints."""
    return tuple(tuple(int(d) for d in shape) for shape in shapes)


def _key(variant: Variant, shapes: Shapes, dtype: np.dtype) -> tuple[object, ...]:
    # The build function is part of the key so that an unregistered variant that
    # happens to share a registered one's name never receives its kernel.
    return (variant.key, variant.build, shapes, dtype.name)


def is_built(variant: Variant, shapes: Shapes, dtype: np.dtype | type) -> bool:
    """Whether this process has built the variant for these shapes and dtype already."""
    return _key(variant, normalise_shapes(shapes), np.dtype(dtype)) in _CACHE


def compiled(variant: Variant, shapes: Shapes, dtype: np.dtype | type) -> Compiled:
    """The variant built for these operand shapes and dtype, built on first use."""
    shapes = normalise_shapes(shapes)
    dtype = np.dtype(dtype)
    key = _key(variant, shapes, dtype)
    if key not in _CACHE:
        start = time.perf_counter()
        kernel = variant.build(shapes, dtype)
        _CACHE[key] = Compiled(kernel, time.perf_counter() - start)
        _SECONDS.total += _CACHE[key].compile_s
    return _CACHE[key]


def clear_cache() -> None:
    """Forgets every built variant (their compiled code is freed when unreferenced)."""
    _CACHE.clear()
