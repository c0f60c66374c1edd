"""The cost model's verbs (predict, update, load, save, build costs) and the two places
a query is made (`Variant.query`, `Summary.query`)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from model_fixtures import model_set

from annc.dsl.records import Combination, Query, Record
from annc.hardware.variants import get_variant, load_library, query_of
from annc.hardware.variants.regions.spec import Summary
from annc.predictor.cost_model import CostModel, measured_interval

MATMUL = Combination("matmul", "numpy", "cpu")
SHAPES = ((64, 64), (64, 64))


def asked(combo: Combination = MATMUL) -> tuple[Combination, Query]:
    return combo, Query(combo.kernel, SHAPES, "f32", 64.0**3)


def test_predict_gives_an_interval_and_the_wisdom_of_exact_shapes():
    cost = CostModel(model_set({MATMUL: (1e-3, 0.2)}), machine="m")
    (p,) = cost.predict([asked()])
    assert p.low_s < p.seconds < p.high_s and p.measured_s is None
    assert p.seconds == pytest.approx(1e-3)
    cost.keep(MATMUL, asked()[1], 4e-3, "tune", "2026-12-08T04:00:00")
    (q,) = cost.predict([asked()])
    assert q.measured_s == 4e-3 and q.seconds == pytest.approx(1e-3)  # both, the caller picks
    low, high = measured_interval(4e-3)
    assert low < 4e-3 < high and high / low == pytest.approx(math.exp(0.16))
    (none,) = cost.predict([asked(Combination("sum", "jax", "cpu"))])
    assert math.isnan(none.seconds)


def test_update_learns_corrections_from_measured_rows():
    cost = CostModel(model_set({MATMUL: 1e-3}), machine="m", base="b")
    assert cost.corrections is None
    measured = Record(MATMUL, asked()[1], 2e-3, "quick")
    added = cost.update([measured] * 10
                        + [Record(Combination("sum", "jax", "cpu"), asked()[1], 1.0, "quick")],
                        "quick")
    assert added == 10  # the record without a model is left out
    (p,) = cost.predict([asked()])
    assert 1.5e-3 < p.seconds < 2e-3 and p.base_s == pytest.approx(1e-3)


def test_a_record_without_a_model_does_not_shift_the_others_residuals():
    cost = CostModel(model_set({MATMUL: 1e-3}), machine="m", base="b")
    unknown = Record(Combination("sum", "jax", "cpu"), asked()[1], 1.0, "quick")
    assert cost.update([unknown, Record(MATMUL, asked()[1], 2e-3, "quick")], "quick") == 1
    assert cost.corrections is not None
    (((log_ratio, _),),) = cost.corrections.residuals.values()
    assert log_ratio == pytest.approx(math.log(2))


def test_update_takes_the_prediction_a_record_was_planned_with_where_it_has_one():
    cost = CostModel(model_set({MATMUL: 1e-3}), machine="m", base="b")
    planned = Record(MATMUL, asked()[1], 2e-3, "run", base_s=2e-3)  # planned on other networks
    assert cost.update([planned] * 10, "run") == 10
    (p,) = cost.predict([asked()])
    assert p.seconds == pytest.approx(1e-3, rel=0.05)  # no disagreement to learn


def test_drift_is_judged_from_what_was_predicted_for_each_record():
    cost = CostModel(model_set({MATMUL: 1e-3}), machine="m", base="b")
    far = Record(MATMUL, asked()[1], 3e-3, "run", predicted_s=1e-3)
    assert not cost.judge_drift([far] * 2)  # too few to say
    assert cost.judge_drift([far] * 3) and cost.corrections is not None
    assert cost.corrections.stale is not None and cost.corrections.stale["ops"] == 3
    close = Record(MATMUL, asked()[1], 1.05e-3, "run", predicted_s=1e-3)
    assert cost.judge_drift([close] * 3) and cost.corrections.stale is None


def test_build_cost_says_what_a_build_costs_here_and_asks_the_cache_only_when_it_matters():
    cost = CostModel(model_set({MATMUL: (1e-3, 0.2)}))
    asked_cache: list[bool] = []

    def cache(answer: float | None):
        def ask() -> float | None:
            asked_cache.append(True)
            return answer
        return ask

    assert cost.build_cost(MATMUL, True, True, cache(1e-3)) == (0.0, "built")
    assert cost.build_cost(MATMUL, False, False, cache(1e-3)) == (0.2, "none")
    assert not asked_cache
    assert cost.build_cost(MATMUL, False, True, cache(1e-3)) == (1e-3, "cached")
    assert cost.build_cost(MATMUL, False, True, cache(None)) == (0.2, "compile")
    assert cost.compile_seconds(Combination("sum", "jax", "cpu")) == 0.0


def test_load_reports_unusable_state_files_and_save_writes_them_back(tmp_path: Path):
    trained = model_set({MATMUL: 1e-3})
    corrections, wisdom = tmp_path / "c.json", tmp_path / "w.json"
    corrections.write_text("{not json")
    notes: list[str] = []
    cost = CostModel.load(trained, "test", "m", "b", corrections, wisdom, notes)
    assert cost.corrections is None and cost.wisdom is None
    assert len(notes) == 1 and "c.json" in notes[0]
    cost.update([Record(MATMUL, asked()[1], 2e-3, "quick")] * 5, "quick")
    cost.keep(MATMUL, asked()[1], 2e-3, "tune", "2026-12-08T04:00:00")
    cost.save(corrections, wisdom)
    again = CostModel.load(trained, "test", "m", "b", corrections, wisdom, notes)
    assert len(notes) == 1
    assert again.predict([asked()])[0].seconds == pytest.approx(cost.predict([asked()])[0].seconds)
    assert again.predict([asked()])[0].measured_s == 2e-3


def test_a_variant_makes_its_own_query_with_its_complexity_and_traits():
    load_library()
    variant = get_variant("matmul", "numpy", "cpu")
    query = variant.query(((3, 4), (4, 5)), "f64")
    assert query == Query("matmul", ((3, 4), (4, 5)), "f64", 60.0, ())
    assert variant.query(((3, 4), (4, 5)), "f64", (("fused", 1.0),)).traits == (("fused", 1.0),)
    # a lent GPU machine's variant, not registered here, still has its query for training
    assert query_of("matmul", "cupy", "gpu", ((3, 4), (4, 5)), "f32").complexity == 60.0


def test_a_region_summary_makes_the_region_models_query():
    summary = Summary(4096, 3, 1000, 3000, 12288, trips=7)
    query = summary.query("loop.stencil", "f32")
    assert query.shapes == summary.as_shapes() and query.complexity == 12288.0
    assert query.complexity == float(query.shapes[0][4])  # what region choice used to read
