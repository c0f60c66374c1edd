"""Variants that misbehave on purpose, for the calibration and tune tests.

Imported by the measuring worker when `ANNC_TEST_VARIANTS=calibration_variants`
(with this folder on the path). Each registers for `neg` and `sum`.
"""

from __future__ import annotations

import ctypes
import os
import time

import numpy as np

from hardware.variants import Variant, register
from hardware.variants.registry import Kernel, Shapes


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

for _kernel in ("neg", "sum"):
    for _name, _build in BUILDS.items():
        register(Variant(kernel=_kernel, name=_name, device="cpu", backend="numpy",
                         build=_build, complexity=lambda shapes: 1.0))
