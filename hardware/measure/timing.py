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

`median_s` is the median of the per-call times; `spread` is
(p90 − p10) / median of the same times, a dimensionless measure of noise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from annc.dsl import dtypes
from annc.hardware.devices.allocator import aligned, keep_freed_memory
from annc.hardware.devices.available import get_device
from annc.hardware.devices.device import Device
from annc.hardware.measure.operands import uniform_operands
from annc.hardware.measure.settings import TimingSettings
from annc.hardware.variants.compiled import compiled, normalise_shapes
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.spec import RegionSpec
from annc.hardware.variants.registry import Shapes, Variant

THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    "HL_NUM_THREADS", "XLA_FLAGS",
)
"""Environment variables that set the thread counts of BLAS, Halide and XLA."""


@dataclass(frozen=True)
class Timing:
    median_s: float
    spread: float
    """(p90 − p10) / median of `times_s`; 0 for a single repeat."""
    repeats: int
    compile_s: float
    """Seconds the variant's build took (the first time, in this process)."""
    threads: dict[str, str]
    times_s: tuple[float, ...]
    """Every timed call, in order."""


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


def measure(
    variant: Variant,
    shapes: Shapes,
    dtype: np.dtype | type,
    *,
    device: Device | None = None,
    seed: int = 0,
    operands: Sequence[np.ndarray] | None = None,
    settings: TimingSettings,
) -> Timing:
    """Times `variant` on operands of these shapes with its operands on `device`.

    `device` defaults to the variant's own device; `operands` (host arrays of
    these shapes) replace the seeded uniform [0, 1) ones when given.
    """
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
    return _timing(times, build.compile_s)


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


def _timing(times: list[float], compile_s: float, per: int = 1) -> Timing:
    seconds = [t / per for t in times]
    return Timing(
        median_s=float(np.median(seconds)),
        spread=spread(seconds) if len(seconds) > 1 else 0.0,
        repeats=len(seconds),
        compile_s=compile_s,
        threads=thread_settings(),
        times_s=tuple(seconds),
    )


def measure_region(
    variant: str,
    spec: RegionSpec,
    *,
    seed: int = 0,
    settings: TimingSettings,
) -> Timing:
    """Times a compiled region variant on seeded host inputs, like `measure`; a whole
    loop's times are per trip (each call's time over its trips)."""
    function = catalogue.built(spec, variant)
    compile_s = catalogue.build_seconds_of(spec, variant) or 0.0
    dtype = dtypes.to_numpy(spec.dtype)
    inputs = [aligned(a) for a in uniform_operands(spec.inputs, dtype, seed)]
    keep_freed_memory()

    def call() -> None:
        function(*inputs)

    times = _time_calls(call, settings)
    return _timing(times, compile_s, per=max(spec.trips or 1, 1))
