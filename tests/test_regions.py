"""Regions end to end: calibrated, modelled, chosen, explained, run, kept and overridden."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects.builtin import StringAttr

import annc
from annc.compiler import compile_program
from annc.dsl.dialect import KernelOp, RegionOp
from annc.hardware import events
from annc.hardware.calibration.reference_data import load_reference
from annc.hardware.calibration.region_sampling import region_plan
from annc.hardware.calibration.store import MeasurementStore
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.spec import RegionOp as SpecOp
from annc.hardware.variants.regions.spec import RegionSpec, Summary, summary
from annc.passes.tiers import TIE
from annc.predictor.features import feature_names, is_region
from annc.predictor.fitting import fit_models
from annc.running import run_module

ROOT = Path(__file__).resolve().parent.parent

HEAT = """
param N = 16
param STEPS = 5
input T : f32[N, N]
input alpha : f32
const L : f32[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
repeat STEPS {
  T = T + 0.2 * alpha * conv2d(T, L)
}
E = sum(T * T)
output T, E
"""


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANNC_NO_RECORD", "1")


def _selected(text: str, **params: int):
    return compile_program(text, "heat.ann", params or None, ["cpu"], "selected",
                           measure="never", record=False)


def _regions(module) -> list[RegionOp]:
    return [op for op in module.walk() if isinstance(op, RegionOp)]


def test_the_region_plan_measures_every_class_with_its_variants():
    jobs, noise = region_plan()
    combos = {(j.variant.kernel, j.variant.name) for j in jobs}
    for kind in ("region.stencil", "region.conv2d", "region.matmul", "region.matvec",
                 "region.reduction", "region.elementwise"):
        assert {(kind, "jax"), (kind, "halide")} <= combos
    assert {("loop.stencil", "jax"), ("loop.conv2d", "jax"), ("loop.matvec", "jax"),
            ("loop.elementwise", "jax"), ("loop.matmul", "jax")} <= combos
    assert not any(j.variant.kernel.startswith("loop.") and "halide" in j.variant.name
                   for j in jobs)
    for job in jobs:
        assert catalogue.kind(job.region) == job.variant.kernel
        assert job.key[5] == Summary.from_shapes(job.key[5]).as_shapes()
    assert {j.noise_pass for j in noise} == {1, 2}
    for job in jobs:  # no v − v, v / v or stencil of zeros: a compiler may fold them away
        assert not any(op.kernel in ("sub", "div") and len(set(op.operands)) == 1
                       for op in job.region.ops), job.region
        assert all(np.count_nonzero(values) >= 2 for _, values in job.region.constants)


def test_a_region_summary_counts_the_bytes_read_and_the_taps_a_builder_computes():
    """Bytes once: inputs some op reads, and outputs. A known stencil of at most 7x7 taps
    counts its nonzero taps (JAX's shifted sum skips the zeros); a larger known kernel
    counts every tap (FFT or a direct sum)."""
    unused = RegionSpec(((10,), (10,), ()), "f32", (SpecOp("mul", (0, 2)),), (3,))
    assert summary(unused).bytes_once == (10 + 1 + 10) * 4

    def heat(p: int) -> RegionSpec:
        cross = np.zeros((p, p))
        cross[p // 2, :] = cross[:, p // 2] = 1.0
        ops = (SpecOp("conv2d", (0, 1)), SpecOp("mul", (3, 2)), SpecOp("add", (0, 4)))
        return RegionSpec(((20, 30), (p, p), ()), "f64", ops, (5,),
                          constants=((1, tuple(cross.ravel())),))

    elementwise = 2 * 600  # the scale and the add, one unit per element each
    assert summary(heat(3)).complexity == 600 * 5 + elementwise
    assert summary(heat(21)).complexity == 600 * 21 * 21 + elementwise


def test_calibrate_regions_stores_region_rows_and_resumes(tmp_path):
    db = tmp_path / "m.sqlite"
    command = [sys.executable, "-m", "annc", "calibrate", "--regions", "--db", str(db),
               "--budget", "12"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = list(MeasurementStore(db).calibration())
    assert rows and all(is_region(r.kernel) for r in rows)
    ok = [r for r in rows if r.status == "ok"]
    assert ok and all(r.measured_s > 0 and len(r.shapes[0]) in (5, 6) for r in ok)
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(list(MeasurementStore(db).calibration())) >= len(rows)


def test_calibrate_regions_refuses_kernel_options(tmp_path):
    done = subprocess.run([sys.executable, "-m", "annc", "calibrate", "--regions",
                           "--kernels", "add", "--db", str(tmp_path / "m.sqlite")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1 and "--regions" in done.stderr
    assert "Traceback" not in done.stderr


def test_region_models_train_on_the_shipped_rows_within_the_papers_size():
    from annc.modeling import to_training_rows

    reference = load_reference()
    assert reference is not None
    rows = [r for r in to_training_rows(reference.measurements)
            if r.combination in {("region.stencil", "halide", "cpu"),
                                 ("loop.stencil", "jax", "cpu")}]
    models = fit_models(rows)
    assert set(models) == {("region.stencil", "halide", "cpu"), ("loop.stencil", "jax", "cpu")}
    for combo, model in models.items():
        assert model.features == feature_names(combo[0], True)
        assert "log trips" in model.features or not combo[0].startswith("loop.")
        assert "prior" in model.params  # regions extrapolate along a complexity line
        assert model.parameter_count < 75
        assert model.summary["mape"] < 100


def test_selection_offers_ops_and_every_variant_and_says_why_each_lost():
    plan = _selected(HEAT).selection
    assert [r.kind for r in plan.regions] == ["loop.stencil", "region.stencil",
                                              "region.reduction"]
    for region in plan.regions:
        variants = [c.variant for c in region.candidates]
        assert variants[0] == catalogue.OPS
        assert set(variants[1:]) == {v.name for v in catalogue.VARIANTS}
        assert region.chosen is not None
        for c in region.candidates:
            assert c is region.chosen or c.why_not
    loop = plan.regions[0]
    assert all("whole loops" in c.why_not for c in loop.candidates
               if c.variant.startswith("halide"))


def test_the_cheapest_candidate_wins_and_the_total_counts_the_regions_choices():
    plan = _selected(HEAT, N=1024, STEPS=200).selection
    for region in plan.regions:  # the cheapest, or a tie within 3% (passes.tiers)
        assert region.chosen is not None
        cheapest = min(c.cost_s for c in region.candidates if not c.why_not.startswith(
            "not built"))
        assert region.chosen.cost_s <= cheapest * (1 + TIE) or any(
            c.why_not.startswith("not built") for c in region.candidates)
    loop = plan.regions[0]
    outer = [r for r in plan.regions if r.outermost]
    assert loop in outer and plan.regions[1] not in outer
    compiled = [r for r in outer if r.chosen.variant != catalogue.OPS]
    inside = {site for r in compiled for site in r.sites}
    one_by_one = sum(op.chosen.cost_s for op in plan.ops
                     if op.chosen and op.site.index not in inside)
    assert plan.total_predicted_s == pytest.approx(  # each op once: alone or in its region
        one_by_one + sum(r.chosen.cost_s for r in compiled) + plan.start_s)


def test_explain_lists_regions_in_json_and_tables(tmp_path):
    program = tmp_path / "heat.ann"
    program.write_text(HEAT)
    command = [sys.executable, "-m", "annc", "explain", str(program), "--target", "cpu",
               "--measure", "never"]
    done = subprocess.run([*command, "--report", "json"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    regions = json.loads(done.stdout)["regions"]
    assert [r["kind"] for r in regions] == ["loop.stencil", "region.stencil",
                                            "region.reduction"]
    assert regions[1]["kernels"] == ["mul", "conv2d", "mul", "add"]
    assert all(r["candidates"][0]["variant"] == "ops" for r in regions)
    table = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120,
                           env={**__import__("os").environ, "COLUMNS": "200"})
    assert "region 1: region.stencil" in table.stdout


def test_a_compiled_region_is_reported_and_agrees_with_running_op_by_op():
    compiled = _selected(HEAT)
    inputs = {"T": np.random.default_rng(0).random((16, 16), dtype=np.float32),
              "alpha": np.array(0.2, np.float32)}
    reference = run_module(compiled.ir.clone(), inputs)
    for region in _regions(compiled.ir):
        region.attributes["kernel.variant"] = StringAttr(catalogue.OPS)
    loop = _regions(compiled.ir)[0]
    loop.attributes["kernel.variant"] = StringAttr("jax")
    result = run_module(compiled.ir, inputs)
    (reported,) = result.report["regions"]
    assert reported["kind"] == "loop.stencil" and reported["variant"] == "jax"
    assert reported["executions"] == 1 and reported["measured_s"] > 0
    assert reported["kernels"] == ["mul", "conv2d", "mul", "add"]
    assert {op["kernel"] for op in result.report["ops"]} == {"mul", "sum"}
    assert result.report["total_measured_s"] >= reported["measured_s"]
    for name, value in reference.outputs.items():
        np.testing.assert_allclose(result.outputs[name], value, rtol=1e-5, atol=1e-6)


def test_a_kept_plan_keeps_the_regions_choices(tmp_path):
    program = tmp_path / "heat.ann"
    program.write_text(HEAT)
    params = {"N": 1024, "STEPS": 2}
    first = annc.compiler.compile_program(HEAT, str(program), params, ["cpu"], "selected",
                                          kept_plans=True, record=False)
    hits = events.snapshot()["plan kept"]
    second = annc.compiler.compile_program(HEAT, str(program), params, ["cpu"], "selected",
                                           kept_plans=True, record=False)
    assert events.snapshot()["plan kept"] == hits + 1
    assert str(first.ir) == str(second.ir)
    assert [r.chosen.variant for r in first.selection.regions] == [
        r.chosen.variant for r in second.selection.regions]


def test_forcing_a_kernels_variant_runs_the_regions_around_it_op_by_op():
    compiled = compile_program(HEAT, "heat.ann", {"N": 1024, "STEPS": 200}, ["cpu"],
                               "selected", measure="never", record=False,
                               variants={"conv2d": "numpy.reference"})
    conv = next(op for op in compiled.ir.walk()
                if isinstance(op, KernelOp) and op.kernel_name() == "conv2d")
    assert conv.variant is not None and conv.variant.data == "numpy.reference"
    parent = conv.parent_op()
    while parent is not None:
        if isinstance(parent, RegionOp):
            assert parent.variant is not None and parent.variant.data == catalogue.OPS
        parent = parent.parent_op()


def test_a_region_whose_build_fails_runs_its_ops_and_says_so(monkeypatch):
    compiled = _selected(HEAT)
    inputs = {"T": np.ones((16, 16), np.float32), "alpha": np.array(0.2, np.float32)}
    reference = run_module(compiled.ir.clone(), inputs)
    for region in _regions(compiled.ir):
        region.attributes["kernel.variant"] = StringAttr(catalogue.OPS)
        region.attributes.pop("kernel.start_variant", None)  # built before the run, where it fails
    step = _regions(compiled.ir)[1]
    step.attributes["kernel.variant"] = StringAttr("halide.mullapudi2016")

    def fails(spec):
        raise RuntimeError("Mullapudi2016 failed: Pipeline_bounds is missing in0")

    monkeypatch.setattr(catalogue, "_BUILT", {})  # nothing built before this test
    monkeypatch.setattr(
        catalogue, "VARIANTS", tuple(catalogue.RegionVariant(
            v.name, v.device, fails if v.name == "halide.mullapudi2016" else v.build,
            v.why_not)
            for v in catalogue.VARIANTS))
    result = run_module(compiled.ir, inputs)
    assert any("could not be built" in note and "run one by one" in note
               for note in result.notes)
    assert result.report["regions"] == []
    for name, value in reference.outputs.items():
        np.testing.assert_allclose(result.outputs[name], value, rtol=1e-5)
