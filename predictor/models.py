"""A set of trained performance models, one per kernel–variant–device, and its JSON file.

The file is plain JSON: schema version, the machine's fingerprint, and per
combination its feature names, normalisation, weights, training summary and
held-out MAPE. Loading validates all of it and names the file in any error.
Prediction of many candidates is one vectorised numpy computation (no JAX: a
compile pays neither its import nor a trace).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annc.dsl.records import Combination, Query
from annc.predictor import loop_trips
from annc.predictor.features import Normalisation, feature_row
from annc.predictor.state_files import read_json, write_atomically
from annc.predictor.transfers import TransferModel

SCHEMA_VERSION = 1
MAX_FEATURES = 7


class ModelFileError(Exception):
    """A model file is missing, corrupt, of a future schema, or inconsistent."""



@dataclass(frozen=True)
class Model:
    kernel: str
    variant: str
    device: str
    features: tuple[str, ...]
    normalisation: Normalisation
    params: dict[str, np.ndarray]
    summary: dict[str, Any] = field(default_factory=dict)
    """train_n, test_n, mape (held-out), params (count), training seconds, baselines."""

    @property
    def combo(self) -> Combination:
        return Combination(self.kernel, self.variant, self.device)

    @property
    def parameter_count(self) -> int:
        return int(sum(np.size(v) for v in self.params.values()))

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel, "variant": self.variant, "device": self.device,
            "features": list(self.features),
            "normalisation": {
                "mean": list(self.normalisation.mean), "scale": list(self.normalisation.scale),
                "target_mean": self.normalisation.target_mean,
                "target_scale": self.normalisation.target_scale,
            },
            "weights": {k: np.asarray(v).tolist() for k, v in self.params.items()},
            "summary": self.summary,
        }


RATE_MARGIN = 2.0
"""How much faster than the fastest rate its training rows reached a configuration beyond
them may run: a larger shape can reach a higher rate (closer to the machine's peak, or
by another auto-schedule), but not several times higher."""


def rate_floor(model: Model, config: Query) -> float:
    """The least time a configuration larger than any the combination was trained on
    can take: its complexity at `RATE_MARGIN` times the fastest rate (complexity per
    second) its training rows reached in its dtype. 0 within the trained range, and
    where the model has no rates (older files) or the configuration no complexity.

    Beyond the sizes calibration drew, a network's saturating units flatten out: on a
    lent GPU machine's 16-core host, a 2000² product, 27 times the work of any trained
    on, came out at 4.9 ms, faster than any product was ever measured there (about 60
    ms measured). Beyond the range the floor keeps the time growing with the work;
    within it the network is trusted. The margin leaves alone the smaller misses,
    where a larger shape really runs faster (an auto-scheduler's new schedule): the
    floor is for the network's gross failures."""
    rate = model.summary.get("max_rate", {}).get(config.dtype)
    largest = model.summary.get("max_complexity", math.inf)
    if not rate or config.complexity <= largest:
        return 0.0
    return config.complexity / (RATE_MARGIN * rate)


def _positive(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and 0 < value < math.inf)


def _model_from_json(data: dict[str, Any], where: str) -> Model:
    try:
        features = tuple(str(f) for f in data["features"])
        n = data["normalisation"]
        normalisation = Normalisation(
            tuple(float(v) for v in n["mean"]), tuple(float(v) for v in n["scale"]),
            float(n["target_mean"]), float(n["target_scale"]),
        )
        params = {k: np.asarray(data["weights"][k], dtype=np.float64)
                  for k in ("w1", "b1", "w2", "b2", "prior") if k in data["weights"]}
        model = Model(str(data["kernel"]), str(data["variant"]), str(data["device"]),
                      features, normalisation, params, dict(data.get("summary", {})))
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{where}: a model entry is malformed ({error!r})") from None
    d = len(features)
    hidden = params["b1"].shape[0] if params["b1"].ndim == 1 else -1
    shapes_ok = (
        d <= MAX_FEATURES and len(normalisation.mean) == d and len(normalisation.scale) == d
        and params["w1"].shape == (d, hidden) and params["w2"].shape == (hidden,)
        and params["b2"].shape == () and params.get("prior", np.zeros(3)).shape == (3,)
    )
    if not shapes_ok:
        raise ModelFileError(f"{where}: model {model.combo} has inconsistent shapes")
    if not all(np.all(np.isfinite(v)) for v in params.values()):
        raise ModelFileError(f"{where}: model {model.combo} has non-finite weights")
    rates = model.summary.get("max_rate", {})
    largest = model.summary.get("max_complexity", 1.0)
    if not (isinstance(rates, dict) and all(map(_positive, rates.values()))
            and _positive(largest)):
        raise ModelFileError(f"{where}: model {model.combo} has a malformed max_rate or "
                             "max_complexity (positive numbers)")
    return model


@dataclass
class ModelSet:
    """Every model of one machine, keyed by combination."""

    fingerprint: dict[str, Any]
    models: dict[Combination, Model]
    transfers: TransferModel = field(default_factory=lambda: TransferModel({}))
    source: str = "<memory>"
    trained_at: str | None = None
    """When the models were trained (ISO 8601); None in files older than this field."""
    trained_on: str | None = None
    """What they were trained on, e.g. `reference data of machine 640a8c558274`."""
    step_overhead_s: float = 0.0
    """Seconds an op of a running plan spends beyond its kernel in its measured time
    (finding its operands, reading the clock), measured on this machine when the
    models were trained; 0 in files older than this field. Calibration times kernels
    alone, so selection adds it to every prediction of an op or compiled region."""
    backend_start_s: dict[str, float] = field(default_factory=dict)
    """Seconds a process spends starting a back end it starts only when first used (JAX
    on a machine without a GPU: `hardware.devices.backend_start`), measured on this
    machine when the models were trained; empty in files older than this field."""
    _stacked: tuple[Any, ...] | None = field(default=None, repr=False)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the set as JSON, atomically (a crash never leaves half a file)."""
        data = {
            "schema_version": SCHEMA_VERSION,
            "fingerprint": self.fingerprint,
            "trained_at": self.trained_at,
            "trained_on": self.trained_on,
            "transfers": self.transfers.to_json(),
            "step_overhead_s": self.step_overhead_s,
            "backend_start_s": self.backend_start_s,
            "models": [m.to_json() for m in sorted(self.models.values(),
                                                     key=lambda m: m.combo)],
        }
        write_atomically(path, json.dumps(data, indent=1))

    @staticmethod
    def load(path: str | os.PathLike[str]) -> ModelSet:
        where = str(path)
        data = read_json(path, "model", ModelFileError)
        if not isinstance(data, dict) or "schema_version" not in data:
            raise ModelFileError(f"{where}: not an annc model file (no schema_version)")
        version = data["schema_version"]
        if version != SCHEMA_VERSION:
            newer = isinstance(version, int) and version > SCHEMA_VERSION
            hint = "upgrade annc to read it" if newer else "retrain with `annc train`"
            raise ModelFileError(f"{where}: model schema {version!r}, this annc reads "
                                 f"{SCHEMA_VERSION}; {hint}")
        entries = data.get("models")
        if not isinstance(entries, list) or not isinstance(data.get("fingerprint"), dict):
            raise ModelFileError(f"{where}: not an annc model file (no models list)")
        models = [_model_from_json(entry, where) for entry in entries]
        try:
            transfers = TransferModel.from_json(data.get("transfers", {}))
        except (AttributeError, TypeError, ValueError) as error:
            raise ModelFileError(f"{where}: the transfer model is malformed ({error})") from None
        trained_at, trained_on = data.get("trained_at"), data.get("trained_on")
        if not all(v is None or isinstance(v, str) for v in (trained_at, trained_on)):
            raise ModelFileError(f"{where}: trained_at and trained_on must be text")
        overhead = data.get("step_overhead_s", 0.0)
        if (isinstance(overhead, bool) or not isinstance(overhead, int | float)
                or not 0.0 <= overhead < 1e-3):
            raise ModelFileError(f"{where}: step_overhead_s must be seconds in [0, 0.001), "
                                 f"not {overhead!r}")
        starts = data.get("backend_start_s", {})
        if not (isinstance(starts, dict) and all(
                isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
                and 0.0 <= v < 60.0 for k, v in starts.items())):
            raise ModelFileError(f"{where}: backend_start_s must map back ends to seconds "
                                 f"in [0, 60), not {starts!r}")
        return ModelSet(data["fingerprint"], {m.combo: m for m in models}, transfers, where,
                        trained_at, trained_on, float(overhead),
                        {k: float(v) for k, v in starts.items()})

    # Prediction ------------------------------------------------------------------

    def _stack(self) -> tuple[list[Combination], dict[Combination, int], dict[str, np.ndarray]]:
        """Every model's weights padded to MAX_FEATURES inputs and stacked."""
        if self._stacked is None:
            combos = sorted(self.models)
            hidden = max(self.models[c].params["b1"].shape[0] for c in combos)
            stacked = {
                "w1": np.zeros((len(combos), MAX_FEATURES, hidden)),
                "b1": np.zeros((len(combos), hidden)),
                "w2": np.zeros((len(combos), hidden)),
                "b2": np.zeros(len(combos)),
                "mean": np.zeros((len(combos), MAX_FEATURES)),
                "scale": np.ones((len(combos), MAX_FEATURES)),
                "target": np.zeros((len(combos), 2)),
                "linear": np.zeros((len(combos), MAX_FEATURES)),
                "offset": np.zeros(len(combos)),
            }
            for i, combo in enumerate(combos):
                model = self.models[combo]
                d, h = model.params["w1"].shape
                stacked["w1"][i, :d, :h] = model.params["w1"]
                stacked["b1"][i, :h] = model.params["b1"]
                stacked["w2"][i, :h] = model.params["w2"]
                stacked["b2"][i] = model.params["b2"]
                stacked["mean"][i, :d] = model.normalisation.mean
                stacked["scale"][i, :d] = model.normalisation.scale
                stacked["target"][i] = (model.normalisation.target_mean,
                                        model.normalisation.target_scale)
                if "prior" in model.params:  # log time = prior line + network
                    constant, complexity, f64 = model.params["prior"]
                    stacked["offset"][i] = constant
                    stacked["linear"][i, model.features.index("f64")] = f64
                    where = [j for j, n in enumerate(model.features) if n.endswith("complexity")]
                    if where:
                        stacked["linear"][i, where[0]] = complexity
            arrays = {k: v.astype(np.float32) for k, v in stacked.items()}
            self._stacked = (combos, {c: i for i, c in enumerate(combos)}, arrays)
        return self._stacked

    def predict(self, queries: Sequence[tuple[Combination, Query]]) -> np.ndarray:
        """Predicted seconds for every (combination, configuration), in one batched call.

        A combination without a model gives NaN. A loop of more trips than its model
        was trained on is read from the model within them (`predictor.loop_trips`).
        """
        if not queries or not self.models:
            return np.full(len(queries), np.nan)
        beyond = {i: found for i, query in enumerate(queries)
                  if (found := self._trip_references(*query)) is not None}
        if not beyond:
            return self._predict(queries)
        asked = [*queries, *(reference for trained, pair in beyond.values()
                             for reference in pair)]
        seconds = self._predict(asked)
        result = seconds[: len(queries)].copy()
        for n, (i, (trained, _)) in enumerate(beyond.items()):
            at = len(queries) + 2 * n
            result[i] = loop_trips.per_trip_seconds(loop_trips.trips_of(queries[i][1]),
                                                    trained, seconds[at], seconds[at + 1])
        return result

    def _trip_references(self, combo: Combination, config: Query
                         ) -> tuple[int, tuple[tuple[Combination, Query], ...]] | None:
        """For a loop beyond the trips its model was trained on: those trips, and the
        queries at T₁ and T₂ (`predictor.loop_trips.references`)."""
        model = self.models.get(combo)
        if model is None or not loop_trips.is_loop(combo[0]):
            return None
        trained = loop_trips.trained_trips(model.summary)
        pair = loop_trips.references(config, trained)
        return None if pair is None else (trained, tuple((combo, c) for c in pair))

    def _predict(self, queries: Sequence[tuple[Combination, Query]]) -> np.ndarray:
        """`predict`, each configuration as it is."""
        unique = list(dict.fromkeys(queries))
        if len(unique) < len(queries):  # programs repeat shapes: predict each once
            seconds = dict(zip(unique, self._predict(unique), strict=True))
            return np.array([seconds[q] for q in queries])
        _, index, arrays = self._stack()
        rows = np.zeros((len(queries), MAX_FEATURES))
        which = np.zeros(len(rows), dtype=np.int32)
        known = np.zeros(len(queries), dtype=bool)
        floors = np.zeros(len(queries))
        for i, (combo, config) in enumerate(queries):
            model = self.models.get(combo)
            if model is None:
                continue
            features = feature_row(config, model.features)
            rows[i, : len(features)] = features
            which[i] = index[combo]
            known[i] = True
            floors[i] = rate_floor(model, config)
        log_times = _predict_batch(arrays, which, rows.astype(np.float32))
        times = np.maximum(np.exp(log_times.astype(np.float64)), floors)
        return np.where(known, times, np.nan)


def _predict_batch(arrays: dict[str, np.ndarray], which: np.ndarray,
                   rows: np.ndarray) -> np.ndarray:
    """Every row through its own model, in numpy and in f32 like the trained networks
    (`predictor.mlp`); no JAX, so predicting costs no import or trace. Padded inputs
    beyond a model's features have zero weights."""
    x = (rows - arrays["mean"][which]) / arrays["scale"][which]
    hidden = np.einsum("nd,ndh->nh", x, arrays["w1"][which]) + arrays["b1"][which]
    hidden = np.where(hidden > 0, hidden, np.expm1(np.minimum(hidden, 0)))  # ELU
    normalised = (np.einsum("nh,nh->n", hidden, arrays["w2"][which]) + arrays["b2"][which]
                  + np.einsum("nd,nd->n", x, arrays["linear"][which]) + arrays["offset"][which])
    return normalised * arrays["target"][which, 1] + arrays["target"][which, 0]
