"""`halide.gpu_tile` variants on the OpenCL device: the Halide algorithms with GPU schedules.

Registered on device "opencl" (backend "halide") only where `opencl_available()`, for
matmul, matvec, conv2d, transpose and the element-wise kernels; f64 variants apply
only where the OpenCL devices have `cl_khr_fp64` (PoCL's CPU device has).

Operands and results are Halide buffers resident in OpenCL memory (see
`hardware.devices.opencl`). A built kernel runs through `Func.realize`, not a Halide
`Callable`: the Python `Callable` marks every input host-dirty (so it would copy
each input to the device again on every call) and copies every output back to the
host, which would time the transfers with the kernel. `realize` leaves the inputs
where they are and the result on the device; the kernel waits for it (`device_sync`).
`build` also runs the kernel once on zeros, so PoCL's own kernel compile is paid there.
"""

from __future__ import annotations

from collections.abc import Callable

import halide as hl
import numpy as np

from annc.hardware.devices.backend_start import mark_started
from annc.hardware.devices.opencl import (
    opencl_available,
    opencl_device,
    opencl_supports_f64,
    opencl_target,
)
from annc.hardware.variants.halide.algorithms import ELEMENTWISE, Definition, define
from annc.hardware.variants.halide.pipeline import bind_shapes, extents, halide_type, result_shape
from annc.hardware.variants.halide.schedules import tile
from annc.hardware.variants.reference import standard_complexity_of
from annc.hardware.variants.registry import Shapes, Variant

Shape = tuple[int, ...]

VARIANT = "halide.gpu_tile"
GUARD = hl.TailStrategy.GuardWithIf
SHIFT = hl.TailStrategy.ShiftInwards
VECTOR = 8
"""Lanes of the OpenCL vectors a work-item of matmul or conv2d accumulates in."""
ROWS = 4
"""Output rows per work-item of matmul or conv2d."""
OPENCL_WIDTHS = (1, 2, 3, 4, 8, 16)
"""The vector widths OpenCL C has."""
TILE = 16
"""Work-items per work-group side for 2-D kernels (TILE × TILE work-groups)."""
LINE = 256
"""Work-items per work-group for 1-D kernels."""


def products_gpu(definition: Definition, result: Shape) -> None:
    """matmul and conv2d: each work-item accumulates a block of VECTOR × ROWS outputs.

    The block's accumulators are OpenCL vectors in registers; work-groups are 16 × 8
    work-items. Tiles are made for the exact shapes (never larger than an extent, split
    with ShiftInwards) because the OpenCL backend cannot emit guarded vector stores, and
    loops are never partitioned, since a partition can leave vectors of widths OpenCL
    C lacks (seven lanes at a convolution's border).
    """
    x, y = definition.vars
    out, product = definition.output, definition.stages["product"]
    reduce = definition.reduction
    assert reduce is not None
    rows_out, columns = result
    vec = max(width for width in OPENCL_WIDTHS if width <= min(VECTOR, columns))
    rows = min(ROWS, rows_out)
    tx, ty = tile(columns, 16 * vec, vec), tile(rows_out, 8 * rows, rows)
    xo, yo, xi, yi = (hl.Var(name) for name in ("xo", "yo", "xi", "yi"))
    xt, xv, yt, yv = (hl.Var(name) for name in ("xt", "xv", "yt", "yv"))
    out.tile(x, y, xo, yo, xi, yi, tx, ty, SHIFT)
    out.split(xi, xt, xv, vec, SHIFT).split(yi, yt, yv, rows, SHIFT)
    out.reorder(xv, yv, xt, yt, xo, yo).vectorize(xv).unroll(yv)
    out.gpu_blocks(xo, yo).gpu_threads(xt, yt)
    product.compute_at(out, xt).vectorize(x).unroll(y)
    product.update().reorder(x, y, *reduce_vars(reduce)).vectorize(x).unroll(y)
    for stage in (out, product, product.update()):
        stage.never_partition_all()


def reduce_vars(reduce: hl.RDom) -> list[hl.RVar]:
    return [reduce[i] for i in range(reduce.dimensions())]


def matvec_gpu(definition: Definition, result: Shape) -> None:
    """One work-item per output row, accumulating in a register."""
    (x,) = definition.vars
    xo, xi = hl.Var("xo"), hl.Var("xi")
    definition.output.gpu_tile(x, xo, xi, LINE, GUARD)
    definition.stages["product"].compute_at(definition.output, xi)


def transpose_gpu(definition: Definition, result: Shape) -> None:
    """One work-item per output element, in square work-groups."""
    x, y = definition.vars
    xo, yo, xi, yi = (hl.Var(name) for name in ("xo", "yo", "xi", "yi"))
    definition.output.gpu_tile(x, y, xo, yo, xi, yi, TILE, TILE, GUARD)


def elementwise_gpu(definition: Definition, result: Shape) -> None:
    """One work-item per element; dimensions beyond the first are fused into one."""
    out, coords = definition.output, definition.vars
    if not coords:
        out.gpu_single_thread()
        return
    if len(coords) == 1:
        xo, xi = hl.Var("xo"), hl.Var("xi")
        out.gpu_tile(coords[0], xo, xi, LINE, GUARD)
        return
    outer = coords[1]
    for inner in coords[2:]:
        fused = hl.Var(f"{outer.name()}_{inner.name()}")
        out.fuse(outer, inner, fused)
        outer = fused
    xo, yo, xi, yi = (hl.Var(name) for name in ("xo", "yo", "xi", "yi"))
    out.gpu_tile(coords[0], outer, xo, yo, xi, yi, 2 * TILE, TILE // 2, GUARD)


GPU_SCHEDULES: dict[str, Callable[[Definition, Shape], None]] = {
    "matmul": products_gpu,
    "conv2d": products_gpu,
    "matvec": matvec_gpu,
    "transpose": transpose_gpu,
    **{kernel: elementwise_gpu for kernel in ELEMENTWISE},
}


class OpenCLKernel:
    """A pipeline JIT-compiled for OpenCL; takes and returns device-resident buffers."""

    def __init__(self, definition: Definition, element: hl.Type, result: Shape) -> None:
        self.definition = definition
        self.element = element
        self.result = result

    def __call__(self, *operands: hl.Buffer) -> hl.Buffer:
        for param, operand in zip(self.definition.inputs, operands, strict=True):
            param.set(operand)
        out = hl.Buffer(self.element, extents(self.result))
        self.definition.output.realize(out, opencl_target())
        if out.device_sync() != 0:
            raise RuntimeError("Halide OpenCL runtime: device sync failed")
        return out


def build_opencl(kernel: str, shapes: Shapes, dtype: np.dtype) -> OpenCLKernel:
    """Defines, GPU-schedules and compiles one kernel, then runs it once on zeros."""
    element = halide_type(dtype)
    shapes = tuple(tuple(shape) for shape in shapes)
    result = result_shape(kernel, shapes)
    definition = define(kernel, tuple(len(shape) for shape in shapes), element)
    bind_shapes(definition, shapes, result)
    GPU_SCHEDULES[kernel](definition, result)
    definition.output.compile_jit(opencl_target())
    mark_started("halide")
    compiled = OpenCLKernel(definition, element, result)
    device = opencl_device()
    assert device is not None
    compiled(*(device.put(np.zeros(shape, dtype=dtype)) for shape in shapes))
    return compiled


def applies(shapes: Shapes, dtype: np.dtype) -> bool:
    """f32 always; f64 only where the OpenCL devices support doubles."""
    return np.dtype(dtype) == np.float32 or opencl_supports_f64()


def _builder(kernel: str) -> Callable[[Shapes, np.dtype], OpenCLKernel]:
    return lambda shapes, dtype: build_opencl(kernel, shapes, dtype)


def variants() -> list[Variant]:
    """One GPU schedule per kernel where an OpenCL platform exists, else none."""
    if not opencl_available():
        return []
    return [Variant(kernel=kernel, name=VARIANT, device="opencl", backend="halide",
                    build=_builder(kernel), complexity=standard_complexity_of(kernel),
                    applies=applies)
            for kernel in GPU_SCHEDULES]
