"""Where a CPU pipeline's schedule comes from: annc's own, by (kernel, variant name), or an
auto-scheduler's, generated once per shapes and kept in the build cache.

`cpu` builds and runs what is scheduled here, and `schedule_traits` reads an
auto-scheduler's decisions from it; neither imports the other.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import halide as hl
import numpy as np

from annc.hardware.variants.halide import build_cache, schedules
from annc.hardware.variants.halide.algorithms import ELEMENTWISE, REDUCTIONS, Definition, define
from annc.hardware.variants.halide.aot import StoredSchedule, cache_key, deserialise, serialise
from annc.hardware.variants.halide.pipeline import (
    AutoSchedule,
    Shape,
    autoschedule,
    bind_shapes,
    halide_type,
)
from annc.hardware.variants.registry import Shapes

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



Scheduled = tuple[hl.Pipeline, list, AutoSchedule | None]


def _schedule_key(kernel: str, name: str, shapes: tuple[Shape, ...], dtype: np.dtype,
                  target: hl.Target) -> dict:
    return cache_key(target, what="halide-schedule", kernel=kernel, variant=name,
                     shapes=shapes, dtype=dtype.name)


def stored_schedule(kernel: str, name: str, shapes: tuple[Shape, ...],
                    dtype: np.dtype) -> StoredSchedule | None:
    """The cached auto-scheduler output for these shapes, if any."""
    payload = build_cache.read("schedule", _schedule_key(kernel, name, shapes, dtype,
                                                         cpu_target()))
    return StoredSchedule.from_bytes(payload) if payload is not None else None


def scheduled(kernel: str, shapes: tuple[Shape, ...], output_shape: Shape, dtype: np.dtype,
              name: str) -> Scheduled:
    """The kernel's pipeline scheduled by `name`, with its arguments in operand order.

    An auto-scheduler's schedule comes from the build cache where it was made
    before (the scheduled pipeline, serialised); else it is generated and kept."""
    definition = define(kernel, tuple(len(s) for s in shapes), halide_type(dtype))
    bind_shapes(definition, shapes, output_shape)
    target = cpu_target()
    if not name.startswith(AUTO_PREFIX):
        OWN_SCHEDULES[(kernel, name)](definition, shapes, target)
        return hl.Pipeline(definition.output), list(definition.inputs), None
    stored = stored_schedule(kernel, name, shapes, dtype)
    if stored is not None:
        pipeline, arguments = deserialise(stored.pipeline,
                                          [p.name() for p in definition.inputs])
        return pipeline, arguments, AutoSchedule(stored.scheduler, stored.source, 0.0)
    schedule = autoschedule(definition, shapes, output_shape, name.removeprefix(AUTO_PREFIX),
                            target)
    pipeline = hl.Pipeline(definition.output)
    build_cache.write("schedule", _schedule_key(kernel, name, shapes, dtype, target),
                      StoredSchedule(schedule.scheduler, schedule.source, schedule.seconds,
                                     serialise(pipeline)).to_bytes())
    return pipeline, list(definition.inputs), schedule

