"""Choosing with the future in mind: what a build costs, what starts, and what a tie is.

A run never waits for a build it can run without. Where the best candidate of an op
or region needs a compile and another candidate needs none (numpy, or a build that
is done or kept), the run *starts* on the best of those and the compile runs beside
it, in a helper process, switching when it is ready (`hardware.execution.tiers`).
What was built is kept, so every later run of the program starts on it.

So a candidate's cost is its time over the run (trips × predicted time) plus what
its build costs *this run*, shared among the runs expected to use it (`runs`: this
one and as many again as this program has run on this machine before):

- built in this process, or needing no build worth the name (numpy): nothing;
- kept in a persistent cache: its load time;
- a compile beside the run: the cores it takes from the run while both go on, half
  of them on this two-core machine (`BESIDE_SHARE`) for at most as long as the run
  lasts without it (`horizon_s`): a build that outlasts the run finishes on its own;
- a compile the run must wait for (no candidate can run without one): all of it.

Candidates within `TIE` of the cheapest are ties, broken by a fixed rule — no build
first, then by name — so that two runs whose predictions moved by a few percent make
the same choice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from annc.passes.candidates import Candidate

TIE = 0.03
"""Candidates whose costs are within 3% of the cheapest's are ties: the run-to-run
repeat noise of `annc tune` on realistic workloads is a median 8% (docs/results.md), and
corrections move predictions by a few percent after every run."""
BESIDE_SHARE = 0.5
"""The share of the machine a build beside the run takes from it while both run: one
of two cores (the build is single-threaded; the run's BLAS or XLA uses both)."""
NO_BUILD_BACKENDS = frozenset({"numpy", "cupy"})
"""Back ends whose variants need no build worth the name (a Python function; CuPy
keeps its compiled kernels itself)."""


def needs_compile(candidate: Candidate) -> bool:
    """Whether the candidate needs a compile that is neither done nor kept."""
    return candidate.build == "compile"


def start_candidate(candidates: Iterable[Candidate], device: str) -> Candidate | None:
    """The best candidate on `device` that can run without a compile, by time over the
    run (what the run starts on where its choice needs a compile)."""
    ready = [c for c in candidates if c.device == device and not needs_compile(c)
             and not c.why_not and math.isfinite(c.cost_s)]
    return min(ready, key=lambda c: (run_seconds(c), c.variant), default=None)


def run_seconds(candidate: Candidate) -> float:
    """Its time over the run, its build left out."""
    return candidate.cost_s - candidate.charged_s


def charge_builds(candidates: list[Candidate], executions: int, runs: int,
                  horizon_s: float) -> None:
    """Sets each candidate's cost to its time over the run (`executions` × its predicted
    time) plus what its build costs this run (see the module), over `runs` expected
    runs; `horizon_s` is how long the run lasts without any compile."""
    runs = max(runs, 1)
    devices_ready = {c.device for c in candidates
                     if not needs_compile(c) and not c.why_not and math.isfinite(c.cost_s)}
    for c in candidates:
        if not math.isfinite(c.cost_s) or c.predicted_s is None:
            continue
        run_s = executions * c.predicted_s
        if c.build in ("built", "none"):
            charged = 0.0
        elif c.build == "cached":
            charged = c.compile_s
        elif c.device in devices_ready:
            charged = BESIDE_SHARE * min(c.compile_s, max(horizon_s, 0.0)) / runs
            c.beside = True
        else:
            charged = c.compile_s / runs
        c.cost_s, c.charged_s = run_s + charged, charged


def ranked(candidates: Iterable[Candidate], prefer: str = "") -> list[Candidate]:
    """Candidates cheapest first, where ties (within `TIE` of the cheapest) go first in
    the fixed order: `prefer` (a variant named so), then those needing no compile, then
    by name."""
    finite = sorted((c for c in candidates if math.isfinite(c.cost_s)),
                    key=lambda c: (c.cost_s, c.variant))
    if not finite:
        return []
    tied = [c for c in finite if is_tie(c, finite[0])]
    rest = [c for c in finite if not is_tie(c, finite[0])]
    tied.sort(key=lambda c: (c.variant != prefer, needs_compile(c), c.variant))
    return tied + rest


def is_tie(candidate: Candidate, best: Candidate) -> bool:
    """Whether the candidate costs at most `TIE` more than `best` (the cheapest)."""
    return candidate.cost_s <= best.cost_s * (1 + TIE) if best.cost_s > 0 else (
        candidate.cost_s == best.cost_s)


HELPER_START_S = 0.25
"""Seconds from a run's first build beside it to its helper process being ready to
build: Python's start and annc's imports (`hardware.execution.build_worker`); 0.21–0.25 s
to answer a job kept already, on the reference machine (2026-12-07, 10 helpers)."""


@dataclass
class TierStep:
    """One op or region of the tier plan: what it starts on, what builds beside it, and
    from when that is expected to take over."""

    at: str
    """`#3` (a kernel op) or `region 1`."""
    start: str
    target: str
    device: str
    build_s: float
    ready_s: float
    """Expected seconds from the start of the run to the switch."""
    saved_s: float
    """Seconds the target saves over a whole run, against the start."""
    runs: int


def tier_plan(steps: list[tuple[str, Candidate, Candidate, float, str]], runs: int,
              backend_start_s: dict[str, float], delay_s: float,
              load_s: dict[str, float]) -> list[TierStep]:
    """The tier plan from (where, start, target, saving, the target's back end) in the
    order the run meets them: builds queue in one helper, started `delay_s` into the
    run, which starts each back end once; each is then loaded here (`load_s` by back
    end: JAX's includes its start here, where it is not started yet)."""
    plan = []
    built = delay_s + HELPER_START_S
    started: set[str] = set()
    for at, start, target, saved, backend in steps:
        if backend not in started:
            built += backend_start_s.get(backend, 0.0)
            started.add(backend)
        built += target.compile_s
        plan.append(TierStep(at, start.variant, target.variant, target.device,
                             target.compile_s, built + load_s.get(backend, 0.0), saved, runs))
    return plan



def waiting_is_sooner(start: Candidate, target: Candidate, wait_s: float,
                      ready_s: float) -> bool:
    """Whether the run ends sooner waiting `wait_s` for the target's build (its back end's
    start here and its compile) than starting on `start` and switching to the target
    once it is ready, `ready_s` from the start of the run: a long run that would spend
    most of itself on a slow start does better to wait for its build."""
    run_start, run_target = run_seconds(start), run_seconds(target)
    if run_start <= 0 or not math.isfinite(run_start) or not math.isfinite(run_target):
        return False
    beside = run_start if ready_s >= run_start else (
        ready_s + (1 - ready_s / run_start) * run_target)
    return wait_s + run_target < beside
