"""Model families: one factory for the shipped augmented networks and the baselines.

A *family* is a way of predicting a combination's time from its queries: the augmented
network annc ships, or what a compiler engineer would use instead. Each is made by
`create(name)` and fits every combination's training rows at once (`Family.fit`);
`score` then scores any family on the held-out rows by the same code, so the shipped
models and the baselines are compared on equal terms (`annc evaluate`). Adding a family
is one class here and one line in `FAMILIES`.

- `augmented`: the paper's tiny network with the complexity feature (`predictor.fitting`);
- `plain_mlp`: the same network without the complexity feature (same size);
- `ffnn`: the paper's larger feed-forward network without it (`FFNN_HIDDEN` units);
- `linear_complexity`: least squares of log time on log complexity (and dtype);
- `roofline`: max(operations / peak FLOP/s, bytes / bandwidth) with the machine's
  measured peak and bandwidth, no fitting at all (made only with those peaks);
- `boosted_trees`: gradient-boosted trees as in TVM's cost model (XGBoost, from the
  optional `bench` extra; `create` gives None without it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from annc.dsl.records import Combination, Query, Record
from annc.predictor.features import (
    COMPLEXITY,
    SHAPE_AWARE,
    bytes_touched,
    feature_matrix,
    feature_names,
)
from annc.predictor.fitting import by_combo, fit_models, mape, predict_seconds, split
from annc.predictor.mlp import HIDDEN
from annc.predictor.models import Model

FFNN_HIDDEN = 32

Predictor = Callable[[Sequence[Query]], np.ndarray]
"""One combination's fitted predictor: queries → seconds."""

Scores = dict[Combination, float]


class Family(Protocol):
    """A way of predicting times, fitted per combination."""

    @property
    def name(self) -> str:
        """Its name in `FAMILIES` and in `annc evaluate`'s baselines."""
        ...

    def fit(self, rows: Sequence[Record]) -> dict[Combination, Predictor]:
        """One predictor per combination that has enough training rows."""
        ...


@dataclass(frozen=True)
class Networks:
    """The tiny networks of `predictor.fitting`, with or without the complexity feature."""

    name: str
    augmented: bool = True
    hidden: int = HIDDEN
    seed: int = 0
    encoding: str = "log"
    """How sizes enter: their logs (annc's), or `raw` (the paper's)."""
    shape_aware: bool = SHAPE_AWARE
    complexity: str = COMPLEXITY
    prior: bool | None = None
    """The encodings compared in `benchmarks/encodings.py`; annc's are the defaults."""

    def models(self, rows: Sequence[Record]) -> dict[Combination, Model]:
        """The trained networks themselves, as a model file holds them (`annc train`)."""
        return fit_models(rows, augmented=self.augmented, hidden=self.hidden, seed=self.seed,
                          encoding=self.encoding, prior=self.prior,
                          shape_aware=self.shape_aware, complexity=self.complexity)

    def fit(self, rows: Sequence[Record]) -> dict[Combination, Predictor]:
        return predictors(self.models(rows))


def predictors(models: dict[Combination, Model]) -> dict[Combination, Predictor]:
    """Trained networks as the family's predictors."""
    return {combo: _network(model) for combo, model in models.items()}


def _network(model: Model) -> Predictor:
    return lambda configs: predict_seconds(model, configs)


def _design(configs: Sequence[Query]) -> np.ndarray:
    return np.array([[1.0, math.log(max(c.complexity, 1.0)),
                      1.0 if c.dtype == "f64" else 0.0] for c in configs])


@dataclass(frozen=True)
class LinearComplexity:
    name: str = "linear_complexity"

    def fit(self, rows: Sequence[Record]) -> dict[Combination, Predictor]:
        return {combo: _line(train) for combo, train in _training(rows, 3)}


def _training(rows: Sequence[Record],
              least: int) -> Iterator[tuple[Combination, list[Record]]]:
    """Every combination's training rows, where it has at least `least`."""
    for combo, group in by_combo(rows).items():
        train = split(group, "train")
        if len(train) >= least:
            yield combo, train


def _line(train: list[Record]) -> Predictor:
    coef, *_ = np.linalg.lstsq(_design([r.query for r in train]),
                               np.log([r.measured_s for r in train]), rcond=None)
    return lambda configs: np.exp(_design(configs) @ coef)


@dataclass(frozen=True)
class Roofline:
    """Counts a multiply-add as two operations; `peak_flops` per dtype, bandwidth in B/s."""

    peak_flops: dict[str, float]
    bandwidth: float
    name: str = "roofline"

    def _seconds(self, configs: Sequence[Query]) -> np.ndarray:
        return np.array([max(2 * c.complexity / self.peak_flops[c.dtype],
                             bytes_touched(c.kernel, c.shapes, c.dtype) / self.bandwidth)
                         for c in configs])

    def fit(self, rows: Sequence[Record]) -> dict[Combination, Predictor]:
        return {combo: self._seconds for combo in by_combo(rows)}


@dataclass(frozen=True)
class BoostedTrees:
    name: str = "boosted_trees"

    def fit(self, rows: Sequence[Record]) -> dict[Combination, Predictor]:
        return {combo: _trees(combo, train) for combo, train in _training(rows, 8)}


def _trees(combo: Combination, train: list[Record]) -> Predictor:
    import xgboost

    names = feature_names(combo[0], augmented=True,
                          traits=[name for name, _ in train[0].query.traits])
    data = xgboost.DMatrix(feature_matrix([r.query for r in train], names),
                           label=np.log([r.measured_s for r in train]))
    booster = xgboost.train({"max_depth": 4, "eta": 0.1, "nthread": 1, "seed": 0}, data,
                            num_boost_round=200)
    return lambda configs: np.exp(booster.predict(xgboost.DMatrix(
        feature_matrix(configs, names))))


FAMILIES = ("augmented", "plain_mlp", "ffnn", "linear_complexity", "roofline",
            "boosted_trees")
"""Every family `create` makes, the shipped one first."""


def create(name: str, peaks: tuple[dict[str, float], float] | None = None) -> Family | None:
    """The family of that name; None where it cannot be made here (`roofline` without
    the machine's peaks, `boosted_trees` without XGBoost)."""
    if name == "augmented":
        return Networks(name)
    if name == "plain_mlp":
        return Networks(name, augmented=False)
    if name == "ffnn":
        return Networks(name, augmented=False, hidden=FFNN_HIDDEN)
    if name == "linear_complexity":
        return LinearComplexity()
    if name == "roofline":
        if peaks is None or not peaks[0] or peaks[1] <= 0:
            return None
        return Roofline(*peaks)
    if name == "boosted_trees":
        try:
            import xgboost  # noqa: F401
        except ImportError:
            return None
        return BoostedTrees()
    raise ValueError(f"no model family {name!r}; the families are {', '.join(FAMILIES)}")


def score(fitted: dict[Combination, Predictor], rows: Sequence[Record]) -> Scores:
    """Every fitted combination's MAPE on its held-out rows (those without any are left
    out): the one scoring of every family."""
    scores = {}
    for combo, group in by_combo(rows).items():
        test = split(group, "test")
        if combo in fitted and test:
            predicted = fitted[combo]([r.query for r in test])
            scores[combo] = mape(predicted, np.array([r.measured_s for r in test]))
    return scores
