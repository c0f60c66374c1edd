"""`halide.*` variants on the CPU: annc's own schedules and Halide's auto-schedulers.

Registers, on device "cpu" with backend "halide":

- matmul: `halide.tiled` and `halide.auto.{mullapudi2016,li2018,adams2019}`
- matvec: `halide.tiled` and the three `halide.auto.*`
- conv2d: `halide.direct` and the three `halide.auto.*`
- transpose: `halide.tiled`
- dot, sum, norm and the element-wise kernels: `halide`

`build` defines the algorithm, schedules it for the exact shapes (an auto-scheduler
generates its schedule there) and JIT-compiles it; the returned `CompiledKernel` only
runs. Reductions and element-wise kernels run on flat views of their (contiguous)
operands, so one 1-D schedule serves every rank.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable

import halide as hl
import numpy as np

from hardware.allocator import aligned_empty
from hardware.variants import halide_schedules as schedules
from hardware.variants.halide_algorithms import ELEMENTWISE, REDUCTIONS, Definition, define
from hardware.variants.halide_pipeline import (
    AUTOSCHEDULERS,
    AutoSchedule,
    Shape,
    autoschedule,
    bind_shapes,
    compile_callable,
    halide_type,
    result_shape,
)
from hardware.variants.reference import standard_complexity_of
from hardware.variants.registry import Shapes, Variant, register

Schedule = Callable[[Definition, tuple[Shape, ...], hl.Target], None]

OWN_SCHEDULES: dict[tuple[str, str], Schedule] = {
    ("matmul", "halide.tiled"): schedules.matmul_tiled,
    ("matvec", "halide.tiled"): schedules.matvec_tiled,
    ("conv2d", "halide.direct"): schedules.conv2d_direct,
    ("transpose", "halide.tiled"): schedules.transpose_tiled,
    **{(kernel, "halide"): schedules.reduction_vectorised for kernel in REDUCTIONS},
    **{(kernel, "halide"): schedules.elementwise_vectorised for kernel in ELEMENTWISE},
}
"""annc's hand-written schedules, by (kernel, variant name)."""

AUTO_SCHEDULED_KERNELS = ("matmul", "matvec", "conv2d")
AUTO_PREFIX = "halide.auto."


@functools.cache
def cpu_target() -> hl.Target:
    """The host's JIT target (its vector extensions included)."""
    return hl.get_jit_target_from_environment()


def compiled_shapes(kernel: str, shapes: Shapes) -> tuple[Shape, ...]:
    """The operand shapes the pipeline is compiled for: flat for reductions and
    element-wise kernels (a 0-d element-wise operand stays a broadcast scalar)."""
    if kernel in REDUCTIONS:
        return tuple((math.prod(shape),) for shape in shapes)
    if kernel in ELEMENTWISE:
        return tuple((math.prod(shape),) if shape else () for shape in shapes)
    return tuple(shapes)


class CompiledKernel:
    """A JIT-compiled Halide pipeline, called on numpy operands; returns a new array."""

    def __init__(
        self,
        function: hl.Callable,
        dtype: np.dtype,
        operand_shapes: tuple[Shape, ...],
        output_shape: Shape,
        result: Shape,
        schedule: AutoSchedule | None,
    ) -> None:
        self.function = function
        self.dtype = np.dtype(dtype)
        self.operand_shapes = operand_shapes
        self.output_shape = output_shape
        self.result = result
        self.schedule = schedule
        """The auto-scheduler's output, or None for annc's own schedule."""

    def __call__(self, *operands: np.ndarray) -> np.ndarray:
        arrays = [
            np.ascontiguousarray(operand, dtype=self.dtype).reshape(shape)
            for operand, shape in zip(operands, self.operand_shapes, strict=True)
        ]
        out = aligned_empty(self.output_shape, self.dtype)
        self.function(*(hl.Buffer(array) for array in arrays), hl.Buffer(out))
        return out.reshape(self.result)


def build_halide(kernel: str, shapes: Shapes, dtype: np.dtype, name: str) -> CompiledKernel:
    """Defines, schedules (by `name`) and compiles one kernel for these shapes and dtype."""
    operand_shapes = compiled_shapes(kernel, shapes)
    output_shape = result_shape(kernel, operand_shapes)
    definition = define(kernel, tuple(len(s) for s in operand_shapes), halide_type(dtype))
    bind_shapes(definition, operand_shapes, output_shape)
    target = cpu_target()
    schedule = None
    if name.startswith(AUTO_PREFIX):
        scheduler = name.removeprefix(AUTO_PREFIX)
        schedule = autoschedule(definition, operand_shapes, output_shape, scheduler, target)
    else:
        OWN_SCHEDULES[(kernel, name)](definition, operand_shapes, target)
    function = compile_callable(definition, target)
    return CompiledKernel(
        function, dtype, operand_shapes, output_shape, result_shape(kernel, shapes), schedule
    )


def _builder(kernel: str, name: str) -> Callable[[Shapes, np.dtype], CompiledKernel]:
    return lambda shapes, dtype: build_halide(kernel, shapes, dtype, name)


def conv2d_workspace(shapes: Shapes, itemsize: int) -> int:
    """The zero-padded image, which every schedule materialises at least in strips."""
    (h, w), (p, q) = shapes
    return (h + p - 1) * (w + q - 1) * itemsize


def reduction_workspace(shapes: Shapes, itemsize: int) -> int:
    """Vector lanes of partial sums per parallel chunk (an upper bound)."""
    return 4 * (os.cpu_count() or 1) * 64 * itemsize


def _workspace(kernel: str) -> Callable[[Shapes, int], int] | None:
    if kernel == "conv2d":
        return conv2d_workspace
    if kernel in REDUCTIONS:
        return reduction_workspace
    return None


def _register(kernel: str, name: str) -> None:
    workspace = _workspace(kernel)
    extra = {"workspace_bytes": workspace} if workspace else {}
    register(
        Variant(
            kernel=kernel,
            name=name,
            device="cpu",
            backend="halide",
            build=_builder(kernel, name),
            complexity=standard_complexity_of(kernel),
            **extra,
        )
    )


for _kernel, _name in OWN_SCHEDULES:
    _register(_kernel, _name)
for _kernel in AUTO_SCHEDULED_KERNELS:
    for _scheduler in AUTOSCHEDULERS:
        _register(_kernel, AUTO_PREFIX + _scheduler)
