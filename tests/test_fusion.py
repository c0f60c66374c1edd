"""The `fuse-regions` pass: which regions it forms, and that they keep every program's
meaning, whether a region then runs op by op or compiled whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from reference_interpreter import interpret
from test_fuzz_grammar import programs
from xdsl.dialects.builtin import ModuleOp, StringAttr

import annc
from annc.compiler import compile_program, read_source
from annc.dsl.dialect import KernelOp, RegionOp
from annc.hardware.devices.available import CPU
from annc.hardware.execution.planning import compile_plan
from annc.hardware.execution.rundata import generated_inputs, input_specs
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.from_ir import lower_region
from annc.passes.fusion import fuse_regions

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SMALL = {"N": 6, "M": 5, "P": 3, "S": 7, "STEPS": 3, "ITERATIONS": 3, "SWEEPS": 3,
         "PASSES": 2, "SQUARINGS": 2}
DEVICES = {"cpu": CPU}
TOLERANCE = {np.dtype(np.float32): (2e-4, 1e-5), np.dtype(np.float64): (1e-10, 1e-12)}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANNC_NO_RECORD", "1")


def _ir(text: str, targets: list[str] | None = None, **params: int) -> ModuleOp:
    used = {k: v for k, v in params.items() if f"param {k} " in text}
    return compile_program(text, "p.ann", used, targets or ["cpu"], "ir", measure="never",
                           record=False).ir


def _fused(module: ModuleOp) -> ModuleOp:
    fused = module.clone()
    fuse_regions(fused)
    fused.verify()
    return fused


def _regions(module: ModuleOp) -> list[RegionOp]:
    return [op for op in module.walk() if isinstance(op, RegionOp)]


def _kernels(module: ModuleOp) -> list[str]:
    return [op.kernel_name() for op in module.walk() if isinstance(op, KernelOp)]


def _force(module: ModuleOp, variant: str) -> None:
    """Every region that `variant` can run is set to run it; the others run op by op."""
    for region in _regions(module):
        chosen = variant
        if variant != catalogue.OPS:
            why_not = catalogue.region_variant(variant).why_not(lower_region(region).spec)
            chosen = catalogue.OPS if why_not else variant
        region.attributes["kernel.variant"] = StringAttr(chosen)


def _outputs(module: ModuleOp, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    return compile_plan(module, DEVICES).run(arrays)


def _assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for name, value in want.items():
        rtol, atol = TOLERANCE[value.dtype]
        scale = max(float(np.max(np.abs(value), initial=0.0)), 1.0)
        np.testing.assert_allclose(got[name], value, rtol=rtol, atol=atol * scale,
                                   err_msg=name)
        assert got[name].shape == value.shape and got[name].dtype == value.dtype


@pytest.mark.parametrize("example", sorted(p.stem for p in EXAMPLES.glob("*.ann")))
def test_every_example_keeps_its_ops_and_outputs_when_fused(example):
    module = _ir(read_source(EXAMPLES / f"{example}.ann"), **SMALL)
    fused = _fused(module)
    assert _regions(fused), "every example has something to fuse"
    assert sorted(_kernels(fused)) == sorted(_kernels(module))
    arrays = generated_inputs(input_specs(module), 0)
    want = interpret(module, arrays, DEVICES)
    _force(fused, catalogue.OPS)
    for name, value in _outputs(fused, arrays).items():  # op by op: bit for bit
        np.testing.assert_array_equal(value, want[name], err_msg=name, strict=True)
    for variant in catalogue.VARIANTS:
        forced = fused.clone()
        _force(forced, variant.name)
        _assert_close(_outputs(forced, arrays), want)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.filter_too_much])
@given(programs)
def test_generated_programs_keep_their_outputs_when_fused(text: str) -> None:
    try:
        module = _ir(text)
    except annc.CompileError:
        return
    if "@" in text:
        return
    fused = _fused(module)
    arrays = generated_inputs(input_specs(module), 0)
    want = interpret(module, arrays, DEVICES)
    for name, value in interpret(fused, arrays, DEVICES).items():
        np.testing.assert_array_equal(value, want[name], err_msg=name, strict=True)
    _force(fused, "jax")
    with np.errstate(all="ignore"):
        got = _outputs(fused, arrays)
    for name, value in want.items():
        finite = np.isfinite(value)
        assert np.array_equal(np.isfinite(got[name]), finite), name
        rtol, atol = TOLERANCE[value.dtype]
        scale = max(float(np.max(np.abs(value[finite]), initial=0.0)), 1.0)
        np.testing.assert_allclose(got[name][finite], value[finite], rtol=rtol,
                                   atol=atol * scale, err_msg=name)


HEAT = """
param N = 8
input T : f32[N, N]
input alpha : f32
const L : f32[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
repeat 4 {
  T = T + 0.2 * alpha * conv2d(T, L)
}
E = sum(T * T)
output T, E
"""


def test_the_heat_step_is_one_region_inside_a_whole_loop_region():
    fused = _fused(_ir(HEAT))
    loop, step, energy = _regions(fused)
    assert loop.is_loop() and not step.is_loop() and not energy.is_loop()
    assert loop.is_ancestor(step)
    assert [o.kernel for o in lower_region(step).spec.ops] == ["mul", "conv2d", "mul", "add"]
    assert [o.kernel for o in lower_region(energy).spec.ops] == ["mul", "sum"]
    spec = lower_region(loop).spec
    assert spec.trips == 4 and spec.carried == 1


def test_an_op_pinned_elsewhere_stays_out_of_its_neighbours_region():
    text = """
input x : f32[8]
a = x * 2
b = exp(a) @opencl
c = b + a
output c
"""
    fused = _fused(_ir(text, ["cpu", "opencl"]))
    for region in _regions(fused):
        pins = {op.pin_device.data if op.pin_device else None
                for op in region.walk() if isinstance(op, KernelOp)}
        assert len(pins) == 1
    assert not any(op.kernel_name() == "exp" and isinstance(op.parent_op(), RegionOp)
                   and len(list(op.parent_op().block.ops)) > 2
                   for op in fused.walk() if isinstance(op, KernelOp))


def test_a_loop_with_an_op_pinned_off_the_cpu_is_not_a_whole_loop_region():
    text = """
input x : f32[8]
repeat 3 {
  x = exp(x) @opencl
  x = x * 2
}
output x
"""
    fused = _fused(_ir(text, ["cpu", "opencl"]))
    assert not any(region.is_loop() for region in _regions(fused))


def test_a_group_is_not_formed_where_an_op_between_reads_its_results():
    text = """
input x : f64[8]
a = x * 2
s = dot(a, a)
t = sum(a)
b = a + s
output b, t
"""
    module = _ir(text)
    fused = _fused(module)
    arrays = generated_inputs(input_specs(module), 0)
    want = interpret(module, arrays, DEVICES)
    got = interpret(fused, arrays, DEVICES)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value)
    members = [sorted(o.kernel for o in lower_region(r).spec.ops) for r in _regions(fused)]
    assert ["dot", "mul"] in members and not any("add" in m and "dot" in m for m in members)


def test_selection_always_offers_running_a_region_op_by_op():
    plan = compile_program(HEAT, "heat.ann", None, ["cpu"], "selected", measure="never",
                           record=False).selection
    assert plan.regions
    for region in plan.regions:
        assert region.candidates[0].variant == catalogue.OPS
        assert region.chosen is not None


NON_FINITE = """
input A : f64[9, 7]
input B : f64[9, 7]
C = -(A / (B - B)) + A * (B - B)
D = (A / 0.0) - A / A
E = sum(A * A - A * A) + A
output C, D, E
"""


@pytest.mark.parametrize("variant", [v.name for v in catalogue.VARIANTS])
def test_algebra_that_holds_only_for_finite_values_is_not_applied(variant: str) -> None:
    """Zero, ±inf and NaN through regions whose algebra simplifies for finite values
    (v − v, v / v, a division by zero): each compiled variant gives numpy's results,
    or refuses the region, which then runs op by op."""
    module = _ir(NON_FINITE)
    fused = _fused(module)
    assert len(_regions(fused)) >= 1
    arrays = generated_inputs(input_specs(module), 0)
    for array in arrays:
        array.reshape(-1)[:6] = [0.0, 1.0, -1.0, np.inf, -np.inf, np.nan]
    with np.errstate(all="ignore"):
        want = interpret(module, arrays, DEVICES)
        _force(fused, variant)
        got = _outputs(fused, arrays)
    for name, value in want.items():
        assert np.array_equal(np.isnan(got[name]), np.isnan(value)), name
        finite = np.isfinite(value)
        infinite = ~finite & ~np.isnan(value)
        assert np.array_equal(got[name][infinite], value[infinite]), name
        np.testing.assert_allclose(got[name][finite], value[finite], rtol=1e-12, err_msg=name)
