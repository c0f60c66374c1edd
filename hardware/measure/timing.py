"""The timing harness: the one way annc measures how long a variant takes.

A measurement builds the variant (through the shared cache, timing the build
once), puts seeded operands on the variant's device, runs untimed warm-up
calls (at least `warmup` of them, and for at least `warmup_seconds`: thread
pools wake and caches fill over the first few calls), then times calls one by
one until it has at least `min_repeats` of them and they add up to at least
`min_seconds` (at most `max_repeats`, and no more once `max_seconds` have been
spent timing). The caller passes these numbers as one `TimingSettings`
(`hardware.measure.settings`). The result is copied back to the host only after the last timed
call.

The process's allocator is first made steady (`hardware.devices.allocator`), as it
is when annc runs a program.

`measure` and `measure_region` return the one `annc.dsl.records.Record`: its
`seconds` are the median of the per-call times, its `spread` (p90 − p10) / median of
the same times, a dimensionless measure of noise. `time_variant` gives the raw
`Times` the record is made from, for a caller that wants every call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from annc.dsl import dtypes
from annc.dsl.records import Combination, Query, Record
from annc.hardware.devices.allocator import aligned, keep_freed_memory
from annc.hardware.devices.available import get_device
from annc.hardware.devices.device import Device
from annc.hardware.measure.operands import uniform_operands
from annc.hardware.measure.settings import TimingSettings
from annc.hardware.variants.compiled import compiled, normalise_shapes
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.spec import RegionSpec, summary
from annc.hardware.variants.registry import Shapes, Variant

THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    "HL_NUM_THREADS", "XLA_FLAGS",
)
"""Environment variables that set the thread counts of BLAS, Halide and XLA."""


@dataclass(frozen=True)
class Times:
    """The timed calls of one measurement, before they become a `Record`."""

    times_s: tuple[float, ...]
    """Every timed call's seconds (per execution), in order."""
    compile_s: float
    """Seconds the variant's build took (the first time, in this process)."""
    threads: dict[str, str]

    @property
    def median_s(self) -> float:
        return float(np.median(self.times_s))

    @property
    def spread(self) -> float:
        """(p90 − p10) / median of `times_s`; 0 for a single repeat."""
        return spread(self.times_s) if len(self.times_s) > 1 else 0.0

    @property
    def repeats(self) -> int:
        return len(self.times_s)

    def record(self, combination: Combination, query: Query, source: str) -> Record:
        """The record of these calls (its machine, time and version filled in by whoever
        stores it)."""
        return Record(combination, query, self.median_s, source, spread=self.spread,
                      repeats=self.repeats, compile_s=self.compile_s,
                      threads=self.threads)


def thread_settings() -> dict[str, str]:
    """The thread-related environment and the CPUs this process may run on."""
    settings = {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ}
    settings["cpus"] = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                           else os.cpu_count())
    return settings


def spread(times: Sequence[float]) -> float:
    """(p90 − p10) / median: the width of the middle 80% relative to the median."""
    p10, median, p90 = np.percentile(times, [10, 50, 90])
    return float((p90 - p10) / median) if median > 0 else 0.0


def query_of(variant: Variant, shapes: Shapes, dtype: np.dtype | type) -> Query:
    """What a model is asked about this measurement: the shapes, the dtype's stored name,
    the variant's complexity and traits there."""
    name = np.dtype(dtype).name
    return replace(variant.query(shapes, dtypes.normalise(name)), dtype=name)


def measure(
    variant: Variant,
    shapes: Shapes,
    dtype: np.dtype | type,
    *,
    source: str,
    device: Device | None = None,
    seed: int = 0,
    operands: Sequence[np.ndarray] | None = None,
    settings: TimingSettings,
) -> Record:
    """Times `variant` on operands of these shapes with its operands on `device`: the
    record of `source` (`annc.dsl.records.SOURCES`).

    `device` defaults to the variant's own device; `operands` (host arrays of
    these shapes) replace the seeded uniform [0, 1) ones when given.
    """
    shapes = normalise_shapes(shapes)
    times = time_variant(variant, shapes, dtype, device=device, seed=seed, operands=operands,
                         settings=settings)
    return times.record(variant.key, query_of(variant, shapes, dtype), source)


def time_variant(
    variant: Variant,
    shapes: Shapes,
    dtype: np.dtype | type,
    *,
    device: Device | None = None,
    seed: int = 0,
    operands: Sequence[np.ndarray] | None = None,
    settings: TimingSettings,
) -> Times:
    """`measure`'s timed calls, each one kept."""
    shapes = normalise_shapes(shapes)
    device = device or get_device(variant.device)
    build = compiled(variant, shapes, dtype)
    host = list(operands) if operands is not None else uniform_operands(shapes, dtype, seed)
    resident = [device.put(aligned(np.asarray(a, dtype=dtype))) for a in host]
    keep_freed_memory()
    result = None

    def call() -> None:
        nonlocal result
        result = build.kernel(*resident)

    times = _time_calls(call, settings)
    device.get(result)
    return _times(times, build.compile_s)


def _time_calls(call: Callable[[], None], settings: TimingSettings) -> list[float]:
    """Warm-up calls, then the timed calls' seconds (see the module's docstring)."""
    s = settings
    if s.min_repeats < 1 or s.max_repeats < s.min_repeats:
        raise ValueError(f"need 1 <= min_repeats <= max_repeats, got {s.min_repeats}, "
                         f"{s.max_repeats}")
    began = time.perf_counter()
    calls = 0
    while calls < s.warmup or time.perf_counter() - began < s.warmup_seconds:
        call()
        calls += 1
    times: list[float] = []
    total = 0.0
    while len(times) < s.max_repeats and (
        len(times) < s.min_repeats or total < s.min_seconds
    ) and total < s.max_seconds:
        start = time.perf_counter()
        call()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        total += elapsed
    return times


def _times(times: list[float], compile_s: float, per: int = 1) -> Times:
    return Times(tuple(t / per for t in times), compile_s, thread_settings())


def measure_region(
    combination: Combination,
    spec: RegionSpec,
    *,
    source: str,
    seed: int = 0,
    settings: TimingSettings,
) -> Record:
    """Times a compiled region variant on seeded host inputs, like `measure`; a whole
    loop's times are per trip (each call's time over its trips). Its query is the
    region's summary, whose complexity it carries."""
    function = catalogue.built(spec, combination.variant)
    compile_s = catalogue.build_seconds_of(spec, combination.variant) or 0.0
    dtype = dtypes.to_numpy(spec.dtype)
    inputs = [aligned(a) for a in uniform_operands(spec.inputs, dtype, seed)]
    keep_freed_memory()

    def call() -> None:
        function(*inputs)

    times = _times(_time_calls(call, settings), compile_s, per=max(spec.trips or 1, 1))
    described = summary(spec)
    return times.record(combination, described.query(combination.kernel,
                                                     dtypes.stored_name(spec.dtype)), source)
