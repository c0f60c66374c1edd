"""Variants that misbehave on purpose, for the calibration and tune tests.

A variant plugin (`variants()`), installed for a test by the `misbehaving_variants`
fixture (`tests/conftest.py`) as an `annc.variants` entry point, so the measuring
worker loads it as it loads any plugin. Each is a variant of `neg` and of `sum`.
"""

from __future__ import annotations

import ctypes
import os
import time

import numpy as np

from annc.hardware.variants import Variant
from annc.hardware.variants.registry import Kernel, Shapes


def _failing(shapes: Shapes, dtype: np.dtype) -> Kernel:
    raise RuntimeError("this variant always fails")


def _exiting(shapes: Shapes, dtype: np.dtype) -> Kernel:
    def run(*operands: np.ndarray) -> np.ndarray:
        os._exit(3)

    return run


def _segfault(shapes: Shapes, dtype: np.dtype) -> Kernel:
    def run(*operands: np.ndarray) -> np.ndarray:
        ctypes.string_at(0)
        raise AssertionError("unreachable")

    return run


def _hanging(shapes: Shapes, dtype: np.dtype) -> Kernel:
    def run(*operands: np.ndarray) -> np.ndarray:
        time.sleep(3600)
        raise AssertionError("unreachable")

    return run


BUILDS = {"test.failing": _failing, "test.exiting": _exiting, "test.segfault": _segfault,
          "test.hanging": _hanging}

def variants() -> list[Variant]:
    return [Variant(kernel=kernel, name=name, device="cpu", backend="numpy", build=build,
                    complexity=lambda shapes: 1.0)
            for kernel in ("neg", "sum") for name, build in BUILDS.items()]
