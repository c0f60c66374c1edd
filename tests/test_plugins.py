"""A variant of one's own, from outside the repository: the example plugin package
`examples/plugins/annc-blas-sum` is installed with pip into a folder of its own (never
into annc's environment), then listed with its origin, checked against the reference,
forced, calibrated alone, trained on top of the shipped models, and chosen by selection
where it is fastest, each in a fresh `annc` process as a user would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from entry_points import install_entry_point
from model_fixtures import model_set

from annc.cli import main
from annc.modeling import on_top_of
from annc.predictor.transfers import TransferModel

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "examples" / "plugins" / "annc-blas-sum"
PROGRAM = PACKAGE / "total.ann"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin, installed by pip into a folder of its own."""
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(PACKAGE, work / "source")  # pip writes build files beside it
    target = work / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(target), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def annc(site: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`annc ARGS` in a fresh process that sees the plugin, with its own home."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
           "ANNC_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "annc", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)


def json_of(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_plugin_is_listed_with_its_origin_and_passes_the_check(
        site: Path, tmp_path: Path) -> None:
    rows = json_of(annc(site, tmp_path, "variants", "--kernels", "sum", "--check",
                        "--report", "json"))["variants"]
    origins = {row["variant"]: row["origin"] for row in rows}
    assert origins["blas"] == "annc-blas-sum 0.1.0"
    assert origins["numpy"] == "built-in"
    blas = next(row for row in rows if row["variant"] == "blas")
    assert blas["check"]["failed"] == 0 and blas["check"]["passed"] > 0


def test_a_run_can_force_the_plugin(site: Path, tmp_path: Path) -> None:
    saved = tmp_path / "out.npz"
    report = json_of(annc(site, tmp_path, "run", str(PROGRAM), "--variant", "sum=blas",
                          "--save", str(saved), "--report", "json"))
    assert [op["variant"] for op in report["ops"]] == ["blas"]
    total = float(np.load(saved)["S"])
    forced = json_of(annc(site, tmp_path, "run", str(PROGRAM), "--variant", "sum=numpy",
                          "--save", str(tmp_path / "numpy.npz"), "--report", "json"))
    assert [op["variant"] for op in forced["ops"]] == ["numpy"]
    assert total == pytest.approx(float(np.load(tmp_path / "numpy.npz")["S"]), rel=1e-5)
    assert total > 0  # a sum of the same generated inputs (seed 0), in [0, 1)


def test_calibrated_alone_and_trained_it_wins_where_it_is_fastest(
        site: Path, tmp_path: Path) -> None:
    calibrated = annc(site, tmp_path, "calibrate", "--kernels", "sum", "--variants", "blas")
    assert calibrated.returncode == 0, calibrated.stderr
    assert "(300 ok)" in calibrated.stderr  # measured by the worker, which loads plugins
    trained = annc(site, tmp_path, "train")
    assert trained.returncode == 0, trained.stderr
    models = json.loads(next((tmp_path / "models").glob("*.json")).read_text())["models"]
    shipped = json.loads((ROOT / "predictor" / "data" / "default_models.json").read_text())
    combos = {(m["kernel"], m["variant"], m["device"]) for m in models}
    assert ("sum", "blas", "cpu") in combos  # added on top of the shipped models, and
    assert {(m["kernel"], m["variant"], m["device"])  # none of those lost its model
            for m in shipped["models"]} <= combos

    candidates = "blas,numpy,numpy.reference,halide,jax"
    small = json_of(annc(site, tmp_path, "tune", str(PROGRAM), "--variants", candidates,
                         "--report", "json"))["ops"][0]
    assert small["chosen"]["variant"] == "blas"
    measured = {c["variant"]: c["measured_s"] for c in small["candidates"]}
    assert measured["blas"] < min(measured["numpy"], measured["numpy.reference"])

    large = json_of(annc(site, tmp_path, "tune", str(PROGRAM), "-D", "N=3000", "--variants",
                         candidates, "--report", "json"))["ops"][0]
    assert large["chosen"]["variant"] != "blas"  # reading the ones too, it loses there
    measured = {c["variant"]: c["measured_s"] for c in large["candidates"]}
    assert measured["blas"] > measured[large["chosen"]["variant"]]


def test_a_broken_plugin_is_a_note_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(install_entry_point(tmp_path / "site", "annc-broken",
                                                        "no_such_module:variants")))
    assert main(["variants", "--kernels", "sum", "--report", "json"]) == 0
    captured = capsys.readouterr()
    assert "note: variant plugin variants = no_such_module:variants (annc-broken 0.1)" \
        in captured.err
    assert "No module named 'no_such_module'" in captured.err
    assert "Traceback" not in captured.err
    assert {row["variant"] for row in json.loads(captured.out)["variants"]} >= {"numpy"}


def test_trained_models_go_on_top_of_the_set_in_use() -> None:
    """A combination trained anew replaces its model; every other keeps its own; the
    trained set's machine and overheads win, and copy links it did not measure stay."""
    base = model_set({("sum", "numpy", "cpu"): 1e-3, ("add", "numpy", "cpu"): 2e-3})
    trained = model_set({("sum", "numpy", "cpu"): 5e-4, ("sum", "blas", "cpu"): 1e-4})
    trained.transfers = TransferModel({})
    trained.step_overhead_s = 2e-6
    merged = on_top_of(base, trained)
    assert set(merged.models) == {("sum", "numpy", "cpu"), ("add", "numpy", "cpu"),
                                  ("sum", "blas", "cpu")}
    assert merged.models[("sum", "numpy", "cpu")] is trained.models[("sum", "numpy", "cpu")]
    assert merged.models[("add", "numpy", "cpu")] is base.models[("add", "numpy", "cpu")]
    assert merged.transfers.links == base.transfers.links
    assert merged.step_overhead_s == 2e-6
