"""Whole loops compiled as one function, run as chunks of trips.

A compiled loop (`hardware.variants.regions`, `loop` regions) takes its trip count at
call time, so the plan runs it as a sequence of calls, each of `ChunkSizer`'s choice
of trips, aimed at `CHUNK_S` seconds: a call that ran for minutes could not be
interrupted (Python handles Ctrl-C between calls, never inside XLA), could not show
progress and could not be switched to. A chunk of 0.2 s costs one call's dispatch,
about 50 µs, so a loop runs within a few hundredths of a percent of one call.

A chunk whose time is not known yet (the first, sized from a prediction) or is long
runs in a helper thread (`hardware.execution.interruptible`), so that Ctrl-C is
answered during it too.

`switching_loop_step` is a loop that starts op by op (its body's steps, trip after
trip) while its compiled form builds beside the run, and hands the remaining trips to
it, with the values carried so far, as soon as it is loaded.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from annc.hardware.devices.device import Device
from annc.hardware.execution.interruptible import call_interruptibly, is_long
from annc.hardware.execution.residency import Resident
from annc.hardware.execution.steps import Env, Step, run_trip
from annc.hardware.execution.tiers import Tier
from annc.hardware.variants.regions.spec import MAX_CALL_TRIPS

CHUNK_S = 0.2
"""Seconds a chunk of a compiled loop aims at: Ctrl-C answers within about this."""
FIRST_CHUNK_S = 0.05
"""Seconds the first chunk aims at, from the predicted time per trip (which may be off)."""
GROWTH = 8
"""A chunk has at most this many times the trips of the one before."""

LoopFunction = Callable[..., list[np.ndarray]]
"""A compiled loop: carried then loop-invariant arrays, and `trips=`; the carried
values after those trips."""
Advance = Callable[[int], None]
"""Told how many trips were just done (progress)."""


class ChunkSizer:
    """How many trips the next chunk runs, from the time per trip seen so far (before
    the first chunk, the predicted one; without a prediction, one trip).

    A prediction can be far off, so the first chunk runs in a helper thread
    (`run_chunks`) and Ctrl-C is answered however long it lasts. Before predictions
    scaled with trips, one 10⁴ times too low (10¹² trips of `x = x * 0.5 + 1`) sized a
    first chunk of 3·10¹¹ trips, about 40 minutes at the 7 ns a trip measured (refused
    then, as more trips than one call takes: chunks never pass `MAX_CALL_TRIPS`).
    Growing every loop from one trip instead cost heat's loop at 1024² × 200 four calls
    and 1.046x one call's time, at 512² × 2,000 five calls and 1.040x, against two calls
    and 0.97x and 1.00x from the prediction (`benchmarks/tier_costs.py`'s chunks, 7
    repeats each, under load)."""

    def __init__(self, predicted_per_trip_s: float | None = None) -> None:
        self.per_trip_s = predicted_per_trip_s if predicted_per_trip_s and math.isfinite(
            predicted_per_trip_s) and predicted_per_trip_s > 0 else None
        self.last = 0
        self.measured = False

    def next(self, remaining: int) -> int:
        """The trips of the next chunk: about `CHUNK_S` of them (`FIRST_CHUNK_S` before
        one was timed), all that remain where less than half a chunk more would; never
        more than one call runs (`MAX_CALL_TRIPS`)."""
        if self.per_trip_s is None:
            trips = 1
        else:
            aim = CHUNK_S if self.measured else FIRST_CHUNK_S
            trips = max(1, int(min(aim / self.per_trip_s, MAX_CALL_TRIPS)))
            if self.last:
                trips = min(trips, self.last * GROWTH)
        whole = remaining <= trips * 3 // 2 and remaining <= MAX_CALL_TRIPS
        self.last = remaining if whole else trips
        return self.last

    def saw(self, trips: int, seconds: float) -> None:
        if trips > 0 and seconds > 0:
            self.per_trip_s, self.measured = seconds / trips, True


class WholeCalls(ChunkSizer):
    """Chunks of every remaining trip (up to `MAX_CALL_TRIPS` a call), whatever the
    times: a sharded loop's calls are collectives every process must make alike, so
    their number cannot follow one process's clock (`jax.sharded` across processes)."""

    def next(self, remaining: int) -> int:
        self.last = min(remaining, MAX_CALL_TRIPS)
        return self.last

    def saw(self, trips: int, seconds: float) -> None:
        return None


def run_chunks(function: LoopFunction, carried: list[np.ndarray],
               invariants: Sequence[np.ndarray], trips: int, sizer: ChunkSizer,
               advance: Advance | None = None) -> list[np.ndarray]:
    """The carried values after `trips` trips of the compiled loop, chunk by chunk."""
    done = 0
    while done < trips:
        chunk = sizer.next(trips - done)
        call = functools.partial(function, *carried, *invariants, trips=chunk)
        per_trip = sizer.per_trip_s
        start = time.perf_counter()
        carried = call_interruptibly(call) if not sizer.measured or per_trip is None or is_long(
            per_trip * chunk) else call()
        sizer.saw(chunk, time.perf_counter() - start)
        done += chunk
        if advance is not None:
            advance(chunk)
    return list(carried)


Source = int | np.ndarray
"""Where a compiled region's input comes from: a slot, or a constant's array."""


def _arrays(env: Env, sources: Sequence[Source], devices: Mapping[str, Device]
            ) -> list[np.ndarray]:
    return [env[s].aligned_host(devices) if isinstance(s, int) else s for s in sources]


def compiled_loop_runner(function: LoopFunction, sources: Sequence[Source], carried: int,
                         trips: int, results: Sequence[tuple[int, int, tuple[int, ...]]],
                         dtype: np.dtype, devices: Mapping[str, Device],
                         sizer: ChunkSizer, advance: Advance | None
                         ) -> Callable[[Env], None]:
    """Runs a whole compiled loop in chunks on the values of the environment: its first
    `carried` sources are the initial carried values; `results` are (slot, which
    output, shape) triples."""
    fixed = tuple(sources)

    def run(env: Env) -> None:
        arrays = _arrays(env, fixed, devices)
        outputs = run_chunks(function, arrays[:carried], arrays[carried:], trips, sizer,
                             advance)
        for slot, which, shape in results:
            env[slot] = Resident(shape, dtype, {"cpu": outputs[which]})

    return run


def switching_loop_step(trips: range, index: int, arguments: Sequence[int],
                        initial: Sequence[int], body: Sequence[Step], yielded: Sequence[int],
                        results: Sequence[int], tier: Tier, invariants: Sequence[Source],
                        shapes: Sequence[tuple[int, ...]], dtype: np.dtype,
                        devices: Mapping[str, Device], sizer: ChunkSizer,
                        advance: Advance | None) -> Step:
    """`scf.for` run op by op until the compiled loop (`tier`) is loaded, then the
    remaining trips compiled, from the values carried so far. `invariants` are the
    compiled loop's other inputs, `shapes` the carried values' shapes."""
    steps = tuple(body)
    carried_slots, yield_slots = tuple(arguments), tuple(yielded)
    fixed = tuple(invariants)

    def run(env: Env) -> None:
        carried = [env[s] for s in initial]
        done = 0
        for i in trips:
            if tier.pending is not None:
                tier.switch(done)
            if tier.kernel is not None:
                break
            carried = run_trip(env, i, index, carried_slots, carried, steps, yield_slots)
            done += 1
            if advance is not None:
                advance(1)
        if done < len(trips):
            arrays = [value.aligned_host(devices) for value in carried]
            outputs = run_chunks(tier.kernel, arrays, _arrays(env, fixed, devices),
                                 len(trips) - done, sizer, advance)
            carried = [Resident(shape, dtype, {"cpu": array})
                       for shape, array in zip(shapes, outputs, strict=True)]
        for slot, value in zip(results, carried, strict=True):
            env[slot] = value

    return run
