"""Seeded random operands for measuring and checking kernels."""

from __future__ import annotations

import numpy as np

from hardware.variants.registry import Shapes


def uniform_operands(shapes: Shapes, dtype: np.dtype | type, seed: int = 0) -> list[np.ndarray]:
    """One array per shape, uniform in [0, 1), in that dtype; 0-d for a scalar."""
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.random(shape), dtype=dtype) for shape in shapes]
