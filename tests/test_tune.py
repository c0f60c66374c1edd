"""`annc tune`: every candidate of every op, measured on its real shapes, as DESIGN.md's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_fixtures import install_for_this_machine, model_set

from annc.cli import main
from annc.hardware.variants import KERNELS

HEAT = Path(__file__).parent.parent / "examples" / "heat.ann"
QUICK = ["-D", "N=16", "-D", "STEPS=2", "--target", "cpu"]


def tune_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["tune", str(HEAT), *QUICK, "--report", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_tune_reports_every_candidate_of_every_op(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    only_reference = {(k, "numpy.reference", "cpu"): 1e-6 for k in KERNELS}
    install_for_this_machine(model_set(only_reference), tmp_path / "home")
    report = tune_json(capsys, "--variants", "numpy,numpy.reference")
    assert list(report) == ["ops"]
    ops = report["ops"]
    assert [op["index"] for op in ops] == list(range(len(ops)))
    assert {op["kernel"] for op in ops} >= {"conv2d", "add", "mul", "sum"}
    for op in ops:
        assert list(op) == ["index", "kernel", "shapes", "trips", "chosen", "candidates"]
        assert op["trips"] in (1, 2)  # STEPS=2: inside the loop twice, after it once
        assert op["chosen"] == {"variant": "numpy.reference", "device": "cpu"}
        names = {c["variant"] for c in op["candidates"]}
        assert "numpy.reference" in names and names <= {"numpy", "numpy.reference"}
        for candidate in op["candidates"]:
            assert list(candidate) == ["variant", "device", "predicted_s", "measured_s",
                                       "compile_s", "cached"]
            assert candidate["cached"] is False  # numpy variants have nothing to cache
            assert candidate["device"] == "cpu"
            if candidate["variant"] == "numpy.reference":  # the pass's prediction
                assert candidate["predicted_s"] == pytest.approx(1e-6)
            else:  # no model, no prediction
                assert candidate["predicted_s"] is None
            assert isinstance(candidate["measured_s"], float) and candidate["measured_s"] > 0
    conv = next(op for op in ops if op["kernel"] == "conv2d")
    assert conv["shapes"] == [[16, 16], [3, 3]] and conv["trips"] == 2
    assert next(op for op in ops if op["kernel"] == "sum")["trips"] == 1


def test_a_crashing_candidate_is_reported_not_fatal(
        capsys: pytest.CaptureFixture[str], misbehaving_variants: None) -> None:
    assert main(["tune", str(HEAT), *QUICK, "--report", "json", "--variants",
                 "numpy,test.segfault,test.failing"]) == 0
    captured = capsys.readouterr()
    ops = json.loads(captured.out)["ops"]
    sums = next(op for op in ops if op["kernel"] == "sum")
    measured = {c["variant"]: c["measured_s"] for c in sums["candidates"]}
    assert measured["test.segfault"] is None and measured["test.failing"] is None
    assert measured["numpy"] > 0
    assert "SIGSEGV" in captured.err and "always fails" in captured.err


def test_table_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tune", str(HEAT), *QUICK, "--variants", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "conv2d" in out and "fastest" in out
