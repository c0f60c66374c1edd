"""The predictor: features, training, the JSON model file, batched prediction, baselines."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from model_fixtures import constant_model

from annc.dsl.records import Combination, Query, Record
from annc.predictor import families
from annc.predictor.features import (
    MissingTraitError,
    bytes_touched,
    feature_names,
    feature_row,
    padded_complexity,
    sizes,
    trait_names,
)
from annc.predictor.fitting import (
    THROUGHPUT_BOUND_SLOPE,
    edge_slope,
    fit_models,
    mape,
    predict_seconds,
)
from annc.predictor.mlp import parameter_count
from annc.predictor.models import RATE_MARGIN, SCHEMA_VERSION, ModelFileError, ModelSet, rate_floor
from annc.predictor.training import TrainingSet, train_group
from annc.predictor.transfers import Link, TransferModel


def measured(combination: tuple[str, str, str], query: Query, seconds: float,
             split: str) -> Record:
    """A calibration record of this split."""
    return Record(Combination(*combination), query, seconds, "calibration", split=split)


def synthetic(kernel: str, variant: str, n_train: int = 120, n_test: int = 30,
              seed: int = 0, noise: float = 0.01) -> list[Record]:
    """Rows whose time is a smooth function of the complexity: 2 µs + c / 3 GFLOP/s."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_train + n_test):
        m, k, n = (int(v) for v in np.exp(rng.uniform(np.log(4), np.log(600), 3)))
        shapes = ((m, k), (k, n))
        complexity = float(m * k * n)
        seconds = (2e-6 + complexity / 3e9) * math.exp(rng.normal(0, noise))
        config = Query(kernel, shapes, "f32" if i % 2 else "f64", complexity)
        rows.append(measured((kernel, variant, "cpu"), config, seconds,
                                "train" if i < n_train else "test"))
    return rows


def test_features_are_logs_of_sizes_complexity_and_bytes():
    config = Query("matmul", ((8, 16), (16, 4)), "f64", 512.0)
    assert sizes("matmul", config.shapes) == (8, 16, 4)
    assert bytes_touched("matmul", config.shapes, "f64") == (128 + 64 + 32) * 8
    assert feature_names("matmul", True) == ("log m", "log k", "log n",
                                             "log padded complexity", "log bytes", "f64")
    assert "log padded complexity" not in feature_names("conv2d", False)
    assert feature_names("add", False) == ("log elements", "log bytes", "f64")
    assert feature_names("add", False, shape_aware=True) == ("log elements", "log inner",
                                                             "log bytes", "f64")


def test_padded_complexity_rounds_the_innermost_loop_up_to_whole_vectors():
    # 16 f32 or 8 f64 lanes per 64-byte vector: 4 columns of f64 fill half a vector
    narrow = Query("matmul", ((8, 16), (16, 4)), "f64", 512.0)
    assert padded_complexity(narrow) == 1024.0
    aligned = Query("matmul", ((8, 16), (16, 16)), "f32", 2048.0)
    assert padded_complexity(aligned) == 2048.0
    tall = Query("neg", ((1000, 2),), "f32", 2000.0)
    assert padded_complexity(tall) == 16000.0
    wide = Query("neg", ((2, 1000),), "f32", 2000.0)
    assert padded_complexity(wide) == 2000.0 * 1008 / 1000
    column = Query("neg", ((1000, 1),), "f32", 1000.0)  # runs as a 1000-vector
    assert padded_complexity(column) == 1000.0 * 1008 / 1000


def test_a_model_file_computes_the_features_it_names_so_older_files_still_predict():
    config = Query("add", ((3, 5), (3, 5)), "f32", 15.0)
    old = ("log elements", "log complexity", "log bytes", "f64")
    assert feature_row(config, old) == pytest.approx(
        [math.log(15), math.log(15), math.log(45 * 4), 0.0])
    assert feature_row(config, ("elements", "inner", "f64")) == [15.0, 5.0, 0.0]


def test_a_variants_trait_takes_the_place_of_the_bytes_and_a_query_must_carry_it():
    names = feature_names("conv2d", True, traits=["fused"])
    assert names == ("log h", "log w", "log p", "log q", "log padded complexity", "fused", "f64")
    assert parameter_count(len(names)) <= 75
    assert trait_names("conv2d", names) == ("fused",)
    assert trait_names("conv2d", feature_names("conv2d", True)) == ()
    fused = Query("conv2d", ((64, 64), (3, 3)), "f32", 64 * 64 * 9.0, (("fused", 1.0),))
    assert feature_row(fused, names)[5] == 1.0
    bare = Query("conv2d", ((64, 64), (3, 3)), "f32", 64 * 64 * 9.0)
    with pytest.raises(MissingTraitError, match="'fused'"):
        feature_row(bare, names)


def test_models_of_rows_with_traits_take_the_traits():
    rows = [measured(r.combination, Query(r.query.kernel, r.query.shapes, r.query.dtype,
                                               r.query.complexity,
                                               (("fused", float(r.query.shapes[0][0] > 60)),)),
                        r.seconds, r.split) for r in synthetic("matmul", "halide.auto.x")]
    (model,) = fit_models(rows).values()
    assert model.features[-2:] == ("fused", "f64") and "log bytes" not in model.features
    assert model.parameter_count <= 75
    (plain,) = fit_models(rows, augmented=False).values()
    assert "fused" in plain.features  # the baselines get the same information


def test_every_model_stays_within_75_parameters():
    for kernel in ("matmul", "matvec", "conv2d", "transpose", "dot", "add"):
        assert parameter_count(len(feature_names(kernel, True))) <= 75


def test_augmented_model_learns_a_smooth_cost_to_a_few_percent():
    rows = synthetic("matmul", "numpy")
    (model,) = fit_models(rows).values()
    assert model.summary["train_n"] == 120 and model.summary["test_n"] == 30
    assert model.parameter_count <= 75
    assert model.summary["mape"] < 6.0


def test_models_of_different_feature_counts_train_together_each_at_its_own_width():
    """One call trains every model; a narrower model's padding columns are cut off."""
    matmul = synthetic("matmul", "numpy")
    elementwise = []
    for row in synthetic("matmul", "jax", seed=2):  # the same cost, as an element count
        m, k = row.query.shapes[0]
        n = row.query.shapes[1][1]
        config = Query("neg", ((m * k * n,),), row.query.dtype, row.query.complexity)
        elementwise.append(measured(("neg", "numpy", "cpu"), config, row.seconds, row.split))
    models = fit_models(matmul + elementwise)
    for combo, model in models.items():
        assert model.params["w1"].shape == (len(model.features), 8), combo
        assert model.parameter_count == parameter_count(len(model.features))
        assert model.summary["mape"] < 6.0, combo


def test_a_model_does_not_change_when_other_combinations_are_trained_beside_it():
    """Re-measuring one combination (more rows, another order) leaves the others' models:
    each model's validation rows and initial weights follow its own name."""
    matmul = synthetic("matmul", "numpy")
    other = synthetic("matmul", "jax", seed=2)
    key = ("matmul", "numpy", "cpu")
    alone = fit_models(matmul)[key]
    beside = fit_models(other[:40] + matmul)[key]
    beside_more = fit_models(matmul + other)[key]
    configs = [r.query for r in matmul]
    for model in (beside, beside_more):  # equal but for float32 sums over padded rows
        np.testing.assert_allclose(predict_seconds(model, configs),
                                   predict_seconds(alone, configs), rtol=2e-3)
    with pytest.raises(ValueError, match="2 names for 1"):
        train_group([TrainingSet(np.zeros((8, 2)), np.zeros(8))], 4, names=["a", "b"])


def test_held_out_rows_never_shape_the_normalisation():
    rows = synthetic("matmul", "numpy")
    poisoned = [measured(r.combination, r.query, r.seconds * (1000 if r.split == "test" else 1),
                            r.split) for r in rows]
    clean, dirty = fit_models(rows), fit_models(poisoned)
    key = ("matmul", "numpy", "cpu")
    assert clean[key].normalisation == dirty[key].normalisation
    assert dirty[key].summary["mape"] > 99  # predictions stay 1000x below the test rows


def test_model_file_round_trip_predicts_the_same(tmp_path):
    rows = synthetic("matmul", "numpy") + synthetic("matmul", "jax", seed=1)
    models = fit_models(rows)
    link = Link(1e-5, 1e-9)
    ModelSet({"id": "abc"}, models, TransferModel({("opencl", "to_device"): link})).save(
        tmp_path / "m.json")
    loaded = ModelSet.load(tmp_path / "m.json")
    assert set(loaded.models) == set(models)
    assert loaded.transfers.seconds(1000, "cpu", "opencl") == pytest.approx(1e-5 + 1e-6)
    configs = [r.query for r in rows[:10]]
    for combo, model in models.items():
        direct = predict_seconds(model, configs)
        batched = loaded.predict([(combo, c) for c in configs])
        np.testing.assert_allclose(batched, direct, rtol=1e-5)


def test_the_step_overhead_is_saved_checked_and_absent_from_older_files(tmp_path):
    models = fit_models(synthetic("matmul", "numpy"))
    ModelSet({"id": "abc"}, models, step_overhead_s=4e-7).save(tmp_path / "m.json")
    assert ModelSet.load(tmp_path / "m.json").step_overhead_s == 4e-7
    data = json.loads((tmp_path / "m.json").read_text())
    del data["step_overhead_s"]  # a file written before the field
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert ModelSet.load(tmp_path / "old.json").step_overhead_s == 0.0
    for bad in (-1e-7, 0.5, "fast", True):
        data["step_overhead_s"] = bad
        (tmp_path / "bad.json").write_text(json.dumps(data))
        with pytest.raises(ModelFileError, match="step_overhead_s"):
            ModelSet.load(tmp_path / "bad.json")


def test_no_prediction_is_faster_than_the_fastest_rate_its_training_rows_reached(tmp_path):
    rows = synthetic("matmul", "numpy")
    combo = ("matmul", "numpy", "cpu")
    model = fit_models(rows)[combo]
    train = [r for r in rows if r.split == "train"]
    for dtype in ("f32", "f64"):
        fastest = max(r.query.complexity / r.seconds for r in train if r.query.dtype == dtype)
        assert model.summary["max_rate"][dtype] == pytest.approx(fastest)
    ModelSet({"id": "x"}, {combo: model}).save(tmp_path / "m.json")
    loaded = ModelSet.load(tmp_path / "m.json")
    # 20000^3 is 37,000 times the largest product trained on (600^3)
    huge = Query("matmul", ((20000, 20000), (20000, 20000)), "f64", 8e12)
    floor = 8e12 / (RATE_MARGIN * model.summary["max_rate"]["f64"])
    assert loaded.predict([(combo, huge)])[0] >= floor * (1 - 1e-9)
    assert predict_seconds(model, [huge])[0] >= floor * (1 - 1e-9)
    assert model.summary["max_complexity"] == max(r.query.complexity for r in train)
    # the floor never lowers a prediction, and within the trained range it is off
    fast = constant_model("matmul", "numpy", "cpu", 1e-6)
    fast.summary.update(max_rate={"f64": 1e9}, max_complexity=1e6)
    models = ModelSet({"id": "x"}, {combo: fast})
    assert models.predict([(combo, huge)])[0] == pytest.approx(8e12 / (RATE_MARGIN * 1e9))
    inside = Query("matmul", ((100, 100), (100, 100)), "f64", 1e6)
    assert models.predict([(combo, inside)])[0] == pytest.approx(1e-6)
    slow = constant_model("matmul", "numpy", "cpu", 1e6)
    slow.summary.update(max_rate={"f64": 1e9}, max_complexity=1e6)
    assert ModelSet({"id": "x"}, {combo: slow}).predict([(combo, huge)])[0] == pytest.approx(1e6)


def test_a_launch_bound_combination_gets_no_rate_floor():
    """A GPU kernel at calibration's sizes takes its launch time whatever the work: its
    rate is still rising at the largest size, so the fastest rate seen is no limit."""
    rows = [measured(r.combination, r.query, 1e-5 * (1 + 0.01 * (i % 3)), r.split)
            for i, r in enumerate(synthetic("matmul", "cupy"))]
    model = fit_models(rows)[("matmul", "cupy", "cpu")]
    assert edge_slope([r for r in rows if r.split == "train"]) < THROUGHPUT_BOUND_SLOPE
    assert "max_rate" not in model.summary
    huge = Query("matmul", ((20000, 20000), (20000, 20000)), "f64", 8e12)
    assert rate_floor(model, huge) == 0.0


@pytest.mark.parametrize("field, bad", [
    ("max_rate", [1.0]), ("max_rate", {"f64": 0}), ("max_rate", {"f64": -3.0}),
    ("max_rate", {"f64": "fast"}), ("max_rate", {"f64": True}), ("max_complexity", -1.0),
    ("max_complexity", None)])
def test_a_malformed_rate_limit_is_refused(tmp_path, field, bad):
    models = fit_models(synthetic("matmul", "numpy"))
    path = tmp_path / "m.json"
    ModelSet({"id": "x"}, models).save(path)
    data = json.loads(path.read_text())
    data["models"][0]["summary"][field] = bad
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="max_rate"):
        ModelSet.load(path)


def test_the_back_ends_starts_are_saved_checked_and_absent_from_older_files(tmp_path):
    models = fit_models(synthetic("matmul", "numpy"))
    ModelSet({"id": "abc"}, models, backend_start_s={"jax": 0.34}).save(tmp_path / "m.json")
    assert ModelSet.load(tmp_path / "m.json").backend_start_s == {"jax": 0.34}
    data = json.loads((tmp_path / "m.json").read_text())
    del data["backend_start_s"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert ModelSet.load(tmp_path / "old.json").backend_start_s == {}
    for bad in ({"jax": -1}, {"jax": "slow"}, [0.3], {"jax": True}, {"jax": 100.0}):
        data["backend_start_s"] = bad
        (tmp_path / "bad.json").write_text(json.dumps(data))
        with pytest.raises(ModelFileError, match="backend_start_s"):
            ModelSet.load(tmp_path / "bad.json")


def test_batched_prediction_of_an_unknown_combination_is_nan():
    models = ModelSet({"id": "x"}, fit_models(synthetic("matmul", "numpy")))
    config = synthetic("matmul", "numpy")[0].query
    predicted = models.predict([(("matmul", "numpy", "cpu"), config),
                                (("matmul", "nope", "cpu"), config)])
    assert math.isfinite(predicted[0]) and math.isnan(predicted[1])


@pytest.mark.parametrize("content, says", [
    (b"\x00\x01garbage", "not a readable JSON model file"),
    (b'{"models": []', "not a readable JSON model file"),
    (b'{"schema_version": 99, "fingerprint": {}, "models": []}', "upgrade annc"),
    (b'{"schema_version": 1}', "no models list"),
    (b'[1, 2]', "no schema_version"),
])
def test_a_broken_model_file_is_a_clear_error_naming_it(tmp_path, content, says):
    path = tmp_path / "models.json"
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as error:
        ModelSet.load(path)
    assert str(path) in str(error.value) and says in str(error.value)
    assert path.read_bytes() == content


def test_inconsistent_weights_are_refused(tmp_path):
    models = fit_models(synthetic("matmul", "numpy"))
    path = tmp_path / "m.json"
    ModelSet({"id": "x"}, models).save(path)
    data = json.loads(path.read_text())
    data["models"][0]["weights"]["w1"] = [[1.0]]
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="inconsistent shapes"):
        ModelSet.load(path)
    assert data["schema_version"] == SCHEMA_VERSION


def test_transfer_link_fits_latency_and_bandwidth():
    sizes_ = [1e3, 1e4, 1e5, 1e6, 1e7]
    link = Link.fit(sizes_, [2e-5 + s * 1e-9 for s in sizes_])
    assert link.latency_s == pytest.approx(2e-5, rel=1e-3)
    assert link.seconds_per_byte == pytest.approx(1e-9, rel=1e-3)
    model = TransferModel({("opencl", "to_device"): link, ("opencl", "to_host"): link})
    assert model.seconds(1e6, "cpu", "cpu") == 0
    assert model.seconds(1e6, "opencl", "cpu") == pytest.approx(link.seconds(1e6))


def test_baselines_score_the_same_rows():
    rows = synthetic("matmul", "numpy")
    key = ("matmul", "numpy", "cpu")
    linear = families.score(families.create("linear_complexity").fit(rows), rows)[key]
    plain = families.score(families.Networks("plain", False, 8).fit(rows), rows)[key]
    roofline = families.create("roofline", ({"f32": 1.5e9, "f64": 1.5e9}, 1e12))
    roof = families.score(roofline.fit(rows), rows)[key]
    augmented = families.score(families.create("augmented").fit(rows), rows)[key]
    assert all(math.isfinite(v) for v in (linear, plain, roof))
    assert augmented < linear
    # the shipped models' own held-out score is the families' scoring, to the bit
    assert augmented == fit_models(rows)[key].summary["mape"]
    assert families.create("roofline") is None  # not without the machine's peaks
    with pytest.raises(ValueError, match="no model family"):
        families.create("oracle")
    assert mape(np.array([1.1]), np.array([1.0])) == pytest.approx(10.0)


def test_evaluate_reports_each_combinations_noise_floor_beside_its_error():
    from annc.evaluation import evaluate
    from annc.hardware.calibration.runs import NoiseFloor

    rows = synthetic("matmul", "numpy") + synthetic("matmul", "strassen", seed=1)
    noise = NoiseFloor(0.02, 10, {("matmul", "numpy", "cpu"): 0.01})
    result = evaluate(rows, noise, None)
    by_variant = {c["variant"]: c for c in result["combos"]}
    assert by_variant["numpy"]["noise_mape"] == pytest.approx(1.0)
    assert by_variant["strassen"]["noise_mape"] is None
    summary = result["summary"]
    assert summary["noise_floor_mape"] == pytest.approx(2.0)
    assert summary["median_noise_mape"] == pytest.approx(1.0)
    assert summary["combinations"] == 2 and summary["max_params"] <= 75
    assert json.dumps({k: v for k, v in result.items() if not k.startswith("_")})
