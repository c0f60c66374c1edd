"""A region as one numpy function: its ops in order, transposes as views.

What it saves over running the ops one by one is what numpy can skip inside one
function: a transpose is a view (`a.T`), never a copy, and BLAS multiplies by the
transposed operand directly (`X @ X.T` is one call, no 16 MB copy first); the
plan's dispatch per op is gone too. It has no fast convolution, and a whole loop
would be the ops one by one again, so it runs neither.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from annc.hardware.variants.reference import REFERENCE_FUNCTIONS
from annc.hardware.variants.regions.reference import check_inputs, numpy_dtype
from annc.hardware.variants.regions.spec import RegionSpec

RegionKernel = Callable[..., list[np.ndarray]]

FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    **REFERENCE_FUNCTIONS,
    "transpose": lambda a: a.T,
    "matmul": np.matmul,
    "matvec": np.matmul,
}
"""numpy's formulation of every kernel it runs: the reference's, but a transpose is a
view and products go to BLAS as they come (transposed operands included)."""


def numpy_supports(spec: RegionSpec) -> str | None:
    """Why the numpy variant cannot run the spec, or None where it can."""
    if spec.is_loop:
        return "numpy runs fused chains, not whole loops (that is running its ops)"
    if any(op.kernel == "conv2d" for op in spec.ops):
        return "numpy has no fast convolution"
    return None


def build_numpy(spec: RegionSpec) -> RegionKernel:
    """The region as a numpy function of its inputs; its outputs are new C-contiguous
    arrays (never views of an input or of each other)."""
    why_not = numpy_supports(spec)
    if why_not is not None:
        raise ValueError(why_not)
    dtype = numpy_dtype(spec)
    functions = [FUNCTIONS[op.kernel] for op in spec.ops]

    def run(*inputs: np.ndarray) -> list[np.ndarray]:
        check_inputs(spec, list(inputs))
        values = [np.asarray(a, dtype) for a in inputs]
        with np.errstate(all="ignore"):
            for op, function in zip(spec.ops, functions, strict=True):
                values.append(np.asarray(function(*(values[v] for v in op.operands)), dtype))
        outputs: list[np.ndarray] = []
        for v in spec.outputs:
            value = values[v]
            fresh = v >= len(spec.inputs) and value.flags.c_contiguous and value.base is None
            outputs.append(value if fresh and not any(value is o for o in outputs)
                           else np.array(value, dtype, order="C"))
        return outputs

    return run
