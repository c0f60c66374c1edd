"""An annc variant plugin: `blas`, the sum of an array as a BLAS dot product with ones.

numpy's `sum` walks a reduction machinery that costs about 1.5 µs per call and sums
pairwise; BLAS's dot product of the flattened array with a vector of ones (made once,
when the variant is built for a shape) is a single vectorised loop. It is faster at
small and medium sizes and slower where the array outgrows the cache, since it reads
the ones too: a choice for annc's models to make.
"""

from collections.abc import Callable

import numpy as np

from annc.hardware.variants import Shapes, Variant


def build(shapes: Shapes, dtype: np.dtype) -> Callable[[np.ndarray], np.ndarray]:
    """The sum for arrays of `shapes[0]` and `dtype`, with its vector of ones."""
    ones = np.ones(int(np.prod(shapes[0])), dtype=dtype)
    return lambda a: np.asarray(np.dot(a.reshape(-1), ones), dtype=dtype)


def variants() -> list[Variant]:
    """The plugin's variants, read by annc through the `annc.variants` entry point."""
    return [Variant(kernel="sum", name="blas", device="cpu", backend="numpy", build=build,
                    complexity=lambda shapes: float(np.prod(shapes[0])),
                    workspace_bytes=lambda shapes, itemsize: int(np.prod(shapes[0])) * itemsize)]
