"""Learning from every use: keep what runs, tunes and selection measured, and adapt.

After `annc run`, `annc tune` and a compile that measured close candidates,
what was measured is
1. written to the measurement store as records of their source (one transaction: all
   or nothing, so Ctrl-C or a crash never leaves half of it);
2. turned into residuals against the trained models and added to this
   machine's corrections (`predictor.adaptation`): the next compile predicts
   with them — an incremental, closed-form update, no training;
3. for tune and selection's measurements (a candidate alone on exact shapes),
   kept as wisdom, so the next compile of those shapes decides without measuring;
4. for a run, compared with what was predicted: when several ops disagree beyond
   the noise, the models are marked stale (and unmarked when a later run agrees).

A run's op counts for learning only where its time is steady and above the
per-op dispatch overhead: at least `MIN_EXECUTIONS` executions (the first,
which pays for first-touch memory, is left out) and at least `MIN_LEARN_S` per
execution. Recording is off with `--no-record` or `ANNC_NO_RECORD=1`; where
`$ANNC_HOME` cannot be written it is skipped without a word.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import replace

from annc.dsl import dtypes
from annc.dsl.errors import HomeError, StoreError
from annc.dsl.records import Combination, Query, Record
from annc.hardware import events
from annc.hardware.calibration.store import annc_version, now
from annc.hardware.devices.home import default_database, ensure_home
from annc.passes.candidates import OpPlan
from annc.passes.models import corrections_path, for_writing, wisdom_path
from annc.passes.select_variants import Plan
from annc.predictor.cost_model import CostModel

MIN_EXECUTIONS = 3
MIN_LEARN_S = 1e-4
"""Per-execution times below this are too close to the per-op dispatch overhead (docs/design.md,
"Measurements behind the code") to be the kernel's alone."""


def env_flag(name: str) -> bool:
    """Whether the environment variable is set to 1, true or yes."""
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def recording_enabled(no_record: bool = False) -> bool:
    """False with `--no-record` or `ANNC_NO_RECORD` set to 1, true or yes."""
    return not no_record and not env_flag("ANNC_NO_RECORD")


notes: list[str] = []
"""What the user should know about this process's recording (measurements not kept)."""


def steady_seconds(times: list[float]) -> float:
    """The median time per execution, the first left out where there are enough."""
    return statistics.median(times[1:] if len(times) >= MIN_EXECUTIONS else times)


def learnable(executions: int, seconds: float) -> bool:
    """Whether a run's op time is steady and large enough to learn from."""
    return executions >= MIN_EXECUTIONS and seconds >= MIN_LEARN_S


def _learnable(seen: Record) -> bool:
    """A candidate timed alone always; an op inside a run only when steady and large."""
    return seen.source != "run" or learnable(seen.repeats or 1, seen.measured_s)



def record(chosen: CostModel, seen: Iterable[Record], source: str, *,
           drift: bool = False, wisdom: bool = False) -> None:
    """Keeps the records (as of `source`), updates corrections (and staleness, wisdom);
    never raises for a home it cannot write."""
    seen = [replace(s, source=source) for s in seen
            if s.seconds is not None and s.seconds > 0 and math.isfinite(s.seconds)]
    if not seen:
        return
    try:
        home = ensure_home()
        with _locked(home):
            _store(chosen.machine, seen)
            _learn(chosen, seen, source, drift, wisdom)
    except (HomeError, OSError, StoreError) as error:
        _not_kept(len(seen), error)
        return
    events.count("recorded")


def _not_kept(count: int, error: Exception) -> None:
    """Says (once a process) that observations were dropped, and why."""
    why = str(error).partition(": error: ")[2] or str(error)
    note = (f"note: {count} measurement{'s' if count != 1 else ''} of this run "
            f"{'were' if count != 1 else 'was'} not kept ({why}); annc learns nothing from "
            "it (ANNC_NO_RECORD=1 turns recording off)")
    if not any(n.startswith(note[:40]) for n in notes):
        notes.append(note)


@contextlib.contextmanager
def _locked(home: os.PathLike[str]) -> Iterator[None]:
    """One writer of the corrections and wisdom files at a time."""
    with open(os.path.join(home, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _store(machine: str, seen: list[Record]) -> None:
    from annc.hardware.calibration.store import MeasurementStore

    version, taken = annc_version(), now()
    with MeasurementStore(default_database(), integrity_check=False) as store:
        store.add_all(
            replace(s, query=replace(s.query, dtype=dtypes.stored_name(s.dtype)),
                    when=taken, fingerprint=machine, annc_version=version)
            for s in seen)


def _learn(chosen: CostModel, seen: list[Record], source: str, drift: bool,
           wisdom: bool) -> None:
    """Teaches this machine's cost model, as its files are now (another process may have
    written them since this one loaded them), and saves what changed: corrections from
    the records planned with a prediction, drift, and wisdom."""
    cost = CostModel.load(chosen.trained, chosen.description, chosen.machine, chosen.base,
                          corrections_path(chosen.machine),
                          wisdom_path(chosen.machine) if wisdom else None,
                          notes=[])  # a file it cannot use was noted when it was loaded
    learnable = [s for s in seen if _learnable(s)]
    added = cost.update([s for s in learnable if s.base_s], source)
    changed = drift and cost.judge_drift(learnable)
    if added or changed:  # unchanged: the file (and kept plans) stay
        cost.save(corrections=for_writing(corrections_path(chosen.machine)))
    if wisdom:
        taken = now()
        for s in seen:
            cost.keep(s.combination, replace(s.query, dtype=dtypes.normalise(s.dtype)),
                      s.measured_s, source, taken)
        cost.save(wisdom=for_writing(wisdom_path(chosen.machine)))


# What each command saw -----------------------------------------------------------


def _seen(combination: Combination, op: OpPlan, seconds: float, source: str,
          predicted_s: float | None, base_s: float | None, executions: int = 1) -> Record:
    """The record of a candidate of a planned op (its complexity is not known here)."""
    site = op.site
    return Record(combination, Query(site.kernel, site.shapes, site.dtype, math.nan), seconds,
                  source, repeats=executions, predicted_s=predicted_s, base_s=base_s)


def record_measured(plan: Plan, chosen: CostModel) -> None:
    """What selection's `measure` step timed: observations, corrections and wisdom."""
    record(chosen, plan.measured, "measure", wisdom=True)


def run_observations(plan: Plan, records: list) -> list[Record]:
    """Each op of a run: its steady time per execution, and what was predicted for it."""
    by_index = {op.site.index: op for op in plan.ops}
    seen = []
    for r in records:
        op = by_index.get(r.index)
        if op is None or not r.times or op.site.kernel != r.kernel:
            continue
        candidate = next((c for c in op.candidates
                          if (c.variant, c.device) == (r.variant, r.device)), None)
        if candidate is None:
            continue
        seen.append(_seen(Combination(r.kernel, r.variant, r.device), op, steady_seconds(r.times),
                          "run", candidate.predicted_s, candidate.base_s, len(r.times)))
    return seen


def record_run(plan: Plan, records: list, chosen: CostModel) -> None:
    record(chosen, run_observations(plan, records), "run", drift=True)


def record_tune(report: dict, plan: Plan, chosen: CostModel) -> None:
    """Every candidate `annc tune` measured: observations, corrections and wisdom."""
    by_index = {op.site.index: op for op in plan.ops}
    seen = []
    for entry in report["ops"]:
        op = by_index.get(entry["index"])
        if op is None:
            continue
        candidates = {(c.variant, c.device): c for c in op.candidates}
        for c in entry["candidates"]:
            planned = candidates.get((c["variant"], c["device"]))
            if c["measured_s"] is None or planned is None:
                continue
            seen.append(_seen(Combination(op.site.kernel, c["variant"], c["device"]), op,
                              c["measured_s"], "tune", c["predicted_s"], planned.base_s))
    record(chosen, seen, "tune", wisdom=True)
