"""Measuring only when unsure: time close candidates on the real shapes before choosing.

Every prediction carries a 90% interval. For an op whose best candidate's
interval overlaps another's, the time at stake is what the program would save
over all its executions if the other were as fast as its interval allows:
`trips × (best − other's low end)`. In `auto` mode the ops with at least
`STAKE_S` at stake are measured, most at stake first, while the estimated cost
of measuring stays within `BUDGET_SHARE` of the program's predicted time — so
a short program is never measured. `always` measures every op's contenders,
without a budget; `never` measures nothing.

A measurement runs in this process (`hardware.measure.timing.measure`: seeded operands
of the real shapes on the candidate's device, a warm-up, then a few timed
calls; a build that searches for a schedule is made by a child process first, so that
Ctrl-C answers: `hardware.execution.foreground`); the build it needed is then cached
for the run, so a measured
candidate's compile time no longer counts. What was measured replaces the
prediction, and the caller keeps it as wisdom for the next compile.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from annc.dsl import dtypes
from annc.dsl.records import Record
from annc.hardware import events
from annc.hardware.measure.settings import TimingSettings
from annc.predictor.cost_model import measured_interval

if TYPE_CHECKING:
    from annc.passes.candidates import Candidate, OpPlan

MEASURE_MODES = ("auto", "never", "always")
STAKE_S = 0.05
"""Seconds of the whole run at stake below which `auto` does not measure an op."""
BUDGET_SHARE = 0.05
"""The share of the program's predicted time `auto` may spend measuring."""
REPEATS = 3
MIN_SECONDS = 0.02
SETTINGS = TimingSettings(min_repeats=REPEATS, min_seconds=MIN_SECONDS, max_repeats=1000,
                          max_seconds=1.0, warmup=1, warmup_seconds=0.0)
"""The `measure` step's timing: few repeats, a second at most per candidate."""



def set_measured(op: OpPlan, candidate: Candidate, seconds: float, basis: str) -> None:
    """Uses a measured time instead of the prediction, with a measurement's interval."""
    candidate.set_time(seconds, *measured_interval(seconds), op.site.trips)
    candidate.basis = basis


def contenders(op: OpPlan) -> tuple[Candidate | None, list[Candidate], float]:
    """The op's best candidate, those whose interval overlaps its own, and the seconds at
    stake over the whole run."""
    ranked = sorted((c for c in op.candidates if math.isfinite(c.cost_s)),
                    key=lambda c: c.cost_s)
    if len(ranked) < 2:
        return (ranked[0] if ranked else None), [], 0.0
    best = ranked[0]
    close = [c for c in ranked[1:]
             if c.low_s is not None and best.high_s is not None and c.low_s < best.high_s
             and op.site.trips * c.low_s + c.compile_s < best.cost_s + _margin(op, best)]
    if not close:
        return best, [], 0.0
    lowest = min(c.low_s for c in close if c.low_s is not None)
    assert best.predicted_s is not None  # contenders exist only beside a predicted best
    stake = op.site.trips * max(best.predicted_s - lowest, 0.0)
    return best, close, stake


def _margin(op: OpPlan, best: Candidate) -> float:
    """How far above the best's cost a contender's optimistic cost may lie: the best's own
    uncertainty over all its executions."""
    return op.site.trips * ((best.high_s or 0.0) - (best.predicted_s or 0.0))


def _estimated_cost(candidate: Candidate) -> float:
    per_call = candidate.predicted_s or 0.0
    return candidate.compile_s + max((REPEATS + 1) * per_call, MIN_SECONDS + per_call)


def measure_close_candidates(ops: list[OpPlan], mode: str) -> tuple[list[Record], float]:
    """Measures the close candidates of the ops worth it; returns their records (with what
    was predicted for each) and the seconds it spent."""
    if mode == "never":
        return [], 0.0
    program_s = sum(min((c.cost_s for c in op.candidates), default=0.0) for op in ops
                    if any(math.isfinite(c.cost_s) for c in op.candidates))
    budget = math.inf if mode == "always" else BUDGET_SHARE * program_s
    worth = []
    for op in ops:
        best, close, stake = contenders(op)
        if best is not None and close and (mode == "always" or stake >= STAKE_S):
            worth.append((stake, op, [best, *close]))
    worth.sort(key=lambda w: -w[0])
    taken: list[Record] = []
    began = time.perf_counter()
    for _, op, candidates in worth:
        todo = [c for c in candidates if c.basis == "predicted"]
        if not todo:
            continue
        cost = sum(_estimated_cost(c) for c in todo)
        if time.perf_counter() - began + cost > budget:
            continue
        for candidate in todo:
            measured = _measure(op, candidate)
            if measured is None or measured.seconds is None:
                continue
            seconds = measured.seconds
            taken.append(replace(measured, predicted_s=candidate.predicted_s,
                                 base_s=candidate.base_s))
            candidate.compile_s = 0.0  # built in this process: the run reuses the build
            candidate.build = "built"
            set_measured(op, candidate, seconds, "measured")
    return taken, time.perf_counter() - began


def _measure(op: OpPlan, candidate: Candidate) -> Record | None:
    """The candidate's record on the op's shapes, or None if it failed."""
    from annc.hardware.execution.builds import kernel_job
    from annc.hardware.execution.foreground import build_now
    from annc.hardware.measure.timing import measure
    from annc.hardware.variants import get_variant

    variant = get_variant(op.site.kernel, candidate.variant, candidate.device)
    dtype = dtypes.to_numpy(op.site.dtype)
    events.count("measured")
    try:
        build_now(kernel_job(variant, op.site.shapes, dtype))  # a search in a child process
        return measure(variant, op.site.shapes, dtype, source="measure", settings=SETTINGS)
    except Exception:  # a failing variant keeps its prediction; the run reports it if chosen
        return None
