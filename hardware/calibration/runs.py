"""Calibration: measure the variant library on this machine and keep every row.

`Calibration.run(jobs)` takes jobs from the sampling plan one by one, skips
those already stored for this machine's fingerprint (so a second run resumes
where the first stopped, and two runs on one database share the work), sends
each to a `MeasureWorker` and writes its record — a time, or why there is
none — to the store the moment it arrives. It stops when the plan is done or
the budget is spent (an unfinished measurement at the budget is abandoned, so
the run returns within it).

The noise floor is how far a sample of every combination's test configurations,
measured again in two later passes, lands from its held-out rows: mean
|t_k − t_0| / t_0 over the passes, then over all configurations and per
combination (`repeat_error`). No model can be much more accurate than the
measurements it is scored against.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from annc.dsl.records import Record
from annc.hardware.calibration.sampling import Job, calibration_plan, noise_plan
from annc.hardware.calibration.store import MeasurementStore, annc_version, now
from annc.hardware.devices.allocator import available_bytes
from annc.hardware.devices.available import available_devices
from annc.hardware.measure.settings import TimingSettings
from annc.hardware.measure.worker import Interrupted, MeasureWorker, Request
from annc.hardware.variants import KERNELS, Shapes, Variant, all_variants, load_library

CALIBRATION_SETTINGS = TimingSettings()
"""Enough repeats for a stable median on a quiet machine, cheap enough for thousands
(`TimingSettings`' defaults)."""

DEFAULT_TIMEOUT_S = 60.0
"""A measurement (build included) that takes longer is recorded as `timeout`."""

MEMORY_SHARE = 0.5
"""The share of available memory a configuration's operands and workspace may use."""


def select_variants(kernels: Sequence[str] | None = None, devices: Sequence[str] | None = None,
                    names: Sequence[str] | None = None) -> list[Variant]:
    """The library's variants (plugins included) of these kernels on these devices (all
    available when None)."""
    load_library()
    devices = list(available_devices()) if devices is None else list(devices)
    return [v for v in all_variants()
            if (kernels is None or v.kernel in kernels) and v.device in devices
            and (names is None or v.name in names)]


def sort_by_kernel(variants: Iterable[Variant]) -> list[Variant]:
    return sorted(variants, key=lambda v: (KERNELS.index(v.kernel), v.device, v.name))


def full_plan(variants: Sequence[Variant]) -> list[Job]:
    return calibration_plan(sort_by_kernel(variants), int(available_bytes() * MEMORY_SHARE))


def noise_passes(variants: Sequence[Variant]) -> list[Job]:
    first, second = noise_plan(sort_by_kernel(variants), int(available_bytes() * MEMORY_SHARE))
    return first + second


def kernel_jobs(variants: Sequence[Variant], noise: bool, budgeted: bool) -> list[Job]:
    """The jobs of a kernel calibration: the plan, and with `noise` the two noise passes.

    The noise passes follow the plan, unless a budget may stop the run: then they come
    first, so that a run the budget stops still has a noise floor for every combination."""
    jobs = full_plan(variants)
    if not noise:
        return jobs
    repeats = noise_passes(variants)
    return [*repeats, *jobs] if budgeted else [*jobs, *repeats]


@dataclass(frozen=True)
class NoiseFloor:
    mape: float | None
    """The mean relative difference over all repeated configurations (`noise_floor`);
    None without any."""
    pairs: int
    by_combination: dict[tuple[str, str, str], float] = field(default_factory=dict)
    """The same mean over each kernel–variant–device combination's own configurations."""

    @property
    def median_combination(self) -> float | None:
        """The median over combinations of their own noise floor."""
        values = list(self.by_combination.values())
        return statistics.median(values) if values else None


def repeat_error(times: dict[int, float]) -> float | None:
    """How far one configuration's re-measurements are from its held-out row.

    `times` maps the pass (0: the test row, measured among the training rows; 1, 2:
    the noise passes) to its median. Where the test row was measured, the floor is the
    mean of |t_k − t_0| / t_0 over the noise passes: what a model that knew the true
    time still shows against a held-out row measured at another moment of the run
    and with another build. The two noise passes run back to back, a few seconds apart
    in a short run, so their difference alone is only that minute's noise (1.1%
    against 12.3% in a 10-minute run of the auto-scheduled kernels, 21.0% against 20.0%
    over the 28-minute reference); it is the floor only where no test row was taken
    (a budget stopped the run first)."""
    repeats = [times[k] for k in (1, 2) if k in times]
    if 0 in times and repeats:
        return statistics.fmean(abs(t - times[0]) / times[0] for t in repeats)
    if len(repeats) == 2:
        return abs(repeats[1] - repeats[0]) / repeats[0]
    return None


def noise_floor(records: Iterable[Record]) -> NoiseFloor:
    """The noise floor of the configurations the noise passes repeated, per combination
    and over all (`repeat_error`)."""
    Key = tuple[str, str, str, str, str, Shapes]
    times: dict[Key, dict[int, float]] = defaultdict(dict)
    repeated: set[Key] = set()
    for m in records:
        if m.status != "ok" or not m.seconds or m.split not in ("test", "noise"):
            continue
        key = (m.fingerprint, m.kernel, m.variant, m.device, m.dtype, m.shapes)
        times[key][m.noise_pass] = m.seconds
        if m.split == "noise":
            repeated.add(key)
    errors: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for key in sorted(repeated):
        error = repeat_error(times[key])
        if error is not None:
            errors[(key[1], key[2], key[3])].append(error)
    every = [e for values in errors.values() for e in values]
    return NoiseFloor(statistics.fmean(every) if every else None, len(every),
                      {combo: statistics.fmean(values)
                       for combo, values in sorted(errors.items())})


ProgressCallback = Callable[[Job | None, int, int], None]
"""Called before each measurement with the job, how many are done, and the total;
once more with None when the run stops."""


class Calibration:
    """Runs jobs into a store; `taken` counts this run's rows by status."""

    def __init__(self, store: MeasurementStore, fingerprint: str, *,
                 budget_s: float | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 settings: TimingSettings = CALIBRATION_SETTINGS,
                 progress: ProgressCallback | None = None) -> None:
        self.store = store
        self.fingerprint = fingerprint
        self.budget_s = budget_s
        self.timeout_s = timeout_s
        self.settings = settings
        self.progress = progress
        self.taken: Counter[str] = Counter()
        self.skipped = 0
        self.remaining = 0
        self.stopped = "complete"
        self._version = annc_version()

    def pending(self, jobs: Sequence[Job]) -> list[Job]:
        """The jobs whose configuration is not stored yet for this fingerprint."""
        stored = self.store.calibration_keys(self.fingerprint)
        return [job for job in jobs if job.key not in stored]

    def run(self, jobs: Sequence[Job]) -> str:
        """Measures every pending job; returns `complete` or `budget`.

        A KeyboardInterrupt propagates after the worker is stopped; every row
        taken before it is already committed.
        """
        start = time.monotonic()
        deadline = None if self.budget_s is None else start + self.budget_s
        todo = self.pending(jobs)
        self.skipped = len(jobs) - len(todo)
        self.remaining = len(todo)
        self.stopped = "complete"
        try:
            with MeasureWorker() as worker:
                for done, job in enumerate(todo):
                    if deadline is not None and time.monotonic() >= deadline:
                        self.stopped = "budget"
                        break
                    if self.store.has(self.fingerprint, job.key):  # another run took it
                        self.remaining -= 1
                        continue
                    if self.progress is not None:
                        self.progress(job, done, len(todo))
                    began = time.monotonic()
                    try:
                        measured = worker.measure(self.request(job), self.timeout_s, deadline)
                    except Interrupted:
                        self.stopped = "budget"
                        break
                    self.store.add(self.record(job, measured, time.monotonic() - began))
                    self.taken[measured.status] += 1
                    self.remaining -= 1
            if self.progress is not None:
                self.progress(None, len(todo) - self.remaining, len(todo))
        finally:
            self.store.add_calibration_time(self.fingerprint, time.monotonic() - start)
        return self.stopped

    def request(self, job: Job) -> Request:
        v = job.variant
        return Request(v.kernel, v.name, v.device, job.config.shapes, job.config.dtype,
                       self.settings, region=getattr(job, "region", None))

    def record(self, job: Job, measured: Record, wall_s: float) -> Record:
        """The worker's record as calibration keeps it: its split, machine and time."""
        return replace(measured, split=job.split, noise_pass=job.noise_pass, wall_s=wall_s,
                       when=now(), fingerprint=self.fingerprint, annc_version=self._version)
