"""The steps of an executable plan: one closure per op, resolved once, run many times.

A plan's values live in one list, the environment, at slots fixed when the plan
is made; a step reads its operands' slots and writes its result's. Everything
that does not change between executions (the built kernel, the device, the
shapes, how operands reach the device) is bound when the step is made, so that
running a step costs a few list reads, two clock reads and the kernel call.

A kernel step keeps the nanoseconds of each execution (operand copies and the
kernel, as one time) in a list of its own, and adds its copying time to a
counter shared by the plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from annc.hardware.devices.device import CPU, Device
from annc.hardware.execution.residency import Resident
from annc.hardware.variants.registry import Kernel

Env = list[Any]
"""The values of one execution, by slot: `Resident` tensors and loop indices."""
Step = Callable[[Env], None]


def kernel_step(kernel: Kernel, operands: Sequence[int], result: int,
                shape: tuple[int, ...], dtype: np.dtype, device: Device,
                devices: Mapping[str, Device], align: bool,
                times: list[int], copying: list[int]) -> Step:
    """Runs a built kernel on its operands, copied to `device` where they are not there
    (or, with `align`, on 64-byte aligned host copies, for JAX on the CPU)."""
    clock = time.perf_counter_ns
    record = times.append
    slots = tuple(operands)
    name = device.name

    def run_aligned(env: Env) -> None:
        start = clock()
        handles = [env[s].aligned_host(devices) for s in slots]
        copied = clock()
        value = kernel(*handles)
        end = clock()
        env[result] = Resident(shape, dtype, {name: value})
        record(end - start)
        copying[0] += copied - start

    def run_on_device(env: Env) -> None:
        start = clock()
        handles = [env[s].on(device, devices) for s in slots]
        copied = clock()
        value = kernel(*handles)
        end = clock()
        env[result] = Resident(shape, dtype, {name: value})
        record(end - start)
        copying[0] += copied - start

    return run_aligned if align else run_on_device


def constant_step(array: np.ndarray, result: int) -> Step:
    """A fresh value on the host each time it runs, holding the constant's array (which
    no kernel writes to), as `kernel.constant` is a new value at each execution."""
    shape, dtype = tuple(array.shape), array.dtype

    def run(env: Env) -> None:
        env[result] = Resident(shape, dtype, {"cpu": array})

    return run


def loop_step(trips: range, index: int, arguments: Sequence[int], initial: Sequence[int],
              body: Sequence[Step], yielded: Sequence[int], results: Sequence[int],
              advance: Callable[[int], None] | None = None) -> Step:
    """`scf.for` with iter_args: the body's steps once per trip, the values it yields
    carried into the next trip's arguments and, after the last, into the results.
    `advance` is told of every trip done (the progress of an outermost loop)."""
    steps = tuple(body)
    carried_slots, yield_slots = tuple(arguments), tuple(yielded)

    def run(env: Env) -> None:
        carried = [env[s] for s in initial]
        for i in trips:
            carried = run_trip(env, i, index, carried_slots, carried, steps, yield_slots)
            if advance is not None:
                advance(1)
        for slot, value in zip(results, carried, strict=True):
            env[slot] = value

    return run


def run_trip(env: Env, trip: int, index: int, carried_slots: Sequence[int],
             carried: list[Any], steps: Sequence[Step], yield_slots: Sequence[int]
             ) -> list[Any]:
    """One trip of a loop's body: the index and the carried values in their slots, the
    steps, and the values the body yields (the next trip's carried values)."""
    env[index] = trip
    for slot, value in zip(carried_slots, carried, strict=True):
        env[slot] = value
    for step in steps:
        step(env)
    return [env[s] for s in yield_slots]


def region_runner(function: Callable[..., list[np.ndarray]],
                  sources: Sequence[int | np.ndarray],
                  results: Sequence[tuple[int, int, tuple[int, ...]]], dtype: np.dtype,
                  devices: Mapping[str, Device]) -> Callable[[Env], None]:
    """Runs a compiled region on the host: its inputs are slots (read from aligned host
    copies) or constant arrays; `results` are (slot, which output, shape) triples."""
    fixed = tuple(sources)

    def run(env: Env) -> None:
        arrays = [env[s].aligned_host(devices) if isinstance(s, int) else s for s in fixed]
        outputs = function(*arrays)
        for slot, which, shape in results:
            env[slot] = Resident(shape, dtype, {"cpu": outputs[which]})

    return run


def timed_step(runner: Callable[[Env], None], times: list[int]) -> Step:
    """The runner as a step that keeps the nanoseconds of each execution."""
    clock = time.perf_counter_ns
    record = times.append

    def run(env: Env) -> None:
        start = clock()
        runner(env)
        record(clock() - start)

    return run


def step_overhead_seconds(executions: int = 5000) -> float:
    """What a kernel step measures beyond its kernel: the median time of a step whose
    kernel does nothing, on two operands on the host, after a warm-up tenth."""
    operand = Resident((4,), np.dtype(np.float32), {"cpu": np.zeros(4, np.float32)})
    env: Env = [operand, operand, None]
    times: list[int] = []
    step = kernel_step(lambda first, _: first, (0, 1), 2, (4,), np.dtype(np.float32), CPU,
                       {"cpu": CPU}, False, times, [0])
    for _ in range(executions):
        step(env)
    return float(np.median(times[executions // 10:])) * 1e-9
