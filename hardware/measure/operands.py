"""Seeded random operands for measuring and checking kernels."""

from __future__ import annotations

import numpy as np

from annc.hardware.devices.allocator import aligned
from annc.hardware.variants.registry import Shapes


def uniform_operands(shapes: Shapes, dtype: np.dtype | type, seed: int = 0) -> list[np.ndarray]:
    """One array per shape, uniform in [0, 1), in that dtype; 0-d for a scalar.

    Each starts on a 64-byte boundary, like every array annc creates (see
    `hardware.devices.allocator`)."""
    rng = np.random.default_rng(seed)
    return [aligned(np.asarray(rng.random(shape), dtype=dtype)) for shape in shapes]
