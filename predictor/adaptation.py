"""Adapting trained models to where annc runs: corrections of log time from few measurements.

A model trained on one day or machine is off on another by a factor that differs
per combination (the host behind one fingerprint changes from day to day).
Adaptation keeps the trained network — the prior — and learns a correction of
its output in log time from measurements taken here:

    log t = log f(x) + δ_device + φ_family + α_combo

Each term is a shrunk mean of what the coarser terms leave of the residuals
r = log measured − log f(x), pulled toward 0 by its pseudo-rows: a combination
with many measurements follows them, one with a single measurement moves a
little, one without any keeps the shift of the nearest level that has some.
Fitting is closed-form: no training, so the run path can afford it. By default
only the combination level is on (`DEVICE_PRIOR_ROWS` and `FAMILY_PRIOR_ROWS`
are infinite): measured on another day's data and on real workloads, pooling
combinations that drift differently did not help (docs/results.md has the figures),
and a combination without measurements then stays exactly at the prior.

Only the newest `WINDOW` residuals of each combination count, so corrections
follow a machine that drifts. Every prediction also carries an interval: the
combination's held-out error (its model's `mape`) as a log-normal spread,
replaced by the spread of the corrected residuals as they accumulate, widened by
`WORKLOAD_SPREAD` for shapes unlike the calibration plan's.

The corrections of a machine live in one JSON file with the fingerprint, the
model set they correct (its digest: corrections of other models are never
applied), when they were made and from what, and whether recent runs found the
models stale.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from annc.dsl.records import Combination
from annc.predictor.models import ModelSet
from annc.predictor.state_files import read_machine_file, write_atomically

SCHEMA_VERSION = 1
KIND = "annc model corrections"

DEVICE_PRIOR_ROWS = math.inf
"""Pseudo-rows at residual 0 behind a device's offset; infinite: no device level (chosen
by measurement, see docs/results.md: pooling combinations that drift differently hurt)."""
FAMILY_PRIOR_ROWS = math.inf
"""Pseudo-rows at the device's offset behind a family's (the variants of one backend on
one device, e.g. every `halide…` variant on the cpu); infinite: no family level."""
COMBO_PRIOR_ROWS = 2.0
"""Pseudo-rows at the family's (or device's) offset behind a combination's own offset: the
least, where the data show offsets far larger than their noise (another day)."""
MAX_COMBO_PRIOR_ROWS = 32.0
"""The most: where the models are already right, measurements move them little."""
WINDOW = 32
"""Residuals kept per combination, newest first: older ones no longer count."""
SPREAD_PRIOR_ROWS = 5.0
"""Pseudo-rows at the held-out spread behind a combination's residual spread."""
Z_90 = 1.645
"""Half-width of a central 90% interval of a normal, in standard deviations."""
WORKLOAD_SPREAD = 1.8
"""How much wider errors are on real workloads' shapes than on the calibration plan's
held-out rows: with the spreads as estimated, 75% of the example workloads' candidates
(538, measured by `annc tune` on 2026-11-25) fell inside their 90% intervals; scaled
by 1.8, 91%."""
MIN_SIGMA = 0.05
"""No interval is narrower than ±8% (the repeat noise of a measurement)."""
MAX_SIGMA = 1.0


class CorrectionFileError(Exception):
    """A corrections file that is corrupt, foreign, of another model set or of a future
    schema."""


def now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def digest(path: str | os.PathLike[str]) -> str:
    """A short SHA-256 of a model file: which model set corrections belong to."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def sigma_from_mape(mape_percent: float | None) -> float:
    """A log-normal spread whose mean absolute percentage error is about `mape_percent`.

    For small errors |e^r − 1| ≈ |r|, and E|r| = σ·√(2/π) for a normal r."""
    if mape_percent is None or not math.isfinite(mape_percent):
        return 0.3
    return float(np.clip(math.log1p(mape_percent / 100) * math.sqrt(math.pi / 2),
                         MIN_SIGMA, MAX_SIGMA))


@dataclass(frozen=True)
class Residual:
    """One measurement against the prior: log measured − log predicted by the base model."""

    combo: Combination
    log_ratio: float
    source: str
    """`quick`, `run`, `tune` or `measure`."""


@dataclass(frozen=True)
class Fitted:
    """The correction of one combination, in log time, and its spread."""

    offset: float
    sigma: float
    rows: int


@dataclass
class Corrections:
    """This machine's corrections of one model set: the residuals, fitted on demand."""

    fingerprint: str
    base: str
    """Digest of the model file these corrections apply to."""
    residuals: dict[Combination, list[tuple[float, str]]] = field(default_factory=dict)
    """Per combination, (log ratio, source), oldest first, at most WINDOW."""
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    history: list[dict[str, Any]] = field(default_factory=list)
    """One entry per update: when, from what, how many rows."""
    stale: dict[str, Any] | None = None
    """Set when recent runs disagreed with the predictions beyond the noise."""
    source: str = "<memory>"
    device_prior_rows: float = DEVICE_PRIOR_ROWS
    family_prior_rows: float = FAMILY_PRIOR_ROWS
    combo_prior_rows: float = COMBO_PRIOR_ROWS
    """How strongly each level is shrunk (math.inf: not at all used)."""
    empirical: bool = True
    """Whether the combination level's pseudo-rows are estimated from the residuals
    (`empirical_prior_rows`, at least `combo_prior_rows`) rather than fixed."""
    _fitted: tuple[dict[tuple[str, ...], float], dict[Combination, Fitted]] | None = field(
        default=None, repr=False)

    # Learning -------------------------------------------------------------------

    def add(self, residuals: Iterable[Residual], source: str) -> int:
        """Adds residuals (newest last); returns how many were added."""
        added = 0
        for r in residuals:
            if not math.isfinite(r.log_ratio):
                continue
            kept = self.residuals.setdefault(r.combo, [])
            kept.append((float(r.log_ratio), r.source))
            del kept[:-WINDOW]
            added += 1
        if added:
            self.updated_at = now()
            self.history.append({"at": self.updated_at, "source": source, "rows": added})
            del self.history[:-50]
            self._fitted = None
        return added

    @property
    def rows(self) -> int:
        return sum(len(v) for v in self.residuals.values())

    def fit(
        self, models: ModelSet | None = None
    ) -> tuple[dict[tuple[str, ...], float], dict[Combination, Fitted]]:
        """Offsets of every level (device, then family) and per-combination corrections
        (cached until the next add).

        `models` gives each combination's held-out error, the prior of its spread."""
        if self._fitted is not None:
            return self._fitted
        pooled: dict[tuple[str, ...], list[float]] = defaultdict(list)
        for combo, values in self.residuals.items():
            for level in _levels(combo)[:-1]:
                pooled[level] += [r for r, _ in values]
        offsets: dict[tuple[str, ...], float] = {}
        for level in sorted(pooled, key=len):  # devices first, then families
            parent = offsets.get(level[:-1], 0.0)
            rows = np.array(pooled[level]) - parent
            strength = (self.device_prior_rows if len(level) == 1
                        else self.family_prior_rows)
            offsets[level] = parent + float(rows.sum()) / (len(rows) + strength)
        fitted = {}
        strength = self.combo_prior_rows
        if self.empirical:
            strength = empirical_prior_rows(
                [np.array([r for r, _ in values]) - offsets[_levels(combo)[-2]]
                 for combo, values in self.residuals.items()], strength)
        for combo, values in self.residuals.items():
            parent = offsets[_levels(combo)[-2]]
            rows = np.array([r for r, _ in values])
            offset = parent + float((rows - parent).sum()) / (len(rows) + strength)
            prior = prior_sigma(models, combo)
            variance = (float(np.sum((rows - offset) ** 2)) + SPREAD_PRIOR_ROWS * prior**2) / (
                len(rows) + SPREAD_PRIOR_ROWS)
            fitted[combo] = Fitted(offset, float(np.clip(math.sqrt(variance), MIN_SIGMA,
                                                         MAX_SIGMA)), len(values))
        self._fitted = (offsets, fitted)
        return self._fitted

    def correction(self, combo: Combination, models: ModelSet | None = None) -> tuple[float, float]:
        """(offset in log time, spread σ) for a combination: its own, else that of the
        nearest level with measurements, else none."""
        offsets, fitted = self.fit(models)
        if combo in fitted:
            return fitted[combo].offset, fitted[combo].sigma
        for level in reversed(_levels(combo)[:-1]):
            if level in offsets:
                return offsets[level], prior_sigma(models, combo)
        return 0.0, prior_sigma(models, combo)

    # The file -------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "kind": KIND, "fingerprint": self.fingerprint,
            "base": self.base, "created_at": self.created_at, "updated_at": self.updated_at,
            "history": self.history, "stale": self.stale,
            "residuals": [{"kernel": c[0], "variant": c[1], "device": c[2],
                           "values": [[round(r, 6), s] for r, s in values]}
                          for c, values in sorted(self.residuals.items())],
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the file atomically: a crash never leaves half of it."""
        write_atomically(path, json.dumps(self.to_json(), separators=(",", ":")))

    @staticmethod
    def load(path: str | os.PathLike[str], fingerprint: str, base: str) -> Corrections:
        """Reads and validates a corrections file of this machine and model set."""
        where = str(path)
        data = read_machine_file(path, KIND, SCHEMA_VERSION, fingerprint, "corrections",
                                 CorrectionFileError)
        if data.get("base") != base:
            raise CorrectionFileError(f"{where}: corrections of another model set")
        try:
            residuals: dict[Combination, list[tuple[float, str]]] = {}
            for entry in data["residuals"]:
                combo = Combination(str(entry["kernel"]), str(entry["variant"]),
                                    str(entry["device"]))
                values = [(float(r), str(s)) for r, s in entry["values"]][-WINDOW:]
                if not all(math.isfinite(r) for r, _ in values):
                    raise ValueError("a residual is not finite")
                residuals[combo] = values
            stale = data.get("stale")
            if stale is not None and not isinstance(stale, dict):
                raise ValueError("stale is neither null nor an object")
            history = [dict(h) for h in data.get("history", [])]
            return Corrections(fingerprint, base, residuals, str(data["created_at"]),
                               str(data["updated_at"]), history, stale, where)
        except (KeyError, TypeError, ValueError) as error:
            raise CorrectionFileError(f"{where}: a corrections entry is malformed "
                                      f"({error})") from None


def empirical_prior_rows(groups: Sequence[np.ndarray], least: float) -> float:
    """Pseudo-rows σ²/τ² for shrinking each group's mean toward 0 (empirical Bayes, by
    moments): σ² is the spread of residuals within a combination, pooled; τ² the mean
    square of the true offsets, estimated as the mean square of the combinations' mean
    residuals less their sampling noise. Offsets much larger than the noise (models
    from another day) give few pseudo-rows, `least` at minimum; offsets within the noise
    (models that are already right) give many, `MAX_COMBO_PRIOR_ROWS` at most. With
    fewer than 3 combinations of 2 or more residuals there is nothing to estimate from,
    and it is `least`."""
    usable = [g for g in groups if len(g) >= 2]
    if len(usable) < 3:
        return least
    within = sum(float(((g - g.mean()) ** 2).sum()) for g in usable) / sum(
        len(g) - 1 for g in usable)
    between = float(np.mean([g.mean() ** 2 - within / len(g) for g in usable]))
    if between <= within / MAX_COMBO_PRIOR_ROWS:
        return MAX_COMBO_PRIOR_ROWS
    return float(np.clip(within / between, least, MAX_COMBO_PRIOR_ROWS))


def family(variant: str) -> str:
    """A variant's backend family, from its name: `halide.auto.li2018` -> `halide`."""
    return variant.split(".")[0]


def _levels(combo: Combination) -> tuple[tuple[str, ...], ...]:
    """The levels a combination's residuals pool into, coarsest first, itself last."""
    _, variant, device = combo
    return ((device,), (device, family(variant)), combo)


def prior_sigma(models: ModelSet | None, combo: Combination) -> float:
    model = models.models.get(combo) if models is not None else None
    return sigma_from_mape(model.summary.get("mape") if model is not None else None)

