"""CuPy variants on the `gpu` device: cuBLAS products, cuFFT convolution, CUDA kernels.

`cupy` is every kernel but conv2d as one CuPy call (cuBLAS for matmul, matvec
and dot; CuPy's reduction and element-wise kernels for the rest); `cupy.fft`
is conv2d as a product of real cuFFT transforms, padded exactly as
`algorithms.conv2d_fft` pads on the CPU.

`variants()` returns them only where CuPy imports and sees a GPU and JAX sees one too
(the `gpu` device is JAX's, see `hardware.devices.available`); elsewhere this module
imports cleanly and returns none. A kernel takes the device's JAX arrays, views
them as CuPy arrays, waits for its result and returns it as a JAX array (both
ways through DLPack, without copying), so JAX and CuPy variants can follow one
another on the GPU. f32 products stay f32: CuPy uses TF32 only when
`CUPY_TF32=1` is set, which annc never does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from annc.hardware.devices import cupy_runtime
from annc.hardware.variants import complexity
from annc.hardware.variants.reference import standard_complexity_of
from annc.hardware.variants.registry import Kernel, Shapes, Variant

CupyFunction = Callable[..., Any]


def _conv2d_fft(cupy: Any, shapes: Shapes) -> CupyFunction:
    (h, w), (p, q) = shapes
    size = complexity.fft_sizes(shapes)
    r, s = (p - 1) // 2, (q - 1) // 2

    def conv(image: Any, weights: Any) -> Any:
        spectrum = cupy.fft.rfft2(image, s=size) * cupy.fft.rfft2(weights, s=size)
        full = cupy.fft.irfft2(spectrum, s=size)
        return full[r : r + h, s : s + w].astype(image.dtype)

    return conv


def _norm(cupy: Any) -> CupyFunction:
    def norm(a: Any) -> Any:
        flat = a.reshape(-1)
        return cupy.sqrt(cupy.dot(flat, flat))

    return norm


def _fixed(function: CupyFunction) -> Callable[[Shapes], CupyFunction]:
    """The same CuPy function for every shape."""
    return lambda shapes: function


def functions(cupy: Any) -> dict[tuple[str, str], Callable[[Shapes], CupyFunction]]:
    """For each (kernel, variant name): the CuPy function, given the operand shapes."""
    plain: dict[str, CupyFunction] = {
        "matmul": cupy.matmul,
        "matvec": cupy.matmul,
        "transpose": lambda a: a.T,
        "dot": cupy.dot,
        "sum": cupy.sum,
        "norm": _norm(cupy),
        "exp": cupy.exp,
        "sqrt": cupy.sqrt,
        "abs": cupy.abs,
        "neg": cupy.negative,
        "add": cupy.add,
        "sub": cupy.subtract,
        "mul": cupy.multiply,
        "div": cupy.divide,
    }
    table: dict[tuple[str, str], Callable[[Shapes], CupyFunction]] = {
        (kernel, "cupy"): _fixed(function) for kernel, function in plain.items()
    }
    table[("conv2d", "cupy.fft")] = lambda shapes: _conv2d_fft(cupy, shapes)
    return table


def _build(cupy: Any, factory: Callable[[Shapes], CupyFunction],
           ordinal: int) -> Callable[[Shapes, np.dtype], Kernel]:
    def build(shapes: Shapes, dtype: np.dtype) -> Kernel:
        function = factory(shapes)
        gpu = cupy.cuda.Device(ordinal)

        def compute(*operands: Any) -> Any:
            with gpu:
                return cupy_runtime.finished(function(*operands))

        # One call on ones compiles CuPy's kernels and plans the transforms here.
        compute(*[cupy.ones(shape, dtype) for shape in shapes])

        def run(*operands: Any) -> Any:
            return cupy_runtime.to_jax(compute(*map(cupy_runtime.to_cupy, operands)))

        return run

    return build


def complexity_of(kernel: str, name: str) -> Callable[[Shapes], float]:
    """The complexity of a CuPy variant; needs neither CuPy nor a GPU."""
    return complexity.fft_conv2d if name == "cupy.fft" else standard_complexity_of(kernel)


def _variants(cupy: Any, ordinal: int) -> list[Variant]:
    return [Variant(kernel=kernel, name=name, device="gpu", backend="cupy",
                    build=_build(cupy, factory, ordinal),
                    complexity=complexity_of(kernel, name),
                    workspace_bytes=(complexity.fft_conv2d_workspace if name == "cupy.fft"
                                     else lambda shapes, itemsize: 0))
            for (kernel, name), factory in functions(cupy).items()]


def _gpu_ordinal() -> int | None:
    """The CUDA ordinal of annc's `gpu` device, or None where there is none."""
    from annc.hardware.devices import jax_runtime

    gpus = jax_runtime.gpu_devices()
    if not gpus:
        return None
    ordinal = getattr(gpus[0], "local_hardware_id", None)
    return int(ordinal) if ordinal is not None else int(gpus[0].id)


def variants() -> list[Variant]:
    """The CuPy variants where CuPy imports and a GPU is seen, else none."""
    cupy = cupy_runtime.cupy_module()
    ordinal = _gpu_ordinal() if cupy is not None else None
    return [] if cupy is None or ordinal is None else _variants(cupy, ordinal)
