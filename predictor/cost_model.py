"""The cost model: what every floor above asks for a candidate's time, and teaches.

One object owns everything that goes into a predicted time on this machine: the
trained networks (`predictor.models.ModelSet`, the shipped or `annc train`ed file),
this machine's corrections of them (`predictor.adaptation`), its wisdom (times measured
on exact shapes, `predictor.wisdom`), the plan step's overhead, the back ends' starts,
the copy links and every combination's build time. Its verbs, after TVM
MetaSchedule's `CostModel`:

- `predict`: (combination, query) pairs → seconds with a 90% interval, in one batch;
- `update`: measured records → corrections (`judge_drift`: whether the networks are
  stale); `keep`: a time measured on exact shapes → wisdom;
- `load` / `save`: this machine's state files beside a trained set.

Selection, region and sharding choice, measuring, recording, adapting, training,
evaluation and the benchmarks ask it and nothing under it; a query is made by the variant
(`Variant.query`) or the region summary (`Summary.query`), never here.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from annc.dsl.records import Combination, Query, Record
from annc.predictor.adaptation import (
    MAX_SIGMA,
    WORKLOAD_SPREAD,
    Z_90,
    CorrectionFileError,
    Corrections,
    Residual,
    now,
    prior_sigma,
)
from annc.predictor.features import trait_names
from annc.predictor.models import ModelSet
from annc.predictor.wisdom import Wisdom, WisdomFileError

DRIFT = 0.25
"""A median disagreement beyond this (three times tune's 8% repeat noise) is drift."""
MIN_DRIFT_OPS = 3
"""Fewer records than this say nothing about drift."""

MEASURED_SIGMA = 0.08
"""The interval of a measured time: its repeat-to-repeat noise (about 8%)."""

Asked = tuple[Combination, Query]
"""One question to the cost model: a combination, and the query it is asked at."""

@dataclass(frozen=True)
class Prediction:
    """Predicted seconds of one execution, with a 90% interval; `base_s` is the trained
    model's own prediction before any correction. NaN without a model."""

    seconds: float
    low_s: float
    high_s: float
    base_s: float
    measured_s: float | None = None
    """The time measured before on these exact shapes (wisdom), where there is one."""


def measured_interval(seconds: float) -> tuple[float, float]:
    """The 90% interval of a measured time (`MEASURED_SIGMA`)."""
    return seconds * math.exp(-MEASURED_SIGMA), seconds * math.exp(MEASURED_SIGMA)


@dataclass
class CostModel:
    """This machine's cost model: trained networks, corrections and wisdom (see module)."""

    trained: ModelSet
    description: str = ""
    """Which set this is, how old, whether calibrated or adapted here, for the user."""
    corrections: Corrections | None = None
    wisdom: Wisdom | None = None
    machine: str = ""
    """This machine's fingerprint id."""
    base: str = ""
    """Digest of the trained model file: what corrections made now apply to."""
    notes: list[str] = field(default_factory=list)
    """What the user should know about these models (stale, another machine's, ...)."""

    # predict -----------------------------------------------------------------------

    def predict(self, queries: Sequence[Asked]) -> list[Prediction]:
        """Every query's time, corrected for this machine, with its 90% interval and,
        where wisdom holds one, the time measured before on its exact shapes
        (`Prediction.measured_s`); in one batched call of the networks. NaN without a
        model."""
        base = self.trained.predict(queries)
        predictions = []
        for (combo, query), seconds in zip(queries, base, strict=True):
            if not math.isfinite(seconds):
                predictions.append(Prediction(math.nan, math.nan, math.nan, math.nan))
                continue
            if self.corrections is not None:
                offset, sigma = self.corrections.correction(combo, self.trained)
            else:
                offset, sigma = 0.0, prior_sigma(self.trained, combo)
            corrected = seconds * math.exp(offset)
            half = math.exp(Z_90 * min(WORKLOAD_SPREAD * sigma, MAX_SIGMA))
            known = (self.wisdom.seconds(combo, query.dtype, query.shapes)
                     if self.wisdom is not None else None)
            predictions.append(Prediction(corrected, corrected / half, corrected * half,
                                          float(seconds), known))
        return predictions

    def predict_trained(self, queries: Sequence[Asked]) -> np.ndarray:
        """The trained networks' own seconds, before any correction (NaN without a model)."""
        return self.trained.predict(queries)

    def knows(self, combo: Combination) -> bool:
        """Whether a trained network predicts this combination."""
        return combo in self.trained.models

    def takes_traits(self, combo: Combination) -> bool:
        """Whether the combination's network reads traits (an auto-scheduler's decisions):
        only then is a query worth the traits' cost (making a schedule)."""
        model = self.trained.models.get(combo)
        return model is not None and bool(trait_names(model.kernel, model.features))

    def held_out_mape(self, combo: Combination) -> float | None:
        model = self.trained.models.get(combo)
        return None if model is None else model.summary.get("mape")

    # What a plan adds to a kernel's time --------------------------------------------

    @property
    def step_overhead_s(self) -> float:
        """Seconds a running plan spends on each op or compiled region beyond its kernel
        (`ModelSet.step_overhead_s`)."""
        return self.trained.step_overhead_s

    @property
    def backend_start_s(self) -> dict[str, float]:
        """Seconds a process spends starting each back end it starts only when first used."""
        return self.trained.backend_start_s

    def transfer_seconds(self, n_bytes: int, source: str, target: str) -> float:
        """Seconds to copy `n_bytes` between two devices (the calibrated copy links)."""
        return self.trained.transfers.seconds(n_bytes, source, target)

    def compile_seconds(self, combo: Combination) -> float:
        """The combination's median build time as calibrated; 0 without a model."""
        model = self.trained.models.get(combo)
        return float(model.summary.get("compile_s") or 0.0) if model else 0.0

    def build_cost(self, combo: Combination, built: bool, needs_build: bool,
                   cached: Callable[[], float | None]) -> tuple[float, str]:
        """What building a candidate costs in this process, and why (`Candidate.build`):
        nothing where this process `built` it already; its calibrated build time where it
        needs no build worth the name (`none`) or must compile (`compile`); the seconds
        `cached` gives where a persistent cache holds it (`cached`; None where it does
        not: asked only when it matters, as it is a file system call)."""
        if built:
            return 0.0, "built"
        compile_s = self.compile_seconds(combo)
        if not needs_build:
            return compile_s, "none"
        load_s = cached()
        if load_s is not None:
            return load_s, "cached"
        return compile_s, "compile"

    # update ------------------------------------------------------------------------

    def update(self, records: Sequence[Record], source: str) -> int:
        """Learns from measured records (each with its seconds): the residual of each
        against the trained networks — the prediction it was planned with (`base_s`)
        where it carries one, else the networks' answer at its query now — joins this
        machine's corrections (made here where there were none), under the record's own
        source; `source` names the update in the corrections' history. Returns how many
        were added; records without a model are left out."""
        if self.corrections is None:
            self.corrections = Corrections(self.machine, self.base)
        asked = [(r.combination, r.query) for r in records if not r.base_s]
        predicted_now = iter(self.trained.predict(asked))
        residuals = []
        for r in records:
            base = r.base_s or float(next(predicted_now))
            if math.isfinite(base) and base > 0 and r.measured_s > 0:
                residuals.append(Residual(r.combination, math.log(r.measured_s / base),
                                          r.source))
        return self.corrections.add(residuals, source)

    def judge_drift(self, records: Sequence[Record]) -> bool:
        """Marks the trained networks stale (`Corrections.stale`) when at least
        `MIN_DRIFT_OPS` records disagree with what was predicted for them by a median
        beyond `DRIFT`; unmarks them when as many agree. Returns whether that changed."""
        errors = [abs(math.log(r.measured_s / r.predicted_s)) for r in records
                  if r.predicted_s]
        if len(errors) < MIN_DRIFT_OPS:
            return False
        if self.corrections is None:
            self.corrections = Corrections(self.machine, self.base)
        before = self.corrections.stale
        median = math.expm1(statistics.median(errors))
        self.corrections.stale = ({"at": now(), "median_error": round(median, 4),
                                   "ops": len(errors)} if median > DRIFT else None)
        return self.corrections.stale != before

    def keep(self, combo: Combination, query: Query, seconds: float, source: str,
             at: str) -> None:
        """Keeps a time measured on exact shapes as wisdom (made here where there was none)."""
        if self.wisdom is None:
            self.wisdom = Wisdom(self.machine)
        self.wisdom.add(combo, query.dtype, query.shapes, seconds, source, at)

    # load / save -------------------------------------------------------------------

    @staticmethod
    def load(trained: ModelSet, description: str, machine: str, base: str,
             corrections: str | os.PathLike[str] | None = None,
             wisdom: str | os.PathLike[str] | None = None,
             notes: list[str] | None = None) -> CostModel:
        """The cost model of a trained set on this machine, with the corrections and wisdom
        files where they exist. A file that is corrupt, of another machine or of other
        models is reported in `notes` and not used (the next write replaces it)."""
        notes = notes if notes is not None else []
        fitted = None
        if corrections is not None and os.path.exists(corrections):
            try:
                fitted = Corrections.load(corrections, machine, base)
            except CorrectionFileError as error:
                notes.append(f"note: {error}; not using it (`annc calibrate --quick` "
                             "replaces it)")
        known = None
        if wisdom is not None and os.path.exists(wisdom):
            try:
                known = Wisdom.load(wisdom, machine)
            except WisdomFileError as error:
                notes.append(f"note: {error}; not using it (the next measurement "
                             "replaces it)")
        return CostModel(trained, description, fitted, known, machine, base)

    def save(self, corrections: str | os.PathLike[str] | None = None,
             wisdom: str | os.PathLike[str] | None = None) -> None:
        """Writes this machine's state (each file atomically) where a path is given; the
        trained set is `annc train`'s to write (`ModelSet.save`)."""
        if corrections is not None and self.corrections is not None:
            self.corrections.save(corrections)
        if wisdom is not None and self.wisdom is not None:
            self.wisdom.save(wisdom)
