"""A run keeps its selected plan; the same run again skips selection and imports only the
backends its plan uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import install_for_this_machine, model_set

from annc.hardware.devices.signing import record_signature
from annc.running import run_file

PROGRAM = "input x : f64[64]\nrepeat 3 {\n  x = x + 1\n}\ny = x * 2\noutput y\n"
MODELS = {("add", "numpy", "cpu"): 1e-6, ("mul", "numpy", "cpu"): 1e-6,
          ("add", "jax", "cpu"): 1e-3, ("mul", "halide", "cpu"): 1e-3}


@pytest.fixture
def program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ANNC_HOME", str(home))
    install_for_this_machine(model_set(MODELS), home)
    path = tmp_path / "p.ann"
    path.write_text(PROGRAM)
    return path


def test_a_second_run_takes_the_kept_plan_and_gives_the_same_result(program: Path):
    first = run_file(program, seed=1)
    second = run_file(program, seed=1)
    assert "plan kept" not in first.report["events"]
    assert second.report["events"]["plan kept"] == 1
    assert np.array_equal(first.outputs["y"], second.outputs["y"])
    assert [(o["variant"], o["device"]) for o in first.report["ops"]] == \
        [(o["variant"], o["device"]) for o in second.report["ops"]] == [("numpy", "cpu")] * 2
    assert first.report["models"] == second.report["models"]


def test_a_changed_model_file_or_program_is_selected_anew(program: Path, tmp_path: Path):
    run_file(program)
    install_for_this_machine(model_set({**MODELS, ("add", "jax", "cpu"): 1e-9}),
                             tmp_path / "home")
    again = run_file(program, builds="first")  # the jax build is made before the run
    assert "plan kept" not in again.report["events"]
    assert again.report["ops"][0]["variant"] == "jax"
    program.write_text(PROGRAM.replace("x * 2", "x * 3"))
    assert "plan kept" not in run_file(program).report["events"]


def test_a_file_that_is_not_annc_s_plan_is_ignored_and_left(program: Path, tmp_path: Path):
    run_file(program)
    (kept,) = (tmp_path / "home" / "plans").glob("*.json")
    kept.write_text("{not json")
    result = run_file(program)
    assert "plan kept" not in result.report["events"] and result.outputs["y"].shape == (64,)
    assert kept.read_text() == "{not json"
    assert any("not a plan annc wrote here" in note for note in result.notes)


def test_a_signed_plan_that_no_longer_holds_is_selected_anew_and_replaced(program: Path,
                                                                          tmp_path: Path):
    run_file(program)
    (kept,) = (tmp_path / "home" / "plans").glob("*.json")
    entry = json.loads(kept.read_text())
    entry["ops"][0]["variant"] = "no.such.variant"
    entry["signature"] = record_signature(entry)
    kept.write_text(json.dumps(entry))
    result = run_file(program)
    assert "plan kept" not in result.report["events"] and result.outputs["y"].shape == (64,)
    assert json.loads(kept.read_text())["ops"][0]["variant"] == "numpy"
    assert any("no longer holds" in note for note in result.notes)


def test_a_kept_plan_imports_only_the_backends_it_uses(program: Path):
    run_file(program)
    script = ("import sys; from annc.running import run_file; "
              f"r = run_file({str(program)!r}); print(r.report['events']['plan kept'], "
              "sorted(m for m in sys.modules if m.startswith(('annc.hardware.variants.', 'jax'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 ")
    assert "cpu_numpy" in done.stdout
    for module in ("jax_xla", "halide.cpu", "'jax'"):
        assert module not in done.stdout
