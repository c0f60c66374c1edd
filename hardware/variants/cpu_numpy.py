"""`numpy`: every kernel but conv2d as one numpy call (BLAS for the products).

These are the plain baselines on the CPU. Results keep the operands' dtype;
0-d results are 0-d arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from annc.hardware.variants.reference import standard_complexity_of
from annc.hardware.variants.registry import Kernel, Shapes, Variant


def _norm(a: np.ndarray) -> np.ndarray:
    flat = a.reshape(-1)
    return np.sqrt(np.dot(flat, flat))


FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "matmul": np.matmul,
    "matvec": np.matmul,
    "transpose": lambda a: np.ascontiguousarray(a.T),
    "dot": np.dot,
    "sum": np.sum,
    "norm": _norm,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "neg": np.negative,
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
}
"""The numpy call behind each kernel's `numpy` variant."""



def _build(kernel: str) -> Callable[[Shapes, np.dtype], Kernel]:
    function = FUNCTIONS[kernel]

    def build(shapes: Shapes, dtype: np.dtype) -> Kernel:
        # np.asarray: numpy returns scalars, not 0-d arrays, for 0-d results.
        return lambda *operands: np.asarray(function(*operands))

    return build


def variants() -> list[Variant]:
    """One `numpy` variant per kernel of `FUNCTIONS`."""
    return [Variant(kernel=kernel, name="numpy", device="cpu", backend="numpy",
                    build=_build(kernel), complexity=standard_complexity_of(kernel))
            for kernel in FUNCTIONS]
