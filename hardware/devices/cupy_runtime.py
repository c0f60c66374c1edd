"""CuPy, found once for annc, and how its arrays meet JAX's on the GPU.

annc's `gpu` device holds JAX arrays (`hardware.devices.available.JaxGpuDevice`), so that
values pass between JAX and CuPy variants without knowing who made them. A CuPy
kernel views its operands as CuPy arrays and hands its result back as a JAX
array, both through DLPack: the two libraries share the GPU's memory, and
neither direction copies data.

Where CuPy is not installed, cannot load its CUDA libraries or sees no GPU,
`cupy_module()` is None, silently: annc then has no CuPy variants.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def cupy_module() -> Any | None:
    """The cupy package if it imports and sees at least one CUDA GPU, else None."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:  # not installed, no driver, a CUDA mismatch: no CuPy here
        return None
    return None


def is_cupy_array(value: object) -> bool:
    """Whether `value` is a CuPy array (checked without importing CuPy)."""
    return type(value).__module__.partition(".")[0] == "cupy"


def to_cupy(handle: Any) -> Any:
    """A CuPy view of a GPU-resident array (a JAX array, or a CuPy one as it is)."""
    if is_cupy_array(handle):
        return handle
    cupy = cupy_module()
    if cupy is None:
        raise RuntimeError("CuPy with a CUDA GPU is not available here")
    return cupy.from_dlpack(handle)


def finished(array: Any) -> Any:
    """`array`, C-contiguous, once the GPU has finished computing it."""
    cupy = cupy_module()
    if cupy is None:
        raise RuntimeError("CuPy with a CUDA GPU is not available here")
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    cupy.cuda.get_current_stream().synchronize()
    return array


def to_jax(array: Any) -> Any:
    """A JAX array sharing the GPU memory of a CuPy array from `finished`."""
    import jax.dlpack

    from annc.hardware.devices import jax_runtime  # noqa: F401  (annc's JAX settings: f64 stays f64)

    return jax.dlpack.from_dlpack(array)
