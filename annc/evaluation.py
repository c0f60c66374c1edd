"""`annc evaluate`: the augmented models against the baselines, on held-out rows.

Every model and baseline is trained here on the same training rows (the
augmented models exactly as `annc train` trains them: same rows, same seeds),
and scored on held-out rows that none of them saw.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from annc.dsl.errors import AnncError
from annc.dsl.records import Combination, Record
from annc.hardware.calibration.runs import NoiseFloor
from annc.predictor import families
from annc.predictor.adaptation import (
    COMBO_PRIOR_ROWS,
    DEVICE_PRIOR_ROWS,
    FAMILY_PRIOR_ROWS,
    Corrections,
)
from annc.predictor.cost_model import CostModel
from annc.predictor.fitting import by_combo, mape, split
from annc.predictor.models import ModelSet


def prediction_latency(models: CostModel, rows: list[Record], batch: int = 1024) -> float:
    """Seconds per prediction of the trained networks in one batched call of `batch`
    candidates, after warm-up."""
    queries = [(r.combination, r.query) for r in rows[:batch]]
    queries = (queries * (batch // max(len(queries), 1) + 1))[:batch]
    models.predict_trained(queries)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        models.predict_trained(queries)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / batch


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def evaluate(rows: list[Record], noise: NoiseFloor | None,
             peaks: tuple[dict[str, float], float] | None) -> dict[str, Any]:
    """The `evaluate --report json` object.

    Beside the contract's fields, each combination has `noise_mape`: the
    MAPE of its own noise passes against its held-out rows (None without them), the
    error a perfect model would still show against its held-out rows, and
    `noise_ratio`: its held-out MAPE over that noise floor (1 is the goal); the
    summary has their median over combinations, `median_noise_ratio`.
    """
    if not rows:
        raise AnncError("evaluate: no measurements to evaluate on; run `annc calibrate`")
    start = time.perf_counter()
    models = families.Networks("augmented").models(rows)
    train_seconds = time.perf_counter() - start
    shipped = families.score(families.predictors(models), rows)
    scores: dict[str, families.Scores] = {}
    for name in families.FAMILIES[1:]:  # every other family, scored by the same code
        family = families.create(name, peaks)
        if family is not None:
            scores[name] = families.score(family.fit(rows), rows)
    combos = []
    for combo, model in models.items():
        if combo not in shipped:
            continue
        floor = _percent(noise.by_combination.get(combo)) if noise else None
        combos.append({
            "kernel": combo[0], "variant": combo[1], "device": combo[2],
            "params": model.parameter_count, "train_n": model.summary["train_n"],
            "test_n": model.summary["test_n"], "mape": shipped[combo],
            "noise_mape": floor,
            "noise_ratio": shipped[combo] / floor if floor else None,
            "baselines": {name: s[combo] for name, s in scores.items() if combo in s},
        })
    mapes = [c["mape"] for c in combos]
    ratios = [c["noise_ratio"] for c in combos if c["noise_ratio"] is not None]
    plain_wins = [c["mape"] < c["baselines"]["plain_mlp"] for c in combos
                  if "plain_mlp" in c["baselines"]]
    summary = {
        "combinations": len(combos),
        "median_mape": statistics.median(mapes) if mapes else None,
        "worst_mape": max(mapes) if mapes else None,
        "noise_floor_mape": _percent(noise.mape) if noise else None,
        "median_noise_mape": _percent(noise.median_combination) if noise else None,
        "median_noise_ratio": statistics.median(ratios) if ratios else None,
        "max_params": max((c["params"] for c in combos), default=0),
        "max_train_n": max((c["train_n"] for c in combos), default=0),
        "beats_plain_mlp_share": sum(plain_wins) / len(plain_wins) if plain_wins else None,
        "train_seconds": train_seconds,
        "baseline_medians": {
            name: statistics.median([c["baselines"][name] for c in combos
                                     if name in c["baselines"]])
            for name in scores if any(name in c["baselines"] for c in combos)
        },
        "seconds_per_prediction": prediction_latency(CostModel(ModelSet({}, models)), rows),
    }
    return {"combos": combos, "summary": summary, "_models": models}


def plot(result: dict[str, Any], rows: list[Record], path: Path) -> None:
    """Predicted against measured held-out times, log-log, one panel per kernel."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AnncError("--plot needs matplotlib: pip install 'annc[bench]'") from None
    models = result["_models"]
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for combo, combo_rows in by_combo(rows).items():
        test = split(combo_rows, "test")
        if combo not in models or not test:
            continue
        predicted = families.predictors({combo: models[combo]})[combo](
            [r.query for r in test])
        points[combo[0]] += list(zip([r.measured_s for r in test], predicted, strict=True))
    kernels = sorted(points)
    columns = 4
    rows_n = max(1, -(-len(kernels) // columns))
    figure, axes = plt.subplots(rows_n, columns, figsize=(4 * columns, 3.6 * rows_n),
                                squeeze=False)
    for ax, kernel in zip(axes.flat, kernels, strict=False):
        measured, predicted = np.array(points[kernel]).T
        ax.loglog(measured, predicted, ".", markersize=3, alpha=0.6)
        low, high = min(measured.min(), predicted.min()), max(measured.max(), predicted.max())
        ax.plot([low, high], [low, high], "k-", linewidth=0.8)
        ax.set_title(kernel)
        ax.set_xlabel("measured s")
        ax.set_ylabel("predicted s")
    for ax in list(axes.flat)[len(kernels):]:
        ax.axis("off")
    summary = result["summary"]
    figure.suptitle(f"held-out predictions: median MAPE {summary['median_mape']:.1f}%, "
                    f"worst {summary['worst_mape']:.1f}%")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


ADAPTATION_ROWS = (0, 5, 10, 25)
"""Rows per combination of the other day's training rows that adaptation may use."""

SHRINKAGE = {
    "annc's": (DEVICE_PRIOR_ROWS, FAMILY_PRIOR_ROWS, COMBO_PRIOR_ROWS, True),
    "combination, 2 pseudo-rows": (math.inf, math.inf, 2.0, False),
    "combination, 1 pseudo-row": (math.inf, math.inf, 1.0, False),
    "combination, 4 pseudo-rows": (math.inf, math.inf, 4.0, False),
    "device + family + combination": (4.0, 4.0, COMBO_PRIOR_ROWS, False),
    "device + combination": (4.0, math.inf, COMBO_PRIOR_ROWS, False),
    "device only": (4.0, math.inf, math.inf, False),
}
"""The corrections compared: prior pseudo-rows of the device, family and combination
levels (infinite: the level is not used), and whether the combination's are estimated
from the residuals (at least the number given); the first is what annc uses."""


def _median_mape(cost: CostModel, tests: dict[Combination, list[Record]],
                 ) -> tuple[float, dict[Combination, float]]:
    queries = [(combo, r.query) for combo, rows in tests.items() for r in rows]
    predicted = iter(cost.predict(queries))
    per_combo = {}
    for combo, rows in tests.items():
        seconds = np.array([next(predicted).seconds for _ in rows])
        per_combo[combo] = mape(seconds, np.array([r.measured_s for r in rows]))
    return statistics.median(per_combo.values()), per_combo


def adaptation_curve(models: ModelSet, rows: list[Record],
                     ks: tuple[int, ...] = ADAPTATION_ROWS) -> dict[str, Any]:
    """Models trained on one set of measurements, scored on another's held-out rows
    before and after adapting to k of its training rows per combination, and against
    models retrained from scratch on all of them (`k = "full"`)."""
    groups = {c: g for c, g in by_combo(rows).items() if c in models.models}
    tests = {c: split(g, "test") for c, g in groups.items() if split(g, "test")}
    trains = {c: split(groups[c], "train") for c in tests}
    if not tests:
        raise AnncError("evaluate --against: no held-out rows of combinations these models "
                        "know")
    curve = []
    for name, (device_prior, family_prior, combo_prior, empirical) in SHRINKAGE.items():
        for k in ks:
            cost = CostModel(models, corrections=Corrections(
                "-", "-", device_prior_rows=device_prior, family_prior_rows=family_prior,
                combo_prior_rows=combo_prior, empirical=empirical))
            cost.update([replace(r, combination=c, source="quick")
                         for c, train in trains.items() for r in train[:k]], "evaluate")
            median, _ = _median_mape(cost, tests)
            curve.append({"corrections": name, "k": k, "median_mape": median})
    retraining = families.Networks("augmented")
    retrained = families.score(retraining.fit([r for c in tests for r in groups[c]]),
                               [r for c in tests for r in tests[c]])
    full = [retrained[c] for c in tests if c in retrained]
    curve.append({"corrections": "retrained from scratch", "k": "full",
                  "median_mape": statistics.median(full) if full else None})
    return {"combinations": len(tests), "test_rows": sum(map(len, tests.values())),
            "curve": curve}
