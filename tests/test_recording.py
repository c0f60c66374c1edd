"""Learning from use: recording runs and tunes, staleness, `--measure` and its wisdom,
`calibrate --quick`, and `evaluate --against`."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from model_fixtures import install_for_this_machine, model_set

from annc.cli import main
from annc.dsl.records import Combination, Query, Record
from annc.hardware import events
from annc.hardware.calibration.reference_data import load_reference
from annc.hardware.calibration.store import MeasurementStore
from annc.hardware.devices.fingerprint import fingerprint
from annc.passes.models import corrections_path, load_models, wisdom_path
from annc.predictor.adaptation import Corrections
from annc.recording import record

MATMUL = ("matmul", "numpy", "cpu")

THREE_PRODUCTS = """
input A : f64[256, 256]
input B : f64[256, 256]
repeat 4 {
  C = matmul(A, B)
  D = matmul(B, A)
  E = matmul(A, A)
  A = (C + D + E) * 0.0001
}
output A
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home with recording on."""
    path = tmp_path / "home"
    monkeypatch.setenv("ANNC_HOME", str(path))
    monkeypatch.delenv("ANNC_NO_RECORD", raising=False)
    return path


def program(tmp_path: Path, text: str = THREE_PRODUCTS) -> str:
    path = tmp_path / "p.ann"
    path.write_text(text)
    return str(path)


def observations(home: Path, source: str | None = None) -> list:
    with MeasurementStore(home / "measurements.sqlite") as store:
        return store.observations(fingerprint().id, [source] if source else None)


def test_a_run_records_what_it_measured_and_the_next_compile_learns_from_it(
        home, tmp_path, capsys):
    install_for_this_machine(model_set({MATMUL: 1e-5}), home)  # predicts far too fast
    assert main(["run", program(tmp_path), "--report", "json"]) == 0
    ran = json.loads(capsys.readouterr().out)
    seen = observations(home, "run")
    matmuls = [o for o in seen if o.kernel == "matmul"]
    assert len(matmuls) == 3 and all(o.variant == "numpy" and o.repeats == 4
                                     for o in matmuls)
    assert all(o.seconds > 1e-4 and o.predicted_s == pytest.approx(1e-5) for o in matmuls)
    corrections = Corrections.load(corrections_path(fingerprint().id), fingerprint().id,
                                   _base(home))
    assert len(corrections.residuals[MATMUL]) == 3
    assert main(["explain", program(tmp_path), "--report", "json", "--measure", "never"]) == 0
    explained = json.loads(capsys.readouterr().out)
    first = next(op for op in explained["ops"] if op["kernel"] == "matmul")
    chosen = next(c for c in first["candidates"] if c["variant"] == "numpy")
    assert chosen["base_s"] == pytest.approx(1e-5)
    assert chosen["predicted_s"] > 3e-5  # the correction moved it toward what ran
    assert chosen["low_s"] < chosen["predicted_s"] < chosen["high_s"]
    assert ran["ops"][0]["measured_s"] > 0


def _base(home: Path) -> str:
    from annc.predictor.adaptation import digest

    return digest(home / "models" / f"{fingerprint().id}.json")


def test_models_that_disagree_with_runs_are_marked_stale(home, tmp_path, capsys):
    install_for_this_machine(model_set({MATMUL: 1e-7}), home)
    assert main(["run", program(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["run", program(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "models look stale" in err and "annc calibrate --quick" in err
    assert main(["explain", program(tmp_path), "--measure", "never"]) == 0
    assert "models look stale" in capsys.readouterr().err


def test_staleness_follows_whether_runs_agree_with_the_predictions(home):
    """Judged on steady ops only; set when they disagree beyond the noise, cleared when a
    later run agrees, left alone when too few ops say anything."""
    install_for_this_machine(model_set({MATMUL: 1e-3}), home)
    chosen = load_models()
    shapes = ((256, 256), (256, 256))

    def ran(seconds: float, ops: int = 3, executions: int = 4) -> list[Record]:
        return [Record(Combination(*MATMUL), Query("matmul", shapes, "f64", math.nan), seconds,
                       "run", repeats=executions, predicted_s=1e-3, base_s=1e-3)] * ops

    def stale() -> dict | None:
        return json.loads(corrections_path(fingerprint().id).read_text())["stale"]

    record(chosen, ran(1.05e-3), "run", drift=True)
    assert stale() is None
    record(chosen, ran(2e-3), "run", drift=True)
    assert stale()["ops"] == 3 and stale()["median_error"] == pytest.approx(1.0)
    record(chosen, ran(1e-3, ops=2), "run", drift=True)  # too few ops to judge
    record(chosen, ran(1e-3, executions=2), "run", drift=True)  # not steady: not judged
    assert stale() is not None
    assert "models look stale" in " ".join(load_models().notes)
    record(chosen, ran(0.9e-3), "run", drift=True)
    assert stale() is None and not any("stale" in n for n in load_models().notes)


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_recording_can_be_turned_off(home, tmp_path, monkeypatch, how):
    install_for_this_machine(model_set({MATMUL: 1e-5}), home)
    args = ["run", program(tmp_path)]
    if how == "flag":
        args.append("--no-record")
    else:
        monkeypatch.setenv("ANNC_NO_RECORD", "1")
    before = events.snapshot()["recorded"]
    assert main(args) == 0
    assert events.snapshot()["recorded"] == before
    assert not corrections_path(fingerprint().id).exists()
    assert not (home / "measurements.sqlite").exists()


def test_a_home_that_cannot_be_written_just_skips_recording(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    monkeypatch.setenv("ANNC_HOME", str(blocker / "home"))
    monkeypatch.delenv("ANNC_NO_RECORD", raising=False)
    before = events.snapshot()["recorded"]
    assert main(["run", program(tmp_path)]) == 0
    assert events.snapshot()["recorded"] == before
    assert "Traceback" not in capsys.readouterr().err


def test_a_read_only_home_just_skips_recording(home, tmp_path, monkeypatch, capsys):
    install_for_this_machine(model_set({MATMUL: 1e-5}), home)
    import annc.hardware.devices.home

    monkeypatch.setattr(annc.hardware.devices.home.os, "access", lambda path, mode: False)
    before = events.snapshot()["recorded"]
    assert main(["run", program(tmp_path)]) == 0
    assert events.snapshot()["recorded"] == before
    assert not (home / "measurements.sqlite").exists()


def test_ctrl_c_while_recording_loses_nothing_already_kept(home, tmp_path, monkeypatch):
    install_for_this_machine(model_set({MATMUL: 1e-5}), home)
    assert main(["run", program(tmp_path)]) == 0
    path = corrections_path(fingerprint().id)
    kept, rows = path.read_bytes(), len(observations(home))

    def interrupted(self, where):
        raise KeyboardInterrupt

    monkeypatch.setattr(Corrections, "save", interrupted)
    assert main(["run", program(tmp_path)]) == 130
    assert path.read_bytes() == kept  # the last good file, whole
    assert len(observations(home)) > rows  # the observations were committed first
    monkeypatch.undo()
    monkeypatch.setenv("ANNC_HOME", str(home))
    monkeypatch.delenv("ANNC_NO_RECORD", raising=False)
    assert main(["run", program(tmp_path)]) == 0  # and everything still opens


def test_a_corrupt_or_foreign_corrections_file_is_ignored_with_a_note(home, tmp_path, capsys):
    install_for_this_machine(model_set({MATMUL: 1e-5}), home)
    path = corrections_path(fingerprint().id)
    path.write_text('{"kind": "annc model corrections", "schema_version": 1, '
                    '"fingerprint": "another-machine"}')
    assert main(["explain", program(tmp_path), "--report", "json", "--no-record",
                 "--measure", "never"]) == 0
    captured = capsys.readouterr()
    assert "another-machine" in captured.err and "not using it" in captured.err
    explained = json.loads(captured.out)
    chosen = next(c for c in explained["ops"][0]["candidates"] if c["variant"] == "numpy")
    assert chosen["predicted_s"] == pytest.approx(1e-5)  # not loaded: the prior


def test_a_corrupt_wisdom_file_is_ignored_with_a_note(home, tmp_path, capsys):
    install_for_this_machine(model_set({MATMUL: 1e-5}), home)
    path = wisdom_path(fingerprint().id)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff\xfe not json")
    assert main(["compile", program(tmp_path), "--emit", "selected", "--no-record"]) == 0
    assert "wisdom" in capsys.readouterr().err


SMALL_PRODUCT = """
input A : f64[64, 64]
repeat {trips} {{
  A = matmul(A, A) * 0.01
}}
output A
"""
CLOSE = {MATMUL: 1e-3, ("matmul", "numpy.reference", "cpu"): 1.1e-3}


def test_measure_never_never_measures(home, tmp_path, capsys):
    install_for_this_machine(model_set(CLOSE), home)
    before = events.snapshot()["measured"]
    text = SMALL_PRODUCT.format(trips=100_000)
    assert main(["compile", program(tmp_path, text), "--emit", "selected",
                 "--measure", "never"]) == 0
    assert events.snapshot()["measured"] == before
    assert not wisdom_path(fingerprint().id).exists()


def test_measure_auto_measures_close_candidates_of_long_programs_only(home, tmp_path, capsys):
    install_for_this_machine(model_set(CLOSE), home)
    before = events.snapshot()["measured"]
    assert main(["explain", program(tmp_path, SMALL_PRODUCT.format(trips=3)), "--report",
                 "json"]) == 0
    assert events.snapshot()["measured"] == before  # 3 ms at stake: not worth it
    capsys.readouterr()
    assert main(["explain", program(tmp_path, SMALL_PRODUCT.format(trips=1000)), "--report",
                 "json"]) == 0
    assert events.snapshot()["measured"] == before + 2
    explained = json.loads(capsys.readouterr().out)
    matmul = next(op for op in explained["ops"] if op["kernel"] == "matmul")
    modelled = [c for c in matmul["candidates"] if c["predicted_s"] is not None]
    assert {c["basis"] for c in modelled} == {"measured"} and len(modelled) == 2
    assert 0 < explained["measure_s"] < 0.05 * 1.0 + 0.5  # within its budget, roughly


def test_what_was_measured_is_kept_as_wisdom_and_reused(home, tmp_path, capsys):
    install_for_this_machine(model_set(CLOSE), home)
    text = program(tmp_path, SMALL_PRODUCT.format(trips=5))
    before = events.snapshot()["measured"]
    assert main(["compile", text, "--emit", "selected", "--measure", "always"]) == 0
    assert events.snapshot()["measured"] == before + 2
    assert len(observations(home, "measure")) == 2
    capsys.readouterr()
    assert main(["explain", text, "--report", "json", "--measure", "always"]) == 0
    assert events.snapshot()["measured"] == before + 2  # decided from wisdom
    matmul = next(op for op in json.loads(capsys.readouterr().out)["ops"]
                  if op["kernel"] == "matmul")
    modelled = [c for c in matmul["candidates"] if c["predicted_s"] is not None]
    assert {c["basis"] for c in modelled} == {"wisdom"} and len(modelled) == 2


def test_selected_ir_records_the_interval(home, tmp_path, capsys):
    install_for_this_machine(model_set({MATMUL: 1e-3}), home)
    assert main(["compile", program(tmp_path), "--emit", "selected", "--no-record"]) == 0
    out = capsys.readouterr().out
    assert "predicted_low_s" in out and "predicted_high_s" in out


def test_tune_records_every_candidate_as_observations_and_wisdom(home, tmp_path, capsys):
    install_for_this_machine(model_set({MATMUL: 1e-5}), home)
    assert main(["tune", program(tmp_path, SMALL_PRODUCT.format(trips=2)), "--variants",
                 "numpy,numpy.reference", "--report", "json"]) == 0
    tuned = observations(home, "tune")
    assert {o.variant for o in tuned if o.kernel == "matmul"} == {"numpy", "numpy.reference"}
    capsys.readouterr()
    assert main(["explain", program(tmp_path, SMALL_PRODUCT.format(trips=2)), "--report",
                 "json", "--measure", "never"]) == 0
    matmul = next(op for op in json.loads(capsys.readouterr().out)["ops"]
                  if op["kernel"] == "matmul")
    numpy = next(c for c in matmul["candidates"] if c["variant"] == "numpy")
    assert numpy["basis"] == "wisdom"


def test_calibrate_quick_adapts_and_resumes(home, capsys):
    args = ["calibrate", "--quick", "--kernels", "add", "--variants", "numpy",
            "--budget", "60"]
    assert main(args) == 0
    err = capsys.readouterr().err
    quick = observations(home, "quick")
    assert quick and {o.kernel for o in quick} == {"add"}
    corrections = json.loads(corrections_path(fingerprint().id).read_text())
    assert [(r["kernel"], r["variant"]) for r in corrections["residuals"]] == [("add", "numpy")]
    assert corrections["history"][-1]["source"] == "quick"
    assert "adapted 1 combination" in err
    assert "choices: no program has run on this machine yet" in err  # nothing to compare
    assert main(args) == 0
    assert "measured earlier today were kept" in capsys.readouterr().err
    assert len(observations(home, "quick")) == len(quick)


def test_evaluate_against_another_day_shows_adaptation_learning(home, tmp_path, capsys):
    reference = load_reference()
    assert reference is not None
    slower = [dataclasses.replace(m, fingerprint=fingerprint().id, seconds=2 * m.measured_s)
              for m in reference.measurements
              if (m.kernel, m.variant) == ("add", "numpy") and m.status == "ok"
              and m.split in ("train", "test")]
    db = tmp_path / "another-day.sqlite"
    with MeasurementStore(db) as store:
        for m in slower:
            store.add(m)
    assert main(["evaluate", "--against", str(db), "--report", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    curve = {(p["corrections"], p["k"]): p["median_mape"] for p in result["curve"]}
    assert result["combinations"] == 1
    assert 40 < curve[("annc's", 0)] < 60  # predicts half the time
    # five rows already move the prediction onto the new day; more rows only refine it
    # within the data's noise
    assert curve[("annc's", 5)] < 30 and curve[("annc's", 25)] < 30
    assert curve[("retrained from scratch", "full")] < 30


def test_ctrl_c_during_calibrate_quick_keeps_what_was_measured(home, monkeypatch, capsys):
    from annc.hardware.measure.worker import MeasureWorker

    real = MeasureWorker.measure
    calls: list[int] = []

    def interrupted_at_the_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MeasureWorker, "measure", interrupted_at_the_second)
    args = ["calibrate", "--quick", "--kernels", "add", "--variants",
            "numpy,numpy.reference", "--budget", "60"]
    assert main(args) == 130
    assert "run the same command again" in capsys.readouterr().err
    assert len(observations(home, "quick")) == 1
    monkeypatch.setattr(MeasureWorker, "measure", real)
    assert main(args) == 0
    assert "1 measured earlier today were kept" in capsys.readouterr().err
    assert corrections_path(fingerprint().id).exists()
