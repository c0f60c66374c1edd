"""`halide.*` variants on the CPU: annc's own schedules and Halide's auto-schedulers.

Registers, on device "cpu" with backend "halide":

- matmul: `halide.tiled` and `halide.auto.{mullapudi2016,li2018,adams2019}`
- matvec: `halide.tiled` and the three `halide.auto.*`
- conv2d: `halide.direct` and the three `halide.auto.*`
- transpose: `halide.tiled`
- dot, sum, norm and the element-wise kernels: `halide`

`build` defines the algorithm, schedules it for the exact shapes (an auto-scheduler
generates its schedule there) and compiles it; the returned `CompiledKernel` only
runs. Builds persist across processes in the build cache (`hardware.variants.halide.build_cache`):
with a C compiler a kernel is compiled ahead of time into a shared object
(`halide_aot`) that a later process loads instead of compiling; without one it is
JIT-compiled as before, and an auto-scheduler's schedule is still loaded from the
cache, so its search never runs twice for the same shapes. Reductions and
element-wise kernels run on flat views of their (contiguous) operands, so one 1-D
schedule serves every rank.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import halide as hl
import numpy as np

from annc.hardware import events
from annc.hardware.devices.allocator import aligned_empty
from annc.hardware.devices.backend_start import mark_started
from annc.hardware.variants.halide import build_cache
from annc.hardware.variants.halide.abi import AotFunction, load_shared_object
from annc.hardware.variants.halide.algorithms import REDUCTIONS
from annc.hardware.variants.halide.aot import (
    BuildError,
    aot_target,
    c_compiler,
    cache_key,
    ensure_runtime,
    load_kept,
    shared_object,
)
from annc.hardware.variants.halide.pipeline import (
    AUTOSCHEDULERS,
    AutoSchedule,
    Shape,
    result_shape,
)
from annc.hardware.variants.halide.schedule_traits import traits_function
from annc.hardware.variants.halide.scheduling import (
    AUTO_PREFIX,
    AUTO_SCHEDULED_KERNELS,
    OWN_SCHEDULES,
    compiled_shapes,
    cpu_target,
    scheduled,
    stored_schedule,
)
from annc.hardware.variants.reference import standard_complexity_of
from annc.hardware.variants.registry import Shapes, Variant

SYMBOL = "annc_kernel"
"""The entry point of every compiled kernel (never a C library function's name)."""

JIT_NOTE = ("note: no C compiler (cc) found: Halide variants are JIT-compiled in every "
            "process; their schedules are still cached")
notes = build_cache.notes
"""Notes for the user, once per process (the JIT fallback)."""



def buffer_of(array: np.ndarray) -> hl.Buffer:
    """A Halide buffer over the array. Halide's Python binding refuses a read-only array
    (XLA's results and the plan's constants are read-only views), so such an input is
    copied; a pipeline never writes its inputs."""
    return hl.Buffer(array if array.flags.writeable else array.copy())


class JitFunction:
    """A JIT-compiled pipeline, called like an `AotFunction` with numpy arrays."""

    def __init__(self, function: hl.Callable) -> None:
        self.function = function

    def __call__(self, *arrays: np.ndarray) -> None:
        self.function(*(buffer_of(array) for array in arrays))


class CompiledKernel:
    """A compiled Halide pipeline, called on numpy operands; returns a new array."""

    def __init__(
        self,
        function: AotFunction | JitFunction,
        dtype: np.dtype,
        operand_shapes: tuple[Shape, ...],
        output_shape: Shape,
        result: Shape,
        schedule: AutoSchedule | None,
        cached: bool = False,
    ) -> None:
        self.function = function
        self.dtype = np.dtype(dtype)
        self.operand_shapes = operand_shapes
        self.output_shape = output_shape
        self.result = result
        self.schedule = schedule
        """The auto-scheduler's output, or None for annc's own schedule."""
        self.cached = cached
        """Whether the compiled code was loaded from the build cache."""

    def __call__(self, *operands: np.ndarray) -> np.ndarray:
        arrays = [
            np.ascontiguousarray(operand, dtype=self.dtype).reshape(shape)
            for operand, shape in zip(operands, self.operand_shapes, strict=True)
        ]
        out = aligned_empty(self.output_shape, self.dtype)
        self.function(*arrays, out)
        return out.reshape(self.result)


def build_halide(kernel: str, shapes: Shapes, dtype: np.dtype, name: str) -> CompiledKernel:
    """The kernel scheduled by `name` and compiled for these shapes and dtype: loaded
    from the build cache where it was compiled before, else compiled (and kept).

    Without a C compiler, or where linking fails, it is JIT-compiled (with a note)."""
    dtype = np.dtype(dtype)
    operand_shapes = compiled_shapes(kernel, shapes)
    output_shape = result_shape(kernel, operand_shapes)
    result = result_shape(kernel, shapes)
    compiler = c_compiler()
    if compiler is not None:
        try:
            function, schedule, cached = _ahead_of_time(kernel, operand_shapes, output_shape,
                                                        dtype, name, compiler)
            return CompiledKernel(function, dtype, operand_shapes, output_shape, result,
                                  schedule, cached)
        except BuildError as error:
            note_once(f"note: Halide variants are JIT-compiled: {error}")
    else:
        note_once(JIT_NOTE)
    pipeline, arguments, schedule = scheduled(kernel, operand_shapes, output_shape, dtype, name)
    events.count("halide kernel jit")
    jitted = JitFunction(pipeline.compile_to_callable(arguments, cpu_target()))
    mark_started("halide")
    return CompiledKernel(jitted, dtype, operand_shapes, output_shape, result, schedule)


def note_once(note: str) -> None:
    """Adds a note for the user unless it is there already."""
    if note not in notes:
        notes.append(note)


def _ahead_of_time(kernel: str, shapes: tuple[Shape, ...], output_shape: Shape,
                   dtype: np.dtype, name: str,
                   compiler: str) -> tuple[AotFunction, AutoSchedule | None, bool]:
    """The kernel's shared object, from the cache or compiled and kept, loaded."""
    target = aot_target(cpu_target())
    ensure_runtime(target, compiler)
    key = kernel_key(kernel, name, shapes, dtype)
    everything = (*shapes, output_shape)
    function = load_kept("kernel", key, SYMBOL, everything, dtype)
    schedule = None
    if function is None:
        pipeline, arguments, schedule = scheduled(kernel, shapes, output_shape, dtype, name)
        payload = shared_object(pipeline, arguments, SYMBOL, target, compiler)
        build_cache.write("kernel", key, payload)
        events.count("halide kernel built")
        return AotFunction(load_shared_object(payload), SYMBOL, everything, dtype), schedule, \
            False
    if name.startswith(AUTO_PREFIX):
        stored = stored_schedule(kernel, name, shapes, dtype)
        schedule = AutoSchedule(stored.scheduler, stored.source, 0.0) if stored else None
    events.count("halide kernel loaded")
    return function, schedule, True


def kernel_key(kernel: str, name: str, shapes: tuple[Shape, ...], dtype: np.dtype) -> dict:
    """The build cache key of a compiled kernel (shapes as compiled, see `compiled_shapes`)."""
    return cache_key(aot_target(cpu_target()), what="halide-kernel", kernel=kernel,
                     variant=name, shapes=shapes, dtype=np.dtype(dtype).name)


def is_cached(kernel: str, name: str, shapes: Shapes, dtype: np.dtype) -> bool:
    """Whether this build would be loaded from the build cache (a C compiler is found and
    the compiled kernel is there; its checksum is verified only when loading)."""
    if c_compiler() is None:
        return False
    key = kernel_key(kernel, name, compiled_shapes(kernel, shapes), dtype)
    return build_cache.exists("kernel", key)


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


def _cached(kernel: str, name: str) -> Callable[[Shapes, np.dtype], bool]:
    return lambda shapes, dtype: is_cached(kernel, name, shapes, dtype)


def _variant(kernel: str, name: str) -> Variant:
    workspace = _workspace(kernel)
    extra: dict[str, Any] = {"workspace_bytes": workspace} if workspace else {}
    return Variant(
        kernel=kernel,
        name=name,
        device="cpu",
        backend="halide",
        build=_builder(kernel, name),
        complexity=standard_complexity_of(kernel),
        cached=_cached(kernel, name),
        traits=traits_function(kernel, name),
        searches=name.startswith(AUTO_PREFIX),
        **extra,
    )


def variants() -> list[Variant]:
    """annc's own schedules, and every auto-scheduler's for the kernels they handle."""
    return [*(_variant(kernel, name) for kernel, name in OWN_SCHEDULES),
            *(_variant(kernel, AUTO_PREFIX + scheduler) for kernel in AUTO_SCHEDULED_KERNELS
              for scheduler in AUTOSCHEDULERS)]
