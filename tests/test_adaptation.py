"""Adaptation: corrections learnt from few measurements, their files, and intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import model_set

from annc.dsl.records import Query
from annc.predictor.adaptation import (
    MAX_COMBO_PRIOR_ROWS,
    CorrectionFileError,
    Corrections,
    Residual,
    empirical_prior_rows,
    sigma_from_mape,
)
from annc.predictor.cost_model import CostModel
from annc.predictor.wisdom import Wisdom, WisdomFileError

MATMUL = ("matmul", "numpy", "cpu")
ADD = ("add", "numpy", "cpu")
ADD_OPENCL = ("add", "halide.gpu_tile", "opencl")


def models():
    return model_set({MATMUL: 1e-3, ADD: 1e-4, ADD_OPENCL: 2e-4})


def query(combo):
    shapes = ((64, 64), (64, 64))
    return (combo, Query(combo[0], shapes, "f32", 64.0**3))


def predicted(adapted: CostModel, combo) -> float:
    (p,) = adapted.predict([query(combo)])
    return p.seconds


def test_adaptation_moves_predictions_toward_new_measurements():
    corrections = Corrections("m", "b")
    corrections.add([Residual(MATMUL, math.log(2.0), "quick")] * 10, "quick")
    adapted = CostModel(models(), corrections=corrections)
    after = predicted(adapted, MATMUL)
    assert 1.5e-3 < after < 2.0e-3  # most of the way to the measured 2x, shrunk a little
    more = Corrections("m", "b")
    more.add([Residual(MATMUL, math.log(2.0), "quick")] * 30, "quick")
    assert after < predicted(CostModel(models(), corrections=more), MATMUL) < 2.0e-3


def test_combinations_without_new_data_keep_the_prior():
    corrections = Corrections("m", "b")
    corrections.add([Residual(MATMUL, math.log(2.0), "quick")] * 10, "quick")
    adapted = CostModel(models(), corrections=corrections)
    assert predicted(adapted, ADD) == pytest.approx(1e-4)  # same device, no data
    assert predicted(adapted, ADD_OPENCL) == pytest.approx(2e-4)


def test_with_a_device_level_a_combination_without_data_takes_its_devices_shift():
    corrections = Corrections("m", "b", device_prior_rows=4.0, family_prior_rows=4.0)
    corrections.add([Residual(MATMUL, math.log(2.0), "quick")] * 10, "quick")
    adapted = CostModel(models(), corrections=corrections)
    assert predicted(adapted, ADD_OPENCL) == pytest.approx(2e-4)  # no data on opencl
    shifted = predicted(adapted, ADD)  # the cpu's shift only, shrunk harder
    assert 1e-4 < shifted < predicted(adapted, MATMUL) / 10


def test_one_measurement_moves_a_little_and_a_window_keeps_the_newest():
    corrections = Corrections("m", "b")
    corrections.add([Residual(MATMUL, math.log(4.0), "run")], "run")
    one = predicted(CostModel(models(), corrections=corrections), MATMUL)
    ten = Corrections("m", "b")
    ten.add([Residual(MATMUL, math.log(4.0), "run")] * 10, "run")
    assert 1e-3 < one < predicted(CostModel(models(), corrections=ten), MATMUL) < 4e-3
    corrections.add([Residual(MATMUL, 0.0, "run")] * 40, "run")  # the machine changed back
    assert len(corrections.residuals[MATMUL]) == 32
    assert predicted(CostModel(models(), corrections=corrections), MATMUL) == pytest.approx(1e-3)


def test_every_prediction_has_an_interval_that_narrows_with_consistent_data():
    base = CostModel(models())
    (p,) = base.predict([query(MATMUL)])
    assert p.low_s < p.seconds < p.high_s and p.base_s == p.seconds
    corrections = Corrections("m", "b")
    corrections.add([Residual(MATMUL, math.log(2.0), "quick")] * 30, "quick")
    (q,) = CostModel(models(), corrections=corrections).predict([query(MATMUL)])
    assert q.high_s / q.low_s < p.high_s / p.low_s
    assert q.base_s == pytest.approx(1e-3)
    assert sigma_from_mape(5.0) < sigma_from_mape(30.0)


def test_a_combination_without_a_model_predicts_nan():
    (p,) = CostModel(models()).predict([query(("sum", "jax", "cpu"))])
    assert math.isnan(p.seconds) and math.isnan(p.low_s)


def test_corrections_file_round_trips(tmp_path: Path):
    corrections = Corrections("machine", "digest")
    corrections.add([Residual(MATMUL, 0.5, "quick"), Residual(ADD, -0.2, "run")], "quick")
    corrections.stale = {"at": "2026-11-25T10:00:00+00:00", "median_error": 0.4, "ops": 3}
    path = tmp_path / "c.json"
    corrections.save(path)
    loaded = Corrections.load(path, "machine", "digest")
    assert loaded.residuals == corrections.residuals and loaded.stale == corrections.stale
    assert loaded.history and loaded.history[0]["rows"] == 2
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("content,message", [
    (b"{not json", "not a readable JSON"),
    (b'{"kind": "something else"}', "not an annc corrections file"),
    (b'{"kind": "annc model corrections", "schema_version": 99}', "schema 99"),
    (b'{"kind": "annc model corrections", "schema_version": 1, "fingerprint": "other"}',
     "machine 'other'"),
    (b'{"kind": "annc model corrections", "schema_version": 1, "fingerprint": "machine", '
     b'"base": "another"}', "another model set"),
    (b'{"kind": "annc model corrections", "schema_version": 1, "fingerprint": "machine", '
     b'"base": "digest", "residuals": [{"kernel": "add"}]}', "malformed"),
    (b'{"kind": "annc model corrections", "schema_version": 1, "fingerprint": "machine", '
     b'"base": "digest", "created_at": "", "updated_at": "", "residuals": [{"kernel": "add", '
     b'"variant": "numpy", "device": "cpu", "values": [[NaN, "run"]]}]}', "not finite"),
])
def test_a_corrupt_or_foreign_corrections_file_is_refused(tmp_path: Path, content, message):
    path = tmp_path / "c.json"
    path.write_bytes(content)
    with pytest.raises(CorrectionFileError, match=message):
        Corrections.load(path, "machine", "digest")


def test_wisdom_round_trips_and_refuses_foreign_or_corrupt_files(tmp_path: Path):
    wisdom = Wisdom("machine")
    wisdom.add(MATMUL, "f32", ((8, 8), (8, 8)), 1e-5, "tune", "2026-11-25")
    wisdom.add(MATMUL, "f32", ((8, 8), (8, 8)), float("nan"), "tune", "2026-11-25")
    path = tmp_path / "w.json"
    wisdom.save(path)
    loaded = Wisdom.load(path, "machine")
    assert loaded.seconds(MATMUL, "f32", ((8, 8), (8, 8))) == pytest.approx(1e-5)
    assert loaded.seconds(MATMUL, "f64", ((8, 8), (8, 8))) is None
    with pytest.raises(WisdomFileError, match="machine 'machine'"):
        Wisdom.load(path, "another")
    data = json.loads(path.read_text())
    data["entries"][0]["seconds"] = -1
    path.write_text(json.dumps(data))
    with pytest.raises(WisdomFileError, match="malformed"):
        Wisdom.load(path, "machine")
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(WisdomFileError):
        Wisdom.load(path, "machine")


def test_offsets_far_beyond_the_noise_are_followed_and_offsets_within_it_are_ignored():
    rng = np.random.default_rng(0)
    other_day = [np.log(f) + rng.normal(0, 0.05, 6) for f in (1.5, 0.6, 2.0, 1.3)]
    assert empirical_prior_rows(other_day, least=2.0) == 2.0
    already_right = [rng.normal(0, 0.3, 6) for _ in range(8)]
    assert empirical_prior_rows(already_right, least=2.0) == MAX_COMBO_PRIOR_ROWS
    assert empirical_prior_rows(other_day[:2], least=2.0) == 2.0  # too few to estimate


def test_noisy_measurements_of_models_that_are_already_right_barely_move_them():
    rng = np.random.default_rng(1)
    combos = [("add", v, "cpu") for v in ("numpy", "jax", "halide", "numpy.reference")]
    corrections = Corrections("fp", "base")
    corrections.add([Residual(c, float(r), "quick") for c in combos
                     for r in rng.normal(0, 0.3, 4)], "quick")
    fixed = Corrections("fp", "base", empirical=False)
    fixed.residuals = corrections.residuals
    moved = [abs(corrections.correction(c)[0]) for c in combos]
    moved_fixed = [abs(fixed.correction(c)[0]) for c in combos]
    assert max(moved) < 0.05 < max(moved_fixed)
