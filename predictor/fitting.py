"""From records to models: normalise on training rows, train, score on held-out rows.

The rows are calibration `Record`s whose query carries the variant's complexity (and
traits), split into "train" and "test"."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from annc.dsl.records import Combination, Query, Record
from annc.predictor import loop_trips, mlp
from annc.predictor.features import (
    COMPLEXITY,
    SHAPE_AWARE,
    Normalisation,
    feature_matrix,
    feature_names,
    is_region,
)
from annc.predictor.models import Model, rate_floor
from annc.predictor.training import TrainingSet, train_group


def mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Mean absolute percentage error, in percent."""
    return float(np.mean(np.abs(predicted - measured) / measured) * 100)


def by_combo(measurements: Iterable[Record]) -> dict[Combination, list[Record]]:
    groups: dict[Combination, list[Record]] = defaultdict(list)
    for m in measurements:
        if m.seconds is not None and m.seconds > 0 and np.isfinite(m.seconds):
            groups[m.combination].append(m)
    return dict(sorted(groups.items()))


def split(rows: Sequence[Record], name: str) -> list[Record]:
    return [r for r in rows if r.split == name]


def prior_design(x: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The complexity prior's inputs from normalised features: 1, the (log) complexity
    where the model has it (else 0), and the f64 flag."""
    complexity = next((i for i, n in enumerate(names) if n.endswith("complexity")), None)
    column = x[:, complexity] if complexity is not None else np.zeros(len(x))
    return np.stack([np.ones(len(x)), column, x[:, names.index("f64")]], axis=1)


def predict_seconds(model: Model, configs: Sequence[Query]) -> np.ndarray:
    x = model.normalisation.features(feature_matrix(configs, model.features))
    params = {k: jnp.asarray(v, mlp.DTYPE) for k, v in model.params.items()
              if k in ("w1", "b1", "w2", "b2")}
    batch = jnp.asarray(x, mlp.DTYPE)
    normalised = np.asarray(jax.vmap(mlp.predict, in_axes=(None, 0))(params, batch),
                            dtype=np.float64)
    if "prior" in model.params:
        normalised = normalised + prior_design(x, model.features) @ model.params["prior"]
    seconds = np.exp(model.normalisation.log_time(normalised))
    return np.maximum(seconds, [rate_floor(model, c) for c in configs])


def fit_models(
    measurements: Iterable[Record],
    augmented: bool = True,
    hidden: int = mlp.HIDDEN,
    seed: int = 0,
    min_rows: int = 8,
    encoding: str = "log",
    prior: bool | None = None,
    shape_aware: bool = SHAPE_AWARE,
    complexity: str = COMPLEXITY,
) -> dict[Combination, Model]:
    """One model per combination with at least `min_rows` training rows.

    `encoding` is how sizes enter (`log`, or `raw` as in the paper);
    `shape_aware` and `complexity` choose the features (`features.feature_names`:
    annc's defaults, or "complexity" and no innermost extent as before). With `prior`,
    the network learns the residual over a least-squares line in the complexity
    and the dtype (3 more parameters): log time = prior + NN(features). By default
    (None) regions get the prior and kernels do not: a region model is used on regions
    larger than its calibration drew (a 15×15 stencil on 2048² in a loop), where a
    network's saturating units flatten out and the line keeps growing with the work."""
    groups = {c: rows for c, rows in by_combo(measurements).items()
              if len(split(rows, "train")) >= min_rows}
    start = time.perf_counter()
    prepared: list[tuple[Combination, tuple[str, ...], Normalisation, TrainingSet,
                         np.ndarray | None]] = []
    for combo, rows in groups.items():
        train = split(rows, "train")
        names = feature_names(combo[0], augmented, encoding, shape_aware, complexity,
                              traits=[name for name, _ in train[0].query.traits])
        x = feature_matrix([r.query for r in train], names)
        y = np.log([r.measured_s for r in train])
        normalisation = Normalisation.fit(x, y)
        xn, yn = normalisation.features(x), normalisation.target(y)
        line = None
        if prior if prior is not None else is_region(combo[0]):
            design = prior_design(xn, names)
            line = np.linalg.lstsq(design, yn, rcond=None)[0]
            yn = yn - design @ line
        prepared.append((combo, names, normalisation, TrainingSet(xn, yn), line))
    models: dict[Combination, Model] = {}
    params = train_group([e[3] for e in prepared], hidden, seed,
                         names=["/".join(e[0]) for e in prepared]) if prepared else []
    for (combo, names, normalisation, _, line), p in zip(prepared, params, strict=True):
        weights = {k: np.asarray(v, dtype=np.float64) for k, v in p.items()}
        if line is not None:
            weights["prior"] = np.asarray(line, dtype=np.float64)
        models[combo] = Model(*combo, names, normalisation, weights)
    seconds = time.perf_counter() - start
    return {c: _summarised(m, groups[c], seconds / max(len(models), 1))
            for c, m in sorted(models.items())}


THROUGHPUT_BOUND_SLOPE = 0.5
"""The slope of log time on log complexity, over the largest training rows, from which a
combination counts as throughput-bound at the top of its range: time grows with the
work there, so beyond the range no rate more than twice the fastest seen is believed
(`predictor.models.rate_floor`). A GPU's kernels at calibration's sizes are bound by
their launch instead (slopes -0.2 to 0.25 on an H200, against 0.4 to 1.5 on its host's
CPU): their rate is still rising, and they get no floor."""


def edge_slope(rows: Sequence[Record]) -> float:
    """The slope of log time on log complexity over the largest quarter of these rows
    (at least 6); 0 where there are too few rows or sizes to tell."""
    sized = sorted((r for r in rows if r.query.complexity > 0), key=lambda r: r.query.complexity)
    top = sized[-max(6, len(sized) // 4):]
    x = np.log([r.query.complexity for r in top])
    if len(top) < 6 or np.ptp(x) == 0:
        return 0.0
    return float(np.polyfit(x, np.log([r.measured_s for r in top]), 1)[0])


def max_rates(rows: Iterable[Record]) -> dict[str, float]:
    """Per dtype, the fastest rate (complexity per second) among these rows."""
    rates: dict[str, float] = {}
    for r in rows:
        if r.query.complexity > 0 and r.measured_s > 0:
            rate = r.query.complexity / r.measured_s
            rates[r.query.dtype] = max(rates.get(r.query.dtype, 0.0), rate)
    return rates


def _summarised(model: Model, rows: list[Record], train_seconds: float) -> Model:
    train, test = split(rows, "train"), split(rows, "test")
    largest = max((r.query.complexity for r in train), default=0.0)
    limits = ({"max_rate": max_rates(train), "max_complexity": largest}
              if largest > 0 and edge_slope(train) >= THROUGHPUT_BOUND_SLOPE else {})
    model = Model(model.kernel, model.variant, model.device, model.features,
                  model.normalisation, model.params, limits)
    measured = np.array([r.seconds for r in test])
    held_out = (mape(predict_seconds(model, [r.query for r in test]), measured)
                if test else None)
    model.summary.update({
        "train_n": len(train), "test_n": len(test), "mape": held_out,
        "params": model.parameter_count, "train_seconds": train_seconds,
    })
    if loop_trips.is_loop(model.kernel) and train:
        model.summary["max_trips"] = max_trips(train)
    return model


def max_trips(rows: Iterable[Record]) -> int:
    """The most trips among these rows of a loop model: how far its predictions are
    trusted as they are (`predictor.loop_trips`)."""
    return max(loop_trips.trips_of(r.query) for r in rows)
