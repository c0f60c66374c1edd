"""`calibrate --quick`: measure a few well-chosen configurations and adapt the models.

The plan: every kernel's realistic shapes (`hardware.calibration.sampling.QUICK_SHAPES`)
for every variant, breadth first — one configuration of every combination
before a second of any, so that a budget cut still adapts every combination a
little. A combination's first configurations are those where it decides
choices (the current models predict it within `CONTENDER_RATIO` of the best
variant for that shape), and in each round those jobs come first, cheapest
first. A job whose estimated cost (its build plus a few calls, from the
models) exceeds `MAX_JOB_S` is left out. Each measurement runs in the worker
process, as in a full calibration, and is committed to the store's
`observations` the moment it arrives.

Adaptation then rebuilds this machine's corrections from every usable
observation of this machine (quick calibrations, tunes, measured candidates and
steady run times; the newest `WINDOW` per combination) against the current
trained models: transfer, not retraining — see `predictor.adaptation`.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date

from annc.dsl import dtypes
from annc.dsl.records import Combination, Query, Record
from annc.hardware.calibration.runs import CALIBRATION_SETTINGS
from annc.hardware.calibration.sampling import Config, quick_configurations, usable
from annc.hardware.calibration.store import MeasurementStore, annc_version, now
from annc.hardware.devices.allocator import available_bytes
from annc.hardware.measure.worker import Interrupted, MeasureWorker, Request
from annc.hardware.variants import Variant, get_variant
from annc.passes.models import corrections_path, for_writing
from annc.predictor.adaptation import WINDOW, Corrections
from annc.predictor.cost_model import CostModel
from annc.recording import learnable

QUICK_SETTINGS = replace(CALIBRATION_SETTINGS, max_seconds=0.5)
"""The calibration's own repeats and warm-up, so that a residual measures how the machine
changed, not a change of protocol; fewer seconds for the slowest calls."""
DEFAULT_BUDGET_S = 60.0
CONTENDER_RATIO = 2.0
MAX_JOB_S = 3.0


@dataclass(frozen=True)
class QuickJob:
    variant: Variant
    config: Config
    estimate_s: float
    """Expected seconds: the build plus warm-up and timed calls, from the models."""
    contender: bool

    @property
    def key(self) -> tuple[str, str, str, str, tuple]:
        v = self.variant
        return (v.kernel, v.name, v.device, self.config.dtype, self.config.shapes)


def configuration(variant: Variant, config: Config) -> Query:
    """The model's query for a variant at a configuration, traits included (an
    auto-scheduler's decisions, from the build cache where it was built)."""
    return variant.query(config.shapes, dtypes.normalise(config.dtype))


def quick_plan(chosen: CostModel, variants: Sequence[Variant],
               kernels: Sequence[str]) -> list[QuickJob]:
    """Breadth first: one configuration of every combination, then a second, and so on.

    A combination's own order puts the shapes where it is a contender first (in the
    order of `QUICK_SHAPES`), then the others, cheapest first; within a round, jobs
    that are contenders come first, cheapest first."""
    memory = int(available_bytes() * 0.5)
    pairs = [(v, c) for kernel in kernels for c in quick_configurations(kernel)
             for v in variants if v.kernel == kernel and usable(v, c, memory)]
    predicted = chosen.predict([(v.key, configuration(v, c)) for v, c in pairs])
    by_config: dict[Config, list[tuple[Variant, float]]] = defaultdict(list)
    for (variant, config), p in zip(pairs, predicted, strict=True):
        if math.isfinite(p.seconds):
            by_config[config].append((variant, p.seconds))
    per_combination: dict[tuple, list[QuickJob]] = defaultdict(list)
    for config, options in by_config.items():
        best = min(seconds for _, seconds in options)
        for variant, seconds in options:
            estimate = chosen.compile_seconds(variant.key) + max(
                5 * seconds, QUICK_SETTINGS.min_seconds + 2 * seconds) + 0.01
            if estimate <= MAX_JOB_S:
                per_combination[variant.key].append(
                    QuickJob(variant, config, estimate, seconds <= CONTENDER_RATIO * best))
    rounds: list[list[QuickJob]] = []
    for jobs in per_combination.values():
        ordered = [j for j in jobs if j.contender] + sorted(
            (j for j in jobs if not j.contender), key=lambda j: j.estimate_s)
        for i, job in enumerate(ordered):
            if i == len(rounds):
                rounds.append([])
            rounds[i].append(job)
    return [job for jobs in rounds
            for job in sorted(jobs, key=lambda j: (not j.contender, j.estimate_s))]


@dataclass
class QuickRun:
    taken: int = 0
    failed: int = 0
    skipped: int = 0
    remaining: int = 0
    stopped: str = "complete"


def measured_today(store: MeasurementStore, machine: str) -> set[tuple]:
    """The quick jobs this machine already measured today: a rerun continues after them."""
    today = date.today().isoformat()
    return {(o.kernel, o.variant, o.device, o.dtype, o.shapes)
            for o in store.observations(machine, ["quick"]) if o.when[:10] == today}


def run_quick(store: MeasurementStore, chosen: CostModel, jobs: Sequence[QuickJob],
              deadline: float | None, timeout_s: float,
              progress: Callable[[QuickJob | None, int, int], None] | None = None) -> QuickRun:
    """Measures the jobs not yet measured today, each committed as it arrives, until the
    deadline (a `time.monotonic()` value). Ctrl-C propagates; what was taken is kept."""
    done_before = measured_today(store, chosen.machine)
    todo = [j for j in jobs if j.key not in done_before]
    result = QuickRun(skipped=len(jobs) - len(todo), remaining=len(todo))
    version = annc_version()
    with MeasureWorker() as worker:
        for i, job in enumerate(todo):
            if deadline is not None and time.monotonic() + min(job.estimate_s, 1.0) >= deadline:
                result.stopped = "budget"
                break
            if progress is not None:
                progress(job, i, len(todo))
            v = job.variant
            try:
                measured = worker.measure(Request(v.kernel, v.name, v.device, job.config.shapes,
                                                  job.config.dtype, QUICK_SETTINGS,
                                                  source="quick"), timeout_s, deadline)
            except Interrupted:
                result.stopped = "budget"
                break
            result.remaining -= 1
            if measured.status != "ok" or not measured.seconds:
                result.failed += 1
                continue
            store.add(replace(measured, when=now(), fingerprint=chosen.machine,
                              annc_version=version))
            result.taken += 1
    if progress is not None:
        progress(None, len(todo) - result.remaining, len(todo))
    return result


def usable_observation(o: Record) -> bool:
    """Run times count only when steady and above the per-op dispatch overhead."""
    return o.source != "run" or learnable(o.repeats or 1, o.seconds or 0.0)


def adapt(store: MeasurementStore, chosen: CostModel) -> Corrections:
    """Rebuilds this machine's corrections from its observations and saves them."""
    newest: dict[Combination, list[Record]] = defaultdict(list)
    for o in store.observations(chosen.machine):
        if not usable_observation(o) or o.seconds is None:
            continue
        try:
            variant = get_variant(o.kernel, o.variant, o.device)
        except LookupError:
            continue
        config = Config(o.kernel, o.shapes, o.dtype)
        newest[variant.key].append(replace(  # against the networks in use now
            o, combination=variant.key, query=configuration(variant, config), base_s=None))
    fresh = CostModel(chosen.trained, machine=chosen.machine, base=chosen.base)
    fresh.update([row for _, kept in sorted(newest.items()) for row in kept[-WINDOW:]],
                 "quick")
    corrections = fresh.corrections
    assert corrections is not None  # made by `update`
    corrections.history = [{"at": now(), "source": "quick", "rows": corrections.rows}]
    fresh.save(corrections=for_writing(corrections_path(chosen.machine)))
    return corrections
