"""A region as one Halide pipeline: every op a Func over the Funcs of its operands.

Element-wise ops stay inlined (Halide's default), so a chain of them costs one pass
over memory. A region has at most one other op (conv2d, matmul, matvec, transpose,
dot, sum, norm), its "heavy" op; annc's schedule ("annc") reuses the single-kernel
schedules of `hardware.variants.halide.schedules` for it, applied to the region's
output instead of the kernel's own: the output is tiled, vectorised and parallel as
the kernel's would be, and the heavy op's accumulation is computed per tile of it,
its element-wise producers and consumers inlined around it. Where that is not
possible, because the heavy result is 0-d (a reduction every element reads) or feeds
more than one output, the heavy op is computed at root, scheduled the same way, and
the outputs are scheduled as element-wise ones.

Several outputs are one Pipeline with several output Funcs (one per distinct output
value), so every input is read once per call and shared work is done once; a value
named twice among the outputs is computed once and copied.

Loops are not compiled here: a Halide pipeline has no loop over whole buffers, so a
loop region is the JAX builder's (`jax_region`).

Every element-wise op is `strict_float`: IEEE arithmetic, as numpy computes it.
Halide's simplifier otherwise rewrites float algebra as if values were finite —
v − v to 0, v · 0 to 0, (−v) / v to −1 — and leaves a division by a divisor it
proves zero undefined (halide/Halide#7751: the output is then never written). A
strict division by a divisor that is always zero (`A / (A - A)`, `A / 0.0` with the
constant folded) is refused at compile time, and the region runs its ops one by one.
The sums of the heavy ops stay reassociable, so they vectorise.

Builds persist as kernels' do (`halide.cpu`): with a C compiler a region is compiled
ahead of time into a shared object kept in the build cache (kind `region`, keyed by
the spec, constants included, the schedule, target, Halide version and machine),
which a later process loads in about half a millisecond instead of compiling for a
tenth of a second or more (`benchmarks/build_loads.py`); Mullapudi2016's scheduled
pipeline is kept too, so its search runs once even where regions are JIT-compiled.
The shared object is called through ctypes (`halide.abi`): inputs then outputs,
0-d buffers included. Both paths compile the same pipeline for the same target and
give the same bits.

Coordinates follow `halide.algorithms`: a value's Halide dimension 0 is numpy's last
axis.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import halide as hl
import numpy as np

from annc.dsl import kernels
from annc.hardware import events
from annc.hardware.devices.allocator import aligned_empty
from annc.hardware.devices.backend_start import mark_started
from annc.hardware.variants.halide import build_cache, schedules
from annc.hardware.variants.halide.abi import AotFunction, load_shared_object
from annc.hardware.variants.halide.algorithms import Definition
from annc.hardware.variants.halide.aot import (
    BuildError,
    StoredSchedule,
    aot_target,
    c_compiler,
    cache_key,
    ensure_runtime,
    load_kept,
    serialise,
    shared_object,
)
from annc.hardware.variants.halide.cpu import JIT_NOTE, JitFunction, note_once
from annc.hardware.variants.halide.pipeline import (
    AUTOSCHEDULERS,
    AutoscheduleError,
    autoscheduler_parameters,
    extents,
    halide_type,
    load_autoscheduler,
)
from annc.hardware.variants.halide.scheduling import cpu_target
from annc.hardware.variants.regions.halide_support import halide_supports
from annc.hardware.variants.regions.reference import check_inputs, numpy_dtype
from annc.hardware.variants.regions.spec import RegionSpec, Shape

SCHEDULES = ("annc", *AUTOSCHEDULERS)
"""annc's own schedule, or one of the auto-schedulers the halide wheel ships."""

_UNARY: dict[str, Callable[[hl.Expr], hl.Expr]] = {
    "exp": hl.exp, "sqrt": hl.sqrt, "abs": hl.abs, "neg": lambda a: -a,
}
_BINARY: dict[str, Callable[[hl.Expr, hl.Expr], hl.Expr]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
}

Load = Callable[[Sequence[hl.Expr]], hl.Expr]
"""A value read at Halide coordinates (innermost first; empty for a 0-d value)."""

RegionKernel = Callable[..., list[np.ndarray]]


class RegionUnsupported(ValueError):
    """A region the Halide builder does not compile; the message says why."""


def _vars(rank: int) -> tuple[hl.Var, ...]:
    return tuple(hl.Var(f"d{n}") for n in range(rank))


def _func(name: str, rank: int, value: Callable[[Sequence[hl.Expr]], hl.Expr]) -> hl.Func:
    """A pure Func of `rank` dimensions, defined by `value` at its own Vars."""
    func = hl.Func(name)
    coords = _vars(rank)
    func[coords if coords else ()] = value(coords)
    return func


def _loader(func: hl.Func | hl.ImageParam, rank: int) -> Load:
    if rank == 0:
        return lambda coords: func[()]
    return lambda coords: func[list(coords)]


@dataclass
class Heavy:
    """The region's non-element-wise op, as a schedule sees it."""

    kernel: str
    index: int
    """Its value number."""
    value: hl.Func
    """Its result, a pure Func (the "output" a kernel schedule would tile)."""
    reduction: hl.RDom | None
    stages: dict[str, hl.Func]
    operand_shapes: tuple[Shape, ...]


def _zero(element: hl.Type) -> hl.Expr:
    return hl.cast(element, 0)


def _heavy(kernel: str, index: int, loads: list[Load], shapes: tuple[Shape, ...],
           element: hl.Type) -> tuple[Heavy, Load]:
    """The heavy op over its operands' loads, as `halide.algorithms` defines the kernel."""
    x, y = hl.Var("d0"), hl.Var("d1")
    name = f"v{index}"
    reduction: hl.RDom | None = None
    stages: dict[str, hl.Func] = {}
    if kernel == "transpose":
        value = _func(name, 2, lambda c: loads[0]([c[1], c[0]]))
    elif kernel in ("matmul", "matvec"):
        k = hl.RDom([hl.Range(0, shapes[0][1])], "k")
        product = hl.Func(f"{name}_product")
        if kernel == "matmul":
            product[x, y] = _zero(element)
            product[x, y] += loads[0]([k.x, y]) * loads[1]([x, k.x])
            value = _func(name, 2, lambda c: product[c[0], c[1]])
        else:
            product[x] = _zero(element)
            product[x] += loads[0]([k.x, x]) * loads[1]([k.x])
            value = _func(name, 1, lambda c: product[c[0]])
        reduction, stages = k, {"product": product}
    elif kernel == "conv2d":
        (h, w), (p, q) = shapes
        r, s = (p - 1) // 2, (q - 1) // 2
        image = _func(f"{name}_image", 2, loads[0])
        padded = hl.BoundaryConditions.constant_exterior(
            image, _zero(element), [hl.Range(0, w), hl.Range(0, h)])
        taps = hl.RDom([hl.Range(0, q), hl.Range(0, p)], "taps")
        conv = hl.Func(f"{name}_conv")
        conv[x, y] = _zero(element)
        conv[x, y] += (loads[1]([taps.x, taps.y])
                       * padded[x + s - taps.x, y + r - taps.y])
        value = _func(name, 2, lambda c: conv[c[0], c[1]])
        reduction, stages = taps, {"product": conv, "padded": padded}
    else:
        rank = len(shapes[0])
        ranges = [hl.Range(0, e) for e in extents(shapes[0])] or [hl.Range(0, 1)]
        i = hl.RDom(ranges, "i")
        at = [i[n] for n in range(rank)]
        total = hl.Func(f"{name}_total")
        total[()] = _zero(element)
        if kernel == "dot":
            total[()] += loads[0](at) * loads[1](at)
        elif kernel == "sum":
            total[()] += loads[0](at)
        else:
            total[()] += loads[0](at) * loads[0](at)
        value = hl.Func(name)
        value[()] = hl.sqrt(total[()]) if kernel == "norm" else total[()]
        reduction, stages = i, {"total": total}
    heavy = Heavy(kernel, index, value, reduction, stages, shapes)
    return heavy, _loader(value, len(kernels.result_shape(kernel, shapes)))


@dataclass
class Region:
    """The region's Funcs: its inputs, its distinct outputs and its heavy op."""

    inputs: list[hl.ImageParam]
    outputs: list[hl.Func]
    output_values: list[int]
    """The value number each output Func computes, in order (distinct)."""
    heavy: Heavy | None


def define(spec: RegionSpec) -> Region:
    """Every value as a Func (inputs as ImageParams, bound to their shapes)."""
    element = halide_type(numpy_dtype(spec))
    shapes = spec.shapes()
    params = []
    loads: list[Load] = []
    for n, shape in enumerate(spec.inputs):
        param = hl.ImageParam(element, len(shape), f"in{n}")
        for dim, extent in enumerate(extents(shape)):
            param.dim(dim).set_bounds(0, extent)
        params.append(param)
        loads.append(_loader(param, len(shape)))
    heavy = None
    for index, op in enumerate(spec.ops):
        number = len(spec.inputs) + index
        operand_loads = [loads[v] for v in op.operands]
        if op.kernel in _UNARY or op.kernel in _BINARY:
            loads.append(_elementwise(op.kernel, number, operand_loads,
                                      [len(shapes[v]) for v in op.operands]))
        else:
            heavy, load = _heavy(op.kernel, number, operand_loads,
                                 spec.operand_shapes(index), element)
            loads.append(load)
    distinct = list(dict.fromkeys(spec.outputs))
    outputs = []
    for k, v in enumerate(distinct):
        out = _func(f"annc_region_out{k}", len(shapes[v]), loads[v])
        for dim, extent in enumerate(extents(shapes[v])):
            out.output_buffer().dim(dim).set_bounds(0, extent)
        outputs.append(out)
    return Region(params, outputs, distinct, heavy)


def _elementwise(kernel: str, number: int, loads: list[Load], ranks: list[int]) -> Load:
    rank = max(ranks)

    def value(coords: Sequence[hl.Expr]) -> hl.Expr:
        args = [load(coords if r else ()) for load, r in zip(loads, ranks, strict=True)]
        value = _BINARY[kernel](*args) if len(args) == 2 else _UNARY[kernel](args[0])
        return hl.strict_float(value)

    return _loader(_func(f"v{number}", rank, value), rank)


def _depends(spec: RegionSpec, value: int, on: int) -> bool:
    """Whether value `value` is computed from value `on` (or is it)."""
    if value == on:
        return True
    if value < len(spec.inputs):
        return False
    op = spec.ops[value - len(spec.inputs)]
    return any(_depends(spec, v, on) for v in op.operands)


KernelSchedule = Callable[[Definition, tuple[Shape, ...], hl.Target], None]
"""A single-kernel schedule of `hardware.variants.halide.schedules`."""


def reduction_by_rows(definition: Definition, shapes: tuple[Shape, ...],
                      target: hl.Target) -> None:
    """A sum or norm over several dimensions: one partial sum per outermost index (a row
    of a matrix), the rows in parallel, each row's sum in vectors of lanes; then the
    partial sums added in order."""
    total = definition.stages["total"]
    reduce = definition.reduction
    assert reduce is not None
    rank = len(shapes[0])
    row, lane = hl.Var("row"), hl.Var("lane")
    per_row = total.update().rfactor(reduce[rank - 1], row)
    per_row.compute_root()
    if math.prod(shapes[0]) >= schedules.PARALLEL_MIN_WORK:
        per_row.update().parallel(row)
    width = max(1, min(4 * schedules.lanes(definition, target), shapes[0][-1]))
    outer, inner = hl.RVar("outer"), hl.RVar("inner")
    per_row.update().split(reduce[0], outer, inner, width, schedules.GUARD)
    per_lane = per_row.update().rfactor(inner, lane)
    per_lane.compute_at(per_row, row).vectorize(lane).update().vectorize(lane)


def _kernel_schedule(heavy: Heavy) -> KernelSchedule | None:
    """The single-kernel schedule the heavy op gets."""
    if heavy.kernel in ("dot", "sum", "norm"):
        if len(heavy.operand_shapes[0]) <= 1:
            return schedules.reduction_vectorised
        return reduction_by_rows
    return {
        "matmul": schedules.matmul_tiled,
        "matvec": schedules.matvec_tiled,
        "conv2d": schedules.conv2d_direct,
        "transpose": schedules.transpose_tiled,
    }[heavy.kernel]


def schedule_elementwise(func: hl.Func, shape: Shape, ops: int, target: hl.Target,
                         element: hl.Type) -> None:
    """An element-wise output: whole vectors along numpy's last axis, and in parallel
    (rows, or blocks of a vector) once its element-ops pay for the threads."""
    if not shape:
        return
    coords = _vars(len(shape))
    x = coords[0]
    vec = target.natural_vector_size(element)
    n = math.prod(shape)
    if n * max(ops, 1) >= schedules.PARALLEL_MIN_WORK:
        if len(shape) == 1:
            xo, xi = hl.Var("xo"), hl.Var("xi")
            block = schedules.tile(n, math.ceil(n / (8 * (os.cpu_count() or 1))), vec)
            func.split(x, xo, xi, block, schedules.SHIFT).parallel(xo)
            x = xi
        else:
            func.parallel(coords[-1])
    if shape[-1] >= vec:
        func.vectorize(x, vec, schedules.SHIFT)


def _annc_schedule(spec: RegionSpec, region: Region, target: hl.Target) -> None:
    """annc's schedule; see the module docstring."""
    shapes = spec.shapes()
    element = halide_type(numpy_dtype(spec))
    heavy = region.heavy
    tiled: hl.Func | None = None
    if heavy is not None:
        dependents = [out for out, v in zip(region.outputs, region.output_values, strict=True)
                      if _depends(spec, v, heavy.index)]
        rank = len(shapes[heavy.index])
        if len(dependents) == 1 and rank > 0:
            tiled = dependents[0]  # the heavy op's own schedule, applied to that output
        else:
            heavy.value.compute_root()
        kernel_schedule = _kernel_schedule(heavy)
        if dependents and kernel_schedule is not None:
            definition = Definition(tiled or heavy.value, tuple(region.inputs), _vars(rank),
                                    heavy.reduction, heavy.stages)
            kernel_schedule(definition, heavy.operand_shapes, target)
    for out, v in zip(region.outputs, region.output_values, strict=True):
        if out is not tiled:
            schedule_elementwise(out, shapes[v], len(spec.ops), target, element)


def _auto_schedule(name: str, region: Region, spec: RegionSpec, target: hl.Target
                   ) -> tuple[hl.Pipeline, StoredSchedule]:
    """The region's pipeline scheduled by the auto-scheduler, and that schedule as the
    build cache keeps it."""
    load_autoscheduler(name)
    shapes = spec.shapes()
    for param, shape in zip(region.inputs, spec.inputs, strict=True):
        param.set_estimates([hl.Range(0, e) for e in extents(shape)])
    for out, v in zip(region.outputs, region.output_values, strict=True):
        out.set_estimates([hl.Range(0, e) for e in extents(shapes[v])])
    pipeline = hl.Pipeline(region.outputs)
    start = time.perf_counter()
    try:
        results = pipeline.apply_autoscheduler(target, autoscheduler_parameters(name))
    except hl.HalideError as error:  # e.g. an input the simplifier removed has no bounds
        raise AutoscheduleError(f"{AUTOSCHEDULERS[name]} failed: {error}") from error
    if not results.schedule_source.strip():
        raise AutoscheduleError(f"{AUTOSCHEDULERS[name]} produced no schedule")
    stored = StoredSchedule(AUTOSCHEDULERS[name], results.schedule_source,
                            time.perf_counter() - start, serialise(pipeline))
    return pipeline, stored


SYMBOL = "annc_region"
"""The entry point of every compiled region (never a C library function's name)."""


Call = Callable[..., None]
"""A compiled pipeline: called with its inputs then its outputs, C-contiguous arrays of
the region's dtype, it writes the outputs (an `AotFunction` or a `JitFunction`)."""


def region_key(spec: RegionSpec, schedule: str) -> dict[str, Any]:
    """The build cache key of a compiled region: the spec (constants included), the
    schedule, and `cache_key`'s target, Halide version and machine."""
    return cache_key(aot_target(cpu_target()), what="halide-region", spec=spec.to_json(),
                     schedule=schedule)


def _schedule_key(spec: RegionSpec, schedule: str) -> dict[str, Any]:
    return cache_key(cpu_target(), what="halide-region-schedule", spec=spec.to_json(),
                     schedule=schedule)


def is_cached(spec: RegionSpec, schedule: str) -> bool:
    """Whether `build_halide` would load the region from the build cache: a C compiler is
    found and the compiled region is there (its checksum is verified only when loading)."""
    return c_compiler() is not None and build_cache.exists("region", region_key(spec, schedule))


def _stored_schedule(spec: RegionSpec, schedule: str) -> StoredSchedule | None:
    payload = build_cache.read("schedule", _schedule_key(spec, schedule))
    return StoredSchedule.from_bytes(payload) if payload is not None else None


def _arguments(pipeline: hl.Pipeline, spec: RegionSpec) -> list[hl.Argument]:
    """A deserialised pipeline's input arguments in spec order. An input no Func reads
    is not among the pipeline's own; it gets a parameter of its name, type and rank
    (the compiled function still takes it)."""
    found = {argument.name: argument for argument in pipeline.infer_arguments()}
    element = halide_type(numpy_dtype(spec))
    return [found.get(f"in{n}") or hl.Argument(hl.ImageParam(element, len(shape), f"in{n}"))
            for n, shape in enumerate(spec.inputs)]


def scheduled(spec: RegionSpec, schedule: str) -> tuple[hl.Pipeline, list[hl.Argument]]:
    """The region's pipeline under `schedule`, with its input arguments in spec order.

    An auto-scheduler's pipeline comes from the build cache where it was made before
    (serialised, as a kernel's is), else it is generated and kept, so the search runs
    once per spec and machine even without a C compiler."""
    target = cpu_target()
    region = define(spec)
    if schedule == "annc":
        _annc_schedule(spec, region, target)
        return hl.Pipeline(region.outputs), [hl.Argument(p) for p in region.inputs]
    stored = _stored_schedule(spec, schedule)
    if stored is not None:
        pipeline = hl.deserialize_pipeline(stored.pipeline)
        return pipeline, _arguments(pipeline, spec)
    pipeline, stored = _auto_schedule(schedule, region, spec, target)
    build_cache.write("schedule", _schedule_key(spec, schedule), stored.to_bytes())
    return pipeline, [hl.Argument(p) for p in region.inputs]


@contextlib.contextmanager
def _refusing_undefined_division() -> Iterator[None]:
    """Turns Halide's refusal of a division by constant zero into `RegionUnsupported`."""
    try:
        yield
    except hl.HalideError as error:
        if "division by constant zero" in str(error).lower():
            raise RegionUnsupported("it divides by a value that is always zero, which "
                                    "Halide leaves undefined") from error
        raise


def _ahead_of_time(spec: RegionSpec, schedule: str, compiler: str) -> AotFunction:
    """The region's shared object, loaded from the build cache or compiled and kept."""
    target = aot_target(cpu_target())
    ensure_runtime(target, compiler)
    key = region_key(spec, schedule)
    shapes = (*spec.inputs, *_output_shapes(spec))
    function = load_kept("region", key, SYMBOL, shapes, numpy_dtype(spec))
    if function is not None:
        events.count("halide region loaded")
        return function
    pipeline, arguments = scheduled(spec, schedule)
    with _refusing_undefined_division():
        payload = shared_object(pipeline, arguments, SYMBOL, target, compiler)
    build_cache.write("region", key, payload)
    events.count("halide region built")
    return AotFunction(load_shared_object(payload), SYMBOL, shapes, numpy_dtype(spec))


def _just_in_time(spec: RegionSpec, schedule: str) -> JitFunction:
    pipeline, arguments = scheduled(spec, schedule)
    with _refusing_undefined_division():
        function = pipeline.compile_to_callable(arguments, cpu_target())
    mark_started("halide")
    events.count("halide region jit")
    return JitFunction(function)


def build_halide(spec: RegionSpec, schedule: str = "annc") -> RegionKernel:
    """The region as one Halide pipeline, scheduled by `schedule` and compiled for the
    host and the spec's exact shapes.

    As a kernel is (`halide.cpu.build_halide`): with a C compiler, compiled ahead of
    time into a shared object kept in the build cache, which a later process loads
    instead of compiling; without one, or where linking fails, JIT-compiled (with a
    note). Both compile the same pipeline for the same target, so they give the same
    bits. The returned function takes one numpy array per input (converted to the
    region's dtype, made contiguous) and returns a new numpy array per output.
    Raises `RegionUnsupported` for a region `halide_supports` refuses, ValueError for
    an unknown schedule.
    """
    reason = halide_supports(spec)
    if reason is not None:
        raise RegionUnsupported(reason)
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown Halide region schedule {schedule!r} "
                         f"(schedules: {', '.join(SCHEDULES)})")
    compiler = c_compiler()
    if compiler is not None:
        try:
            return _runner(spec, _ahead_of_time(spec, schedule, compiler))
        except BuildError as error:
            note_once(f"note: Halide variants are JIT-compiled: {error}")
    else:
        note_once(JIT_NOTE)
    return _runner(spec, _just_in_time(spec, schedule))


def _output_shapes(spec: RegionSpec) -> list[Shape]:
    """The shape of every distinct output value, in the order of the pipeline's outputs
    (`define`)."""
    shapes = spec.shapes()
    return [shapes[v] for v in dict.fromkeys(spec.outputs)]


def _runner(spec: RegionSpec, function: Call) -> RegionKernel:
    dtype = numpy_dtype(spec)
    out_shapes = _output_shapes(spec)
    position = {v: k for k, v in enumerate(dict.fromkeys(spec.outputs))}

    def run(*inputs: np.ndarray) -> list[np.ndarray]:
        check_inputs(spec, list(inputs))
        arrays = [np.asarray(a, dtype=dtype, order="C") for a in inputs]  # 0-d stays 0-d
        results = [aligned_empty(shape, dtype) for shape in out_shapes]
        function(*arrays, *results)
        seen: set[int] = set()
        outputs = []
        for v in spec.outputs:
            result = results[position[v]]
            outputs.append(result.copy() if v in seen else result)
            seen.add(v)
        return outputs

    return run
