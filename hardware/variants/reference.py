"""`numpy.reference`: the definitional numpy implementation of every kernel.

These are written to be obviously right, not fast. Every other variant is
checked against them, and they are what runs when nothing was selected.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from annc.dsl import kernels
from annc.hardware.variants.registry import KERNELS, Kernel, Shapes, Variant

REFERENCE = "numpy.reference"


def conv2d_same(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """out[i,j] = sum_a sum_b K[a,b] * A[i+r-a, j+s-b], A zero outside its bounds."""
    p, q = weights.shape
    r, s = (p - 1) // 2, (q - 1) // 2
    h, w = image.shape
    padded = np.pad(image, ((r, r), (s, s)))
    out = np.zeros_like(image)
    for a in range(p):
        for b in range(q):
            out += weights[a, b] * padded[2 * r - a : 2 * r - a + h, 2 * s - b : 2 * s - b + w]
    return out


def _scalar(value: np.ndarray | np.generic, dtype: np.dtype) -> np.ndarray:
    return np.asarray(value, dtype=dtype)


REFERENCE_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "matmul": lambda a, b: a @ b,
    "matvec": lambda a, x: a @ x,
    "conv2d": conv2d_same,
    "transpose": lambda a: np.ascontiguousarray(a.T),
    "dot": lambda x, y: _scalar(np.dot(x, y), x.dtype),
    "sum": lambda a: _scalar(np.sum(a), a.dtype),
    "norm": lambda a: _scalar(np.sqrt(np.sum(a * a)), a.dtype),
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "neg": np.negative,
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
}
"""The definition of every kernel, on numpy arrays (scalars are 0-d arrays)."""


def standard_complexity(kernel: str, shapes: Shapes) -> float:
    """The operation count of the kernel's textbook algorithm (`dsl.kernels`)."""
    return kernels.kernel(kernel).complexity(shapes)


def _build_reference(kernel: str) -> Callable[[Shapes, np.dtype], Kernel]:
    function = REFERENCE_FUNCTIONS[kernel]

    def build(shapes: Shapes, dtype: np.dtype) -> Kernel:
        def run(*operands: np.ndarray) -> np.ndarray:
            return np.asarray(function(*operands), dtype=dtype)

        return run

    return build


def standard_complexity_of(kernel: str) -> Callable[[Shapes], float]:
    """`standard_complexity` of one kernel, as a variant's complexity function."""
    return lambda shapes: standard_complexity(kernel, shapes)


def variants() -> list[Variant]:
    """`numpy.reference` of every kernel."""
    return [Variant(kernel=kernel, name=REFERENCE, device="cpu", backend="numpy",
                    build=_build_reference(kernel), complexity=standard_complexity_of(kernel))
            for kernel in KERNELS]
