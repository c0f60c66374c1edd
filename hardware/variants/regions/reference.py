"""The region oracle: a spec run op by op with the numpy reference of every kernel.

Obviously right rather than fast, like `hardware.variants.reference`, which it reuses
kernel by kernel: every region builder is checked against it.
"""

from __future__ import annotations

import numpy as np

from annc.dsl import dtypes
from annc.hardware.variants.reference import REFERENCE_FUNCTIONS
from annc.hardware.variants.regions.spec import RegionSpec


def numpy_dtype(spec: RegionSpec) -> np.dtype:
    """The numpy dtype of every value of the region."""
    return dtypes.to_numpy(spec.dtype)


def check_inputs(spec: RegionSpec, inputs: list[np.ndarray]) -> None:
    """Raises ValueError unless there is one input per spec input, of its shape."""
    if len(inputs) != len(spec.inputs):
        raise ValueError(f"the region takes {len(spec.inputs)} inputs, got {len(inputs)}")
    for n, (array, shape) in enumerate(zip(inputs, spec.inputs, strict=True)):
        if np.shape(array) != shape:
            raise ValueError(f"input {n} has shape {np.shape(array)}, the region's is {shape}")


def run_once(spec: RegionSpec, inputs: list[np.ndarray], dtype: np.dtype) -> list[np.ndarray]:
    """Every op once, in order; the values named by `outputs`."""
    values = list(inputs)
    for op in spec.ops:
        result = REFERENCE_FUNCTIONS[op.kernel](*(values[v] for v in op.operands))
        values.append(np.asarray(result, dtype=dtype))
    return [values[v] for v in spec.outputs]


def run_reference(spec: RegionSpec, inputs: list[np.ndarray],
                  dtype: np.dtype | None = None) -> list[np.ndarray]:
    """The region's outputs on these inputs (new arrays, never the inputs themselves).

    Every value is computed in `dtype`, the spec's own by default; a check passes
    np.float64 to compare an f32 builder with the exact-as-possible answer. A loop
    runs `spec.trips` times, the outputs of one trip the carried inputs of the next.
    """
    check_inputs(spec, inputs)
    dtype = np.dtype(dtype) if dtype is not None else numpy_dtype(spec)
    values = [np.array(a, dtype=dtype) for a in inputs]
    if not spec.is_loop:
        return [np.array(v) for v in run_once(spec, values, dtype)]
    carried, invariant = values[: spec.carried], values[spec.carried :]
    for _ in range(spec.trips or 0):
        carried = run_once(spec, carried + invariant, dtype)
    return [np.array(v) for v in carried]
