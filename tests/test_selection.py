"""select-variants on fixed models: it picks what the models say, obeys pins and targets,
amortises compile time, reports missing models, places over the whole function, and
whatever it picks computes what numpy computes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from model_fixtures import install_for_this_machine, model_set
from xdsl.dialects.builtin import ModuleOp

import annc
from annc.compiler import compile_source
from annc.hardware.devices.available import available_devices
from annc.passes.select_variants import apply_plan, plan_selection
from annc.predictor.cost_model import CostModel

HAS_OPENCL = "opencl" in available_devices()
needs_opencl = pytest.mark.skipif(not HAS_OPENCL, reason="no OpenCL device on this machine")

MATMUL = """
input A : f64[16, 16]
input B : f64[16, 16]
C = matmul(A, B)
output C
"""


def ir(text: str, **kwargs) -> ModuleOp:
    module = compile_source(text, filename="t.ann", emit="ir", **kwargs)
    assert isinstance(module, ModuleOp)
    return module


def plan(text: str, times: dict, **kwargs):
    return plan_selection(ir(text, **kwargs), CostModel(model_set(times), "test models"))


def chosen(p) -> list[tuple[str, str]]:
    return [(op.chosen.variant, op.chosen.device) if op.chosen else None for op in p.ops]


def test_picks_the_variant_the_models_predict_fastest():
    times = {("matmul", "numpy", "cpu"): 2e-3, ("matmul", "jax", "cpu"): 1e-3,
             ("matmul", "strassen", "cpu"): 3e-3}
    assert chosen(plan(MATMUL, times, targets=["cpu"])) == [("jax", "cpu")]
    times[("matmul", "numpy", "cpu")] = 0.5e-3
    assert chosen(plan(MATMUL, times, targets=["cpu"])) == [("numpy", "cpu")]


def test_a_candidate_without_a_model_is_never_chosen_and_explain_says_why():
    times = {("matmul", "strassen", "cpu"): 1.0}
    p = plan(MATMUL, times, targets=["cpu"])
    assert chosen(p) == [("strassen", "cpu")]
    numpy = next(c for c in p.ops[0].candidates if c.variant == "numpy")
    assert "no model" in numpy.why_not
    assert numpy.predicted_s is None


def test_selection_is_deterministic():
    times = {("matmul", "numpy", "cpu"): 1e-3, ("matmul", "jax", "cpu"): 1e-3}
    first, second = plan(MATMUL, times, targets=["cpu"]), plan(MATMUL, times, targets=["cpu"])
    assert chosen(first) == chosen(second) == [("numpy", "cpu")]  # a tie: no build first


def test_candidates_within_three_percent_are_ties_broken_by_a_fixed_rule():
    """Predictions move by a few percent from run to run; the choice does not."""
    for jax_s in (0.98e-3, 0.995e-3, 1.01e-3):
        times = {("matmul", "numpy", "cpu"): 1e-3, ("matmul", "jax", "cpu"): jax_s}
        p = plan(MATMUL, times, targets=["cpu"])
        assert chosen(p) == [("numpy", "cpu")]
        jax = next(c for c in p.ops[0].candidates if c.variant == "jax")
        assert "tied with numpy" in jax.why_not
    times = {("matmul", "numpy", "cpu"): 1e-3, ("matmul", "jax", "cpu"): 0.9e-3}
    assert chosen(plan(MATMUL, times, targets=["cpu"])) == [("jax", "cpu")]


def test_every_prediction_includes_the_plan_steps_own_time():
    """Models time kernels alone; a running plan adds its step overhead to each op's
    measured time, so every candidate's predicted time and cost include it, and the
    choice is the same."""
    times = {("matmul", "numpy", "cpu"): 2e-6, ("matmul", "jax", "cpu"): 1e-6}
    bare = plan(MATMUL, times, targets=["cpu"])
    models = model_set(times)
    models.step_overhead_s = 5e-7
    stepped = plan_selection(ir(MATMUL, targets=["cpu"]), CostModel(models, "test models"))
    assert chosen(stepped) == chosen(bare) == [("jax", "cpu")]
    for before, after in zip(bare.ops[0].candidates, stepped.ops[0].candidates, strict=True):
        if before.predicted_s is None:
            continue
        assert after.predicted_s == pytest.approx(before.predicted_s + 5e-7)
        assert after.cost_s == pytest.approx(before.cost_s + 5e-7)
        assert after.low_s == pytest.approx(before.low_s + 5e-7)


def test_compile_time_is_amortised_over_the_trip_count():
    text = """
param STEPS = 1
input A : f64[16, 16]
repeat STEPS {
  A = matmul(A, A)
}
output A
"""
    times = {("matmul", "numpy", "cpu"): 2e-3, ("matmul", "halide.tiled", "cpu"): (1e-3, 0.5)}
    assert chosen(plan(text, times, targets=["cpu"], params={"STEPS": 10})) == [("numpy", "cpu")]
    assert chosen(plan(text, times, targets=["cpu"], params={"STEPS": 10000})) == [
        ("halide.tiled", "cpu")]
    loop = plan(text, times, targets=["cpu"], params={"STEPS": 10000})
    assert loop.ops[0].site.trips == 10000


@needs_opencl
def test_targets_and_pins_are_obeyed():
    times = {("add", "numpy", "cpu"): 1e-3, ("add", "halide.gpu_tile", "opencl"): 1e-9,
             ("mul", "numpy", "cpu"): 1e-3, ("mul", "halide.gpu_tile", "opencl"): 1e-9}
    text = "input x : f32[8]\ny = x + x\nz = y * y @cpu\noutput z\n"
    assert chosen(plan(text, times, targets=["cpu"])) == [("numpy", "cpu"), ("numpy", "cpu")]
    both = plan(text, times, targets=["cpu", "opencl"])
    assert chosen(both)[1] == ("numpy", "cpu")  # pinned
    assert both.ops[0].chosen.device in ("cpu", "opencl")


@needs_opencl
def test_placement_keeps_data_where_it_is_when_copies_dominate():
    text = """
input x : f32[1000000]
y = x + x
z = y * y
output z
"""
    times = {("add", "numpy", "cpu"): 1e-3, ("add", "halide.gpu_tile", "opencl"): 0.9e-3,
             ("mul", "numpy", "cpu"): 1e-3, ("mul", "halide.gpu_tile", "opencl"): 0.9e-3}
    slow_copies = plan_selection(ir(text, targets=["cpu", "opencl"]), CostModel(
        model_set(times, copy_seconds_per_byte=1e-8), "slow copies"))
    assert chosen(slow_copies) == [("numpy", "cpu"), ("numpy", "cpu")]
    assert slow_copies.transfer_s == 0
    times[("add", "halide.gpu_tile", "opencl")] = 1e-6
    times[("mul", "halide.gpu_tile", "opencl")] = 1e-6
    fast_device = plan_selection(ir(text, targets=["cpu", "opencl"]), CostModel(
        model_set(times, copy_seconds_per_byte=1e-11), "fast device"))
    assert chosen(fast_device) == [("halide.gpu_tile", "opencl")] * 2
    assert fast_device.transfer_s > 0


@needs_opencl
def test_placement_is_over_the_whole_function_not_op_by_op():
    """Op by op, the add in the middle is cheaper on the CPU; but running it there would
    copy its input back from the device and its result there again: all three stay on
    the device."""
    text = "input x : f32[1000000]\nu = exp(x)\ny = u + u\nz = exp(y)\noutput z\n"
    times = {("add", "numpy", "cpu"): 1.0e-3, ("add", "halide.gpu_tile", "opencl"): 1.2e-3,
             ("exp", "numpy", "cpu"): 50e-3, ("exp", "halide.gpu_tile", "opencl"): 1e-3}
    p = plan_selection(ir(text, targets=["cpu", "opencl"]), CostModel(
        model_set(times, copy_seconds_per_byte=4e-9), "whole function"))
    assert chosen(p) == [("halide.gpu_tile", "opencl")] * 3


def test_selected_ir_names_variant_device_and_prediction_and_reparses():
    times = {("matmul", "numpy", "cpu"): 2e-3}
    module = ir(MATMUL, targets=["cpu"])
    apply_plan(plan_selection(module, CostModel(model_set(times), "t")))
    text = str(module)
    assert 'variant = "numpy"' in text and 'device = "cpu"' in text and "predicted_s" in text
    from xdsl.parser import Parser

    from annc.dsl.context import annc_context

    assert str(Parser(annc_context(), text).parse_module()) == text


@pytest.mark.parametrize("variant", ["jax", "strassen", "halide.tiled", "numpy"])
def test_run_results_match_numpy_whatever_is_chosen(variant, tmp_path, monkeypatch):
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    add = {"strassen": "numpy", "halide.tiled": "halide"}.get(variant, variant)
    kernels = {"matmul": variant, "add": add}
    times = {(k, v, "cpu"): 1e-6 for k, v in kernels.items()}
    install_for_this_machine(model_set(times), tmp_path / "home")
    program = tmp_path / "p.ann"
    program.write_text("target cpu\ninput A : f64[9, 7]\ninput B : f64[7, 5]\n"
                       "C = matmul(A, B) + matmul(A, B)\noutput C\n")
    a, b = np.random.default_rng(1).random((9, 7)), np.random.default_rng(2).random((7, 5))
    result = annc.run_file(program, inputs={"A": a, "B": b})
    assert {op["variant"] for op in result.report["ops"]} == set(kernels.values())
    np.testing.assert_allclose(result.outputs["C"], 2 * (a @ b), rtol=1e-12)
    assert "trained on this machine" in result.report["models"]


@needs_opencl
def test_run_on_opencl_moves_data_and_matches_numpy(tmp_path, monkeypatch):
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    times = {("add", "halide.gpu_tile", "opencl"): 1e-9, ("exp", "halide.gpu_tile", "opencl"): 1e-9,
             ("add", "numpy", "cpu"): 1.0, ("exp", "numpy", "cpu"): 1.0}
    install_for_this_machine(model_set(times, copy_seconds_per_byte=1e-12), tmp_path / "home")
    program = tmp_path / "p.ann"
    program.write_text("target cpu, opencl\ninput x : f32[257]\ny = x + x\nz = exp(y)\n"
                       "output z\n")
    x = np.linspace(0, 1, 257, dtype=np.float32)
    result = annc.run_file(program, inputs={"x": x})
    assert [op["device"] for op in result.report["ops"]] == ["opencl", "opencl"]
    np.testing.assert_allclose(result.outputs["z"], np.exp(x + x), rtol=1e-6)
    assert result.report["transfer_s"] > 0


def test_xdsl_opt_runs_select_variants_on_annc_ir(tmp_path, monkeypatch):
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    install_for_this_machine(model_set({("matmul", "numpy", "cpu"): 1e-3}), tmp_path / "home")
    source = tmp_path / "m.mlir"
    source.write_text(str(ir(MATMUL, targets=["cpu"])))
    opt = shutil.which("xdsl-opt") or str(__import__("pathlib").Path(sys.executable).parent
                                          / "xdsl-opt")
    done = subprocess.run([opt, str(source), "-p", "select-variants"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'variant = "numpy"' in done.stdout


def test_explain_and_emit_selected_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    install_for_this_machine(model_set({("matmul", "numpy", "cpu"): 1e-3,
                                        ("matmul", "jax", "cpu"): 2e-3}), tmp_path / "home")
    program = tmp_path / "p.ann"
    program.write_text(MATMUL)
    env = {**__import__("os").environ, "ANNC_HOME": str(tmp_path / "home")}
    explained = subprocess.run([sys.executable, "-m", "annc", "explain", str(program),
                                "--target", "cpu", "--report", "json"],
                               capture_output=True, text=True, env=env, timeout=300)
    assert explained.returncode == 0, explained.stderr
    report = json.loads(explained.stdout)
    (op,) = report["ops"]
    assert op["chosen"] == {"variant": "numpy", "device": "cpu", "start": None}
    jax = next(c for c in op["candidates"] if c["variant"] == "jax")
    assert "2.00x" in jax["why_not"]
    selected = subprocess.run([sys.executable, "-m", "annc", "compile", str(program),
                               "--target", "cpu", "--emit", "selected"],
                              capture_output=True, text=True, env=env, timeout=300)
    assert selected.returncode == 0 and 'variant = "numpy"' in selected.stdout
    assert "trained on this machine" in selected.stderr


LOOP = """
input A : f64[16, 16]
input B : f64[16, 16]
C = A
repeat 100 {
  C = matmul(C, B)
}
output C
"""


def plan_unstarted(monkeypatch, times: dict, text: str = LOOP, **kwargs):
    """The plan of `text` with these model times, in a process that has started no back
    end yet (JAX's and Halide's starts 0.4 s each)."""
    import annc.passes.select_variants as select_variants

    monkeypatch.setattr(select_variants, "started", lambda backend: False)
    models = model_set(times)
    models.backend_start_s = {"jax": 0.4, "halide": 0.4}
    return plan_selection(ir(text, targets=["cpu"], **kwargs),
                          CostModel(models, "test models"))


def test_a_halide_build_beside_the_run_starts_nothing_in_this_process(monkeypatch):
    """The Halide kernel compiles in the helper beside the run, which starts Halide's
    compiler there, and the run loads it without one: the plan starts on numpy and
    charges no back end's start."""
    p = plan_unstarted(monkeypatch, {("matmul", "numpy", "cpu"): 2e-3,
                                     ("matmul", "halide.tiled", "cpu"): 1e-3})
    (op,) = p.ops
    assert chosen(p) == [("halide.tiled", "cpu")] and op.start is not None
    assert op.start.variant == "numpy" and p.start_s == 0
    (tier,) = p.tiers()
    assert (tier.at, tier.start, tier.target) == ("#0", "numpy", "halide.tiled")
    assert tier.ready_s > 0.4  # after the helper has started Halide's compiler


def test_a_long_run_waits_for_a_build_that_ends_it_sooner(monkeypatch):
    """2 s on numpy, or 0.4 s of Halide's start and then 1 s: the run waits for its build
    rather than switching to it about 1.2 s in, after the helper's delay and start."""
    p = plan_unstarted(monkeypatch, {("matmul", "numpy", "cpu"): 2e-2,
                                     ("matmul", "halide.tiled", "cpu"): 1e-2})
    (op,) = p.ops
    assert chosen(p) == [("halide.tiled", "cpu")] and op.start is None
    assert p.start_s == pytest.approx(0.4) and not p.tiers()
    numpy = next(c for c in op.candidates if c.variant == "numpy")
    assert "ends this run sooner" in numpy.why_not


def test_a_jax_build_beside_the_run_is_charged_jaxs_start_in_this_process(monkeypatch):
    """What XLA builds runs in this process, which imports JAX to load it, in this run and
    every later one: a JAX variant saving 0.1 s a run is not worth 0.4 s of start."""
    p = plan_unstarted(monkeypatch, {("matmul", "numpy", "cpu"): 2e-2,
                                     ("matmul", "jax", "cpu"): 1.9e-2})
    assert chosen(p) == [("numpy", "cpu")] and p.start_s == 0 and not p.tiers()
    jax = next(c for c in p.ops[0].candidates if c.variant == "jax")
    assert "starting JAX in this process (0.40 s)" in jax.why_not


@pytest.mark.parametrize("saved_per_trip, expected", [(1e-3, "numpy"), (1e-2, "jax")])
def test_a_plan_pays_a_back_ends_start_once_where_it_is_the_first_to_use_it(
        monkeypatch, saved_per_trip, expected):
    """A kept JAX build is loaded in this process, which imports JAX: 0.4 s that no
    build time holds. A JAX op saving 0.1 s in all is not worth starting JAX for; one
    saving 1 s is."""
    import annc.passes.select_variants as select_variants

    monkeypatch.setattr(select_variants, "started", lambda backend: False)
    kept = select_variants.build_cost

    def jax_kept(variant, shapes, dtype, models):
        return (0.02, "cached") if variant.backend == "jax" else kept(variant, shapes, dtype,
                                                                       models)

    monkeypatch.setattr(select_variants, "build_cost", jax_kept)
    times = {("matmul", "numpy", "cpu"): 2e-2, ("matmul", "jax", "cpu"): 2e-2 - saved_per_trip}
    models = model_set(times)
    models.backend_start_s = {"jax": 0.4, "halide": 0.4}
    p = plan_selection(ir(LOOP, targets=["cpu"]), CostModel(models, "test models"))
    assert chosen(p) == [(expected, "cpu")]
    jax = next(c for c in p.ops[0].candidates if c.variant == "jax")
    if expected == "numpy":
        assert p.start_s == 0 and "starting JAX in this process (0.40 s)" in jax.why_not
    else:
        assert p.start_s == pytest.approx(0.4) and not jax.why_not
        assert p.total_predicted_s == pytest.approx(100 * (2e-2 - saved_per_trip) + 0.02 + 0.4)
    # once JAX runs in the process, its start is paid: the faster variant wins
    monkeypatch.setattr(select_variants, "started", lambda backend: True)
    p = plan_selection(ir(LOOP, targets=["cpu"]), CostModel(models, "test models"))
    assert chosen(p) == [("jax", "cpu")] and p.start_s == 0


FUSED_LOOP = """
input A : f64[16, 16]
input B : f64[16, 16]
C = A
repeat 100 {
  C = matmul(C, B) + A
}
output C
"""


def test_a_start_is_charged_only_for_what_the_plan_runs(monkeypatch):
    """The whole loop compiles with JAX (its 0.4 s start is charged) and is waited for,
    as it saves nearly 2 s of this very run; the ops inside it never run, so their own
    choice, a Halide kernel, starts nothing."""
    import annc.passes.select_variants as select_variants

    monkeypatch.setattr(select_variants, "started", lambda backend: False)
    models = model_set({("matmul", "numpy", "cpu"): 2e-2, ("add", "numpy", "cpu"): 1e-6,
                        ("matmul", "halide.tiled", "cpu"): 1e-2,
                        ("loop.matmul", "jax", "cpu"): 1e-4})
    models.backend_start_s = {"jax": 0.4, "halide": 0.4}
    module = compile_source(FUSED_LOOP, filename="t.ann", emit="fused", targets=["cpu"])
    p = plan_selection(module, CostModel(models, "test models"))
    (loop,) = [r for r in p.regions if r.outermost]
    assert loop.chosen is not None and loop.chosen.variant == "jax" and loop.start is None
    assert p.start_s == pytest.approx(0.4)  # JAX's alone
    assert p.total_predicted_s == pytest.approx(100 * 1e-4 + 0.4, rel=1e-3)
    assert not p.tiers()


def test_a_model_that_takes_a_schedules_decision_is_asked_with_this_shapes_decision():
    from annc.dsl.records import Query
    from annc.hardware.variants import traits_of
    from annc.passes.models import DEFAULT_MODELS
    from annc.predictor.models import ModelSet

    models = ModelSet.load(DEFAULT_MODELS)
    combo = ("matmul", "halide.auto.mullapudi2016", "cpu")
    assert "fused" in models.models[combo].features
    p = plan_selection(ir(MATMUL, targets=["cpu"]), CostModel(models, "shipped models"))
    mullapudi = next(c for c in p.ops[0].candidates if c.variant == combo[1])
    shapes = ((16, 16), (16, 16))
    traits = traits_of(*combo, shapes, "f64")
    expected = models.predict([(combo, Query("matmul", shapes, "f64", 16.0**3, traits))])
    assert mullapudi.base_s == pytest.approx(expected[0])
    other = (("fused", 1.0 - traits[0][1]),)  # the trait matters to the prediction
    assert models.predict([(combo, Query("matmul", shapes, "f64", 16.0**3, other))])[0] \
        != pytest.approx(expected[0], rel=0.01)
