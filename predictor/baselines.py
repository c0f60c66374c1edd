"""What a compiler engineer would use instead of the augmented network, on the same rows.

Each baseline maps every combination's rows to its held-out MAPE:
- `plain_mlp`: the same network without the complexity feature (same size), and
  the paper's larger feed-forward network (`FFNN_HIDDEN` units);
- `linear_complexity`: least squares of log time on log complexity (and dtype);
- `roofline`: max(operations / peak FLOP/s, bytes / bandwidth) with the machine's
  measured peak and bandwidth, no fitting at all;
- `boosted_trees`: gradient-boosted trees as in TVM's cost model (XGBoost, from
  the optional `bench` extra; absent without it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from annc.dsl.records import Combination, Record
from annc.predictor.features import bytes_touched, feature_matrix, feature_names
from annc.predictor.fitting import by_combo, fit_models, mape, split

FFNN_HIDDEN = 32

Scores = dict[Combination, float]


def plain_mlp(measurements: list[Record], hidden: int) -> Scores:
    models = fit_models(measurements, augmented=False, hidden=hidden)
    return {c: m.summary["mape"] for c, m in models.items() if m.summary["mape"] is not None}


def _design(rows: list[Record]) -> np.ndarray:
    return np.array([[1.0, math.log(max(r.query.complexity, 1.0)),
                      1.0 if r.query.dtype == "f64" else 0.0] for r in rows])


def linear_complexity(measurements: Iterable[Record]) -> Scores:
    scores = {}
    for combo, rows in by_combo(measurements).items():
        train, test = split(rows, "train"), split(rows, "test")
        if len(train) < 3 or not test:
            continue
        coef, *_ = np.linalg.lstsq(_design(train), np.log([r.measured_s for r in train]),
                                   rcond=None)
        predicted = np.exp(_design(test) @ coef)
        scores[combo] = mape(predicted, np.array([r.seconds for r in test]))
    return scores


def roofline(measurements: Iterable[Record], peak_flops: dict[str, float],
             bandwidth: float) -> Scores:
    """Counts a multiply-add as two operations; `peak_flops` per dtype, bandwidth in B/s."""
    scores = {}
    for combo, rows in by_combo(measurements).items():
        test = split(rows, "test")
        if not test:
            continue
        predicted = np.array([
            max(2 * r.query.complexity / peak_flops[r.query.dtype],
                bytes_touched(r.query.kernel, r.query.shapes, r.query.dtype) / bandwidth)
            for r in test
        ])
        scores[combo] = mape(predicted, np.array([r.seconds for r in test]))
    return scores


def boosted_trees(measurements: Iterable[Record]) -> Scores | None:
    """None when XGBoost is not installed (`pip install annc[bench]`)."""
    try:
        import xgboost
    except ImportError:
        return None
    scores = {}
    for combo, rows in by_combo(measurements).items():
        train, test = split(rows, "train"), split(rows, "test")
        if len(train) < 8 or not test:
            continue
        names = feature_names(combo[0], augmented=True,
                              traits=[name for name, _ in train[0].query.traits])
        data = xgboost.DMatrix(feature_matrix([r.query for r in train], names),
                               label=np.log([r.measured_s for r in train]))
        booster = xgboost.train({"max_depth": 4, "eta": 0.1, "nthread": 1, "seed": 0},
                                data, num_boost_round=200)
        queries = xgboost.DMatrix(feature_matrix([r.query for r in test], names))
        predicted = np.exp(booster.predict(queries))
        scores[combo] = mape(predicted, np.array([r.seconds for r in test]))
    return scores
