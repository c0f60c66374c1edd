"""Tiers: a run starts on what can run now, builds the chosen variant beside itself,
switches to it between two executions (or two trips of a loop), and keeps the build for
the next run; a build that fails leaves the run where it was, with a note."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp, StringAttr

from annc.compiler import compile_program
from annc.dsl.dialect import KernelOp, RegionOp
from annc.hardware.devices.available import CPU
from annc.hardware.execution.beside import Beside
from annc.hardware.execution.builds import BuildJob, kernel_job, region_job
from annc.hardware.execution.planning import Builds, compile_plan
from annc.hardware.execution.progress import RunProgress
from annc.hardware.execution.rundata import generated_inputs, input_specs
from annc.hardware.variants import load_variant
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.from_ir import lower_region
from annc.running import run_module

needs_cc = pytest.mark.skipif(
    importlib.util.find_spec("halide") is None
    or shutil.which(os.environ.get("CC") or "cc") is None,
    reason="Halide's builds are kept only with Halide and a C compiler")

HEAT = """param N = 48
param STEPS = 12
input T : f32[N, N]
const L : f32[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
repeat STEPS {
  T = T + 0.1 * conv2d(T, L)
}
output T
"""
DEVICES = {"cpu": CPU}
CONVOLVING = ("param N = 64\ninput A : f32[N, N]\ninput K : f32[3, 3]\n"
              "repeat 300 {\n  A = conv2d(A, K)\n}\noutput A\n")
"""A loop of convolutions whose fastest variant needs a build."""


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ANNC_HOME", str(home))
    return home


def _selected(text: str, **params: int) -> ModuleOp:
    return compile_program(text, "p.ann", params, ["cpu"], "selected", "never",
                           record=False).ir


def _conv_on(module: ModuleOp, variant: str, start: str) -> None:
    """Every region runs op by op; conv2d is to run `variant`, starting on `start`."""
    for op in module.walk():
        if isinstance(op, RegionOp):
            op.attributes["kernel.variant"] = StringAttr(catalogue.OPS)
            op.attributes.pop("kernel.start_variant", None)
        if isinstance(op, KernelOp) and op.kernel_name() == "conv2d":
            op.attributes["kernel.variant"] = StringAttr(variant)
            op.attributes["kernel.start_variant"] = StringAttr(start)


def _wait_until(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the build beside the run never became ready"
        time.sleep(0.05)


@needs_cc
def test_an_op_switches_between_two_executions_to_the_build_made_beside_it():
    module = _selected(HEAT)
    _conv_on(module, "halide.direct", "numpy.reference")
    arrays = generated_inputs(input_specs(module), 0)
    beside = Beside()
    plan = compile_plan(module, DEVICES, Builds("beside", beside))
    ((_, tier),) = plan.tiers
    first = plan.run(arrays)
    assert tier.variant == "numpy.reference" and tier.target == "halide.direct"
    _wait_until(lambda: tier.pending is not None)
    second = plan.run(arrays)
    beside.finish(wait=True)
    assert tier.started_on == "numpy.reference" and tier.variant == "halide.direct"
    (conv,) = [op for op in plan.ops if op.kernel == "conv2d"]
    assert [r.variant for r in conv.tier_records()] == ["halide.direct"]  # this run's
    np.testing.assert_allclose(second["T"], first["T"], rtol=2e-5, atol=1e-6)


def _module_with_loop_tier() -> ModuleOp:
    module = _selected(HEAT, STEPS=40)
    (loop,) = [op for op in module.walk() if isinstance(op, RegionOp)
               and lower_region(op).spec.is_loop]
    loop.attributes["kernel.variant"] = StringAttr("jax")
    loop.attributes["kernel.start_variant"] = StringAttr(catalogue.OPS)
    for op in loop.walk():
        if isinstance(op, KernelOp):
            op.attributes.pop("kernel.start_variant", None)
        if isinstance(op, RegionOp) and op is not loop:
            op.attributes["kernel.variant"] = StringAttr(catalogue.OPS)
            op.attributes.pop("kernel.start_variant", None)
    return module


class _OfferAt(RunProgress):
    """Counts trips like a run's progress and, at trip `at`, hands the tier its compiled
    loop, as the builder's thread would: a switch in the middle of the loop, at a trip
    the test knows."""

    def __init__(self, at: int) -> None:
        super().__init__(0, show=False)
        self.at = at
        self.offer = None

    def advance(self, trips: int) -> None:
        super().advance(trips)
        if self.offer is not None and self.done >= self.at:
            self.offer()
            self.offer = None


def test_a_loop_run_op_by_op_hands_its_remaining_trips_to_the_compiled_loop():
    module = _module_with_loop_tier()
    arrays = generated_inputs(input_specs(module), 0)
    want = compile_plan(module, DEVICES, Builds("never")).run(arrays)["T"]

    beside = Beside(load=False)  # the test hands the build over itself, at trip 15
    progress = _OfferAt(15)
    plan = compile_plan(module, DEVICES, Builds("beside", beside), progress)
    ((where, tier),) = plan.tiers
    (loop,) = [op for op in module.walk() if isinstance(op, RegionOp)
               and op.variant is not None and op.variant.data == "jax"]
    compiled = region_job(lower_region(loop).spec, "jax").build()
    progress.offer = lambda: tier.offer(False)(compiled)
    got = plan.run(arrays)["T"]
    beside.finish(wait=True)
    assert where.startswith("region") and tier.switched_after == 15
    assert progress.total == progress.done == 40
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-5)


def test_a_compiled_loop_in_chunks_equals_one_call():
    module = _module_with_loop_tier()
    (loop,) = [op for op in module.walk() if isinstance(op, RegionOp)
               and op.variant is not None and op.variant.data == "jax"]
    spec = lower_region(loop).spec
    function = catalogue.built(spec, "jax")
    rng = np.random.default_rng(0)
    start = [rng.random(shape, dtype=np.float32) for shape in spec.inputs]
    whole = function(*start)
    pieces = [start[0]]
    for trips in (1, 7, 32):
        pieces = function(*pieces, *start[1:], trips=trips)
    np.testing.assert_array_equal(pieces[0], whole[0])


def test_a_build_that_fails_beside_the_run_leaves_it_on_its_tier_with_a_note():
    """A variant registered in this process only: the helper, which loads annc's own
    library, cannot build it."""
    from annc.hardware.variants.registry import Variant, register, unregister

    reference = load_variant("conv2d", "numpy.reference")
    mine = Variant("conv2d", "halide.mine", "cpu", "halide", reference.build,
                   reference.complexity)
    register(mine)
    try:
        module = _selected(HEAT)
        _conv_on(module, "halide.mine", "numpy.reference")
        result = run_module(module, builds="beside", wait_for_builds=True)
    finally:
        unregister(mine)
    (tier,) = result.report["tiers"]
    assert tier["build"] == "failed" and not tier["switched"]
    assert any("halide.mine" in note and "went on without it" in note for note in result.notes)
    conv = next(op for op in result.report["ops"] if op["kernel"] == "conv2d")
    assert conv["variant"] == "numpy.reference"


def _annc(home: Path, *arguments: str) -> dict:
    environment = {**os.environ, "ANNC_HOME": str(home), "ANNC_WAIT_FOR_BUILDS": "1"}
    done = subprocess.run([sys.executable, "-m", "annc", *arguments, "--report", "json"],
                          capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@needs_cc
def test_the_next_process_starts_on_what_was_built_beside_the_last(tmp_path: Path):
    program = tmp_path / "p.ann"
    program.write_text(CONVOLVING)
    home = tmp_path / "builds"
    first = _annc(home, "run", str(program), "--builds", "beside")
    if not first["tiers"]:
        pytest.skip("selection builds nothing for this program on this machine")
    assert all(t["build"] in ("loaded", "ready") for t in first["tiers"]), first["tiers"]
    second = _annc(home, "run", str(program), "--builds", "beside")
    assert second["tiers"] == []
    targets = {t["target"] for t in first["tiers"]}
    ran = {op["variant"] for op in second["ops"]} | {r["variant"] for r in second["regions"]}
    assert targets <= ran


@needs_cc
def test_annc_build_keeps_what_the_run_would_build(tmp_path: Path):
    program = tmp_path / "p.ann"
    program.write_text(CONVOLVING)
    home = tmp_path / "ahead"
    built = _annc(home, "build", str(program))["builds"]
    assert all(b["status"] in ("built", "kept already") for b in built), built
    run = _annc(home, "run", str(program))
    assert run["tiers"] == []
    assert _annc(home, "build", str(program))["builds"] == []


@needs_cc
def test_a_job_goes_to_another_process_and_back_as_json():
    variant = load_variant("conv2d", "halide.direct")
    job = kernel_job(variant, ((8, 9), (3, 3)), np.dtype(np.float32))
    assert BuildJob.from_json(json.loads(json.dumps(job.to_json()))) == job
    module = _module_with_loop_tier()
    (loop,) = [op for op in module.walk() if isinstance(op, RegionOp)
               and lower_region(op).spec.is_loop]
    region = region_job(lower_region(loop).spec, "jax")
    again = BuildJob.from_json(json.loads(json.dumps(region.to_json())))
    assert again == region and again.key == region.key


CTRL_C = """
import os, signal, sys, threading, time
from xdsl.dialects.builtin import StringAttr
from annc.compiler import compile_program
from annc.running import run_module
from annc.dsl.dialect import RegionOp
from annc.hardware.execution.progress import RunProgress

text = open(sys.argv[1]).read()
module = compile_program(text, "long.ann", None, ["cpu"], "selected", "never", record=False).ir
for op in module.walk():
    outer = op.parent_op()
    if isinstance(op, RegionOp) and outer is not None and outer.name == "func.func":
        op.attributes["kernel.variant"] = StringAttr("jax")  # the whole loop, compiled
        op.attributes.pop("kernel.start_variant", None)
sent = []

class InterruptOnce(RunProgress):
    def advance(self, trips):
        super().advance(trips)
        if not sent and self.done > 0:  # inside the compiled loop: interrupt it in a second
            sent.append(time.monotonic() + 1.0)
            threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()

try:
    run_module(module, builds="first", progress=InterruptOnce(0, show=False))
    print("finished")
except KeyboardInterrupt:
    print(f"interrupted after {time.monotonic() - sent[0]:.3f}")
"""


def test_ctrl_c_stops_a_compiled_loop_between_two_chunks(tmp_path: Path):
    program = tmp_path / "long.ann"
    program.write_text(HEAT.replace("param STEPS = 12", "param STEPS = 100000000")
                       .replace("param N = 48", "param N = 128"))
    environment = {**os.environ, "ANNC_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", CTRL_C, str(program)],
                          capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr
    words, seconds = done.stdout.split()[0], float(done.stdout.split()[-1])
    assert words == "interrupted"
    assert seconds < 10  # the loop alone would run for hours; a chunk lasts about 0.2 s


def test_a_program_is_expected_to_run_again_as_often_as_it_has_run():
    from annc.history import count_run, expected_runs, past_runs, program_key

    key = program_key("input x : f32[4]\noutput x\n", {"N": 3}, None)
    assert key != program_key("input x : f32[4]\noutput x\n", {"N": 4}, None)
    seen = []
    for _ in range(16):
        seen.append(expected_runs(key))
        count_run(key)
    assert past_runs(key) == 16
    assert seen == [1, 1, 1] + [4] * 12 + [16]  # powers of four: kept plans rarely change
    assert expected_runs(key) == 16


def test_the_progress_of_a_run_counts_the_trips_of_its_outer_loops():
    text = ("input x : f64[4]\nrepeat 5 {\n  repeat 3 {\n    x = x * 0.5\n  }\n"
            "  x = -x\n}\nrepeat 2 {\n  x = x + 1.0\n}\noutput x\n")
    module = _selected(text)
    for op in module.walk():
        if isinstance(op, RegionOp):
            op.attributes["kernel.variant"] = StringAttr(catalogue.OPS)
            op.attributes.pop("kernel.start_variant", None)
    progress = RunProgress(0, show=False)
    plan = compile_plan(module, DEVICES, Builds("never"), progress)
    plan.run([np.ones(4)])
    assert progress.total == progress.done == 7


def test_the_warm_up_leaves_the_outputs_as_they_were():
    from annc.hardware.execution.warm import WarmUp, result_bytes

    module = _selected(HEAT)
    assert result_bytes(module) >= 48 * 48 * 4  # at least the field the loop yields
    arrays = generated_inputs(input_specs(module), 0)
    want = compile_plan(module, DEVICES, Builds("never")).run(arrays)
    warm = WarmUp()
    warm.start(module)
    warm.finish()
    got = compile_plan(module, DEVICES, Builds("never")).run(arrays)
    np.testing.assert_array_equal(got["T"], want["T"])


def test_explain_shows_what_starts_and_what_builds_beside_it(tmp_path: Path):
    program = tmp_path / "p.ann"
    program.write_text(HEAT.replace("param N = 48", "param N = 256"))
    report = _annc(tmp_path / "explained", "explain", str(program))
    assert report["runs"] == 1 and report["tiers"]  # the shipped models build here
    places = {f"#{op['index']}": op["chosen"] for op in report["ops"]}
    places |= {f"region {r['index']}": r["chosen"] for r in report["regions"]}
    for tier in report["tiers"]:
        assert tier["start"] != tier["target"] and tier["ready_s"] > 0
        assert places[tier["at"]] == {"variant": tier["target"], "device": tier["device"],
                                      "start": tier["start"]}


@needs_cc
def test_builds_not_done_when_the_run_ends_go_on_and_are_kept(tmp_path: Path):
    module = _selected(HEAT)
    _conv_on(module, "halide.direct", "numpy.reference")
    result = run_module(module.clone(), builds="beside", wait_for_builds=False)
    going = [note for note in result.notes if "on in the background (pid" in note]
    if going:  # the build outlived this short run: its helper finishes it and exits
        pid = int(going[0].split("(pid ")[1].split(")")[0])
        _wait_until(lambda: not Path(f"/proc/{pid}").exists()
                    or "zombie" in Path(f"/proc/{pid}/status").read_text())
    again = run_module(module.clone(), builds="beside", wait_for_builds=True)
    assert again.report["tiers"] == []  # kept: the second run starts on it
    conv = next(op for op in again.report["ops"] if op["kernel"] == "conv2d")
    assert conv["variant"] == "halide.direct"


def test_the_helper_answers_a_job_it_cannot_build_and_goes_on():
    from annc.hardware.execution.build_worker import FAILED, build_one

    unknown = {"id": 4, "kind": "kernel", "variant": "halide.none", "device": "cpu",
               "kernel": "conv2d", "shapes": [[8, 8], [3, 3]], "dtype": "float32"}
    answer = build_one(unknown)
    assert answer["id"] == 4 and answer["status"] == FAILED
    assert "halide.none" in answer["message"]
    assert build_one({"id": 5, "kind": "nonsense"})["status"] == FAILED
