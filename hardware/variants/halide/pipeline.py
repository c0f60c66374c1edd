"""Turning a Halide `Definition` into compiled code for fixed shapes.

Owns what every Halide variant shares: numpy dtypes as Halide types, numpy shapes as
Halide extents (reversed), fixing the inputs' shapes before a compile, the
estimates an auto-scheduler needs, and loading the auto-scheduler plugins the wheel
ships. Compiling (ahead of time or JIT) is `cpu`'s and `aot`'s.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import halide as hl
import numpy as np

from annc.dsl import kernels
from annc.hardware.variants.halide.algorithms import Definition

Shape = tuple[int, ...]

AUTOSCHEDULERS = {
    "mullapudi2016": "Mullapudi2016",
    "li2018": "Li2018",
    "adams2019": "Adams2019",
}
"""The auto-schedulers shipped in the halide wheel: variant suffix -> Halide's name."""


class AutoscheduleError(RuntimeError):
    """An auto-scheduler could not be loaded or produced no schedule."""


def halide_type(dtype: np.dtype) -> hl.Type:
    """hl.Float(32) or hl.Float(64); any other dtype is not a kernel dtype."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return hl.Float(32)
    if dtype == np.float64:
        return hl.Float(64)
    raise ValueError(f"Halide variants take f32 or f64, not {dtype}")


def extents(shape: Shape) -> list[int]:
    """A numpy shape as Halide extents: the last numpy axis is Halide's dimension 0."""
    return list(reversed(shape))


def bind_shapes(definition: Definition, shapes: tuple[Shape, ...], result: Shape) -> None:
    """Fixes the bounds of every input and of the output, so Halide compiles for them."""
    for param, shape in zip(definition.inputs, shapes, strict=True):
        if param.dimensions() != len(shape):
            raise ValueError(f"{param.name()} has {param.dimensions()} dims, shape {shape}")
        for dim, extent in enumerate(extents(shape)):
            param.dim(dim).set_bounds(0, extent)
    output = definition.output.output_buffer()
    for dim, extent in enumerate(extents(result)):
        output.dim(dim).set_bounds(0, extent)


def set_estimates(definition: Definition, shapes: tuple[Shape, ...], result: Shape) -> None:
    """Tells an auto-scheduler the sizes it schedules for: every input and the output."""
    for param, shape in zip(definition.inputs, shapes, strict=True):
        param.set_estimates([hl.Range(0, e) for e in extents(shape)])
    definition.output.set_estimates([hl.Range(0, e) for e in extents(result)])


def result_shape(kernel: str, shapes: tuple[Shape, ...]) -> Shape:
    """The numpy shape of a kernel's result for these operand shapes (`dsl.kernels`)."""
    return kernels.result_shape(kernel, shapes)


def _plugin_dir() -> Path:
    return Path(hl.__file__).parent / "lib64"


@functools.cache
def load_autoscheduler(name: str) -> None:
    """Loads `libautoschedule_<name>.so` by full path (it is not on the loader path)."""
    library = _plugin_dir() / f"libautoschedule_{name}.so"
    if not library.exists():
        raise AutoscheduleError(f"the halide wheel has no {library.name} in {library.parent}")
    hl.load_plugin(str(library))


def autoscheduler_parameters(name: str) -> hl.AutoschedulerParams:
    """The parameters each auto-scheduler runs with: this machine's core count."""
    cores = str(os.cpu_count() or 1)
    return hl.AutoschedulerParams(AUTOSCHEDULERS[name], {"parallelism": cores})


@dataclass(frozen=True)
class AutoSchedule:
    """What an auto-scheduler produced for one pipeline."""

    scheduler: str
    """Halide's name of the auto-scheduler that produced the schedule, e.g. "Adams2019"."""
    source: str
    """The schedule as C++ source, as the auto-scheduler printed it."""
    seconds: float
    """How long generating the schedule took."""


def autoschedule(
    definition: Definition,
    shapes: tuple[Shape, ...],
    result: Shape,
    name: str,
    target: hl.Target,
) -> AutoSchedule:
    """Schedules the whole pipeline with the named auto-scheduler, for these shapes."""
    if name not in AUTOSCHEDULERS:
        raise AutoscheduleError(f"unknown auto-scheduler {name!r}")
    load_autoscheduler(name)
    set_estimates(definition, shapes, result)
    start = time.perf_counter()
    results = hl.Pipeline(definition.output).apply_autoscheduler(
        target, autoscheduler_parameters(name)
    )
    seconds = time.perf_counter() - start
    produced = results.autoscheduler_params.name
    if produced != AUTOSCHEDULERS[name] or not results.schedule_source.strip():
        raise AutoscheduleError(f"{AUTOSCHEDULERS[name]} produced no schedule")
    return AutoSchedule(produced, results.schedule_source, seconds)

