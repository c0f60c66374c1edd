"""Executable plans: a program runs exactly as xDSL's interpreter runs its IR, with every
op timed, every op kind planned (or refused loudly), loops that run no trip skipped, and
values copied to a device once.

The reference is `tests/reference_interpreter.py`: the same IR through xDSL's
`Interpreter`, op by op, each kernel on host copies. Outputs are compared bit for bit,
for every example (before selection, where every op runs `numpy.reference`, and
after it) and for programs generated from the grammar.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from reference_interpreter import interpret
from test_fuzz_grammar import programs
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import IndexType, ModuleOp, StringAttr

import annc
from annc.compiler import compile_program, read_source
from annc.dsl.dialect import RegionOp
from annc.hardware.devices.allocator import aligned_empty, is_aligned
from annc.hardware.devices.available import CPU, available_devices
from annc.hardware.devices.device import Device
from annc.hardware.execution.planning import compile_plan
from annc.hardware.execution.residency import Resident
from annc.hardware.execution.rundata import generated_inputs, input_specs
from annc.hardware.execution.steps import kernel_step
from annc.hardware.variants import compiled as compiled_variants

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SMALL = {"N": 6, "M": 5, "P": 3, "S": 7, "STEPS": 3, "ITERATIONS": 3, "SWEEPS": 3,
         "PASSES": 2, "SQUARINGS": 2}
"""Small sizes for every example's params (an example ignores the ones it lacks)."""
DEVICES = {"cpu": CPU}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANNC_NO_RECORD", "1")


def _module(text: str, emit: str, **params: int) -> ModuleOp:
    used = {k: v for k, v in params.items() if f"param {k} " in text}
    return compile_program(text, "p.ann", used, ["cpu"], emit, measure="never",
                           record=False).ir


def _assert_same(module: ModuleOp, seed: int = 0) -> None:
    """The plan's outputs against the interpreter's, bit for bit, with every region run
    op by op (as the interpreter runs them); where selection compiled a region (it does
    where that is predicted faster, which depends on what this process built already),
    the plan as selected first agrees within rounding."""
    arrays = generated_inputs(input_specs(module), seed)
    reference = interpret(module, arrays, DEVICES)
    compiled = [r for r in module.walk() if isinstance(r, RegionOp)
                and r.variant is not None and r.variant.data != "ops"]
    if compiled:
        as_selected = compile_plan(module, DEVICES).run(arrays)
        for name, value in reference.items():
            np.testing.assert_allclose(as_selected[name], value, rtol=1e-4, atol=1e-6,
                                       err_msg=name)
        for region in compiled:
            region.attributes["kernel.variant"] = StringAttr("ops")
    planned = compile_plan(module, DEVICES).run(arrays)
    assert planned.keys() == reference.keys()
    for name, value in reference.items():
        np.testing.assert_array_equal(planned[name], value, err_msg=name, strict=True)


@pytest.mark.parametrize("emit", ["ir", "selected"])
@pytest.mark.parametrize("example", sorted(p.stem for p in EXAMPLES.glob("*.ann")))
def test_every_example_gives_the_interpreters_outputs_bit_for_bit(example, emit):
    _assert_same(_module(read_source(EXAMPLES / f"{example}.ann"), emit, **SMALL))


def _runnable(text: str) -> ModuleOp | None:
    try:
        module = _module(text, "ir")
    except annc.CompileError:
        return None
    return module if "@" not in text else None  # pins to absent devices fail alike


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.filter_too_much])
@given(programs)
def test_generated_programs_give_the_interpreters_outputs_bit_for_bit(text: str) -> None:
    module = _runnable(text)
    if module is not None:
        _assert_same(module)


LOOP = """
input x : f64[4]
y = x
repeat 3 {
  z = y * 2
  y = z + x
}
output y, x
"""


def test_each_op_reports_one_time_per_execution_and_their_sum(tmp_path):
    program = tmp_path / "p.ann"
    program.write_text(LOOP)
    result = annc.run_file(program, targets=["cpu"], measure="never", record=False)
    ops = result.report["ops"]
    assert [op["executions"] for op in ops] == [3, 3]
    for op, record in zip(ops, result.records, strict=True):
        assert len(record.times) == 3 and all(t > 0 for t in record.times)
        assert op["measured_s"] == pytest.approx(sum(record.times))
    assert result.report["execute_s"] > 0 and result.report["transfer_s"] >= 0


def test_a_loop_that_runs_no_trip_leaves_its_values_and_builds_nothing(monkeypatch):
    module = _module(LOOP.replace("repeat 3", "repeat 0"), "ir")
    built: list[object] = []
    real = compiled_variants.compiled
    monkeypatch.setattr("annc.hardware.execution.planning.compiled",
                        lambda *args: built.append(args) or real(*args))
    x = np.arange(4.0)
    plan = compile_plan(module, DEVICES)
    outputs = plan.run([x])
    assert built == [] and plan.records() == []
    np.testing.assert_array_equal(outputs["y"], x)


def test_running_a_plan_again_gives_the_same_outputs_and_times_of_that_run_only():
    module = _module(LOOP, "selected")
    plan = compile_plan(module, DEVICES)
    x = np.arange(4.0)

    def executions() -> list[int]:
        return [r.executions for r in plan.records()] + [len(r.times_ns) for r in plan.regions]

    first = plan.run([x])["y"]
    once = executions()
    second = plan.run([x])["y"]
    np.testing.assert_array_equal(first, second)
    assert executions() == once and once in ([3, 3], [1])  # its ops, or its compiled loop


def test_an_op_no_plan_step_exists_for_is_refused_by_name():
    module = _module(LOOP, "ir")
    function = next(op for op in module.ops if isinstance(op, func.FuncOp))
    one = arith.ConstantOp.from_int_and_width(1, IndexType())
    function.body.block.insert_op_before(one, function.body.block.first_op)
    function.body.block.insert_op_after(arith.AddiOp(one, one), one)
    with pytest.raises(annc.RunError, match=r"cannot execute arith\.addi"):
        compile_plan(module, DEVICES)


def test_a_pin_to_a_device_this_machine_lacks_is_a_located_run_error():
    module = _module("input x : f64[4]\ny = x + x\noutput y\n", "ir")
    op = next(o for o in module.walk() if o.name == "kernel.add")
    op.attributes["kernel.pin_device"] = StringAttr("tpu")
    pinned = r"p\.ann:2:7: error: add is pinned to @tpu, but this machine has no tpu"
    with pytest.raises(annc.RunError, match=pinned):
        compile_plan(module, available_devices())




class CountingDevice(Device):
    """A device whose handles are tagged host arrays, counting the copies each way."""

    name = "counting"

    def __init__(self) -> None:
        self.puts = self.gets = 0

    def put(self, array: np.ndarray) -> tuple[str, np.ndarray]:
        self.puts += 1
        return ("on device", np.array(array))

    def get(self, handle: tuple[str, np.ndarray]) -> np.ndarray:
        self.gets += 1
        return handle[1]


def test_a_value_is_copied_to_a_device_once_and_its_result_back_only_when_read():
    device = CountingDevice()
    devices = {"cpu": CPU, device.name: device}
    times: list[int] = []
    copying = [0]
    f64 = np.dtype(np.float64)
    double = kernel_step(lambda a: ("on device", a[1] * 2), [0], 1, (4,), f64, device,
                         devices, False, times, copying)
    add = kernel_step(lambda a, b: ("on device", a[1] + b[1]), [0, 1], 2, (4,), f64,
                      device, devices, False, times, copying)
    x = np.arange(4.0)
    env: list[object] = [Resident.on_host(x), None, None]
    double(env)
    add(env)
    assert (device.puts, device.gets) == (1, 0)
    result = env[2]
    assert isinstance(result, Resident)
    np.testing.assert_array_equal(result.host(devices), 3 * x)
    assert device.gets == 1 and len(times) == 2 and copying[0] > 0


def test_a_jax_kernel_on_the_cpu_is_handed_operands_on_a_64_byte_boundary():
    base = aligned_empty((65,), np.float64)
    base[:] = np.arange(65)
    seen: list[bool] = []

    def kernel(a: np.ndarray) -> np.ndarray:
        seen.append(is_aligned(a))
        return a

    step = kernel_step(kernel, [0], 1, (64,), base.dtype, CPU, DEVICES, True, [], [0])
    step([Resident.on_host(base[1:]), None])
    assert seen == [True]


@pytest.mark.benchmark
def test_a_plan_dispatches_ops_several_times_faster_than_xdsls_interpreter():
    """Side by side on one loop of 10 small ops × 100 trips: the plan's whole run
    against the interpreter's (a ratio, never an absolute time)."""
    body = "\n".join("  y = y + x" for _ in range(10))
    module = _module(f"input x : f32[16]\ny = x\nrepeat 100 {{\n{body}\n}}\noutput y\n",
                     "ir")
    arrays = generated_inputs(input_specs(module), 0)
    plan = compile_plan(module, DEVICES)

    def median_s(run: Callable[[], object]) -> float:
        times = []
        for _ in range(7):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return statistics.median(times[2:])

    planned = median_s(lambda: plan.run(arrays))
    interpreted = median_s(lambda: interpret(module, arrays, DEVICES))
    assert planned * 3 < interpreted


def test_the_step_overhead_is_measured_as_a_small_positive_time():
    """What a plan step adds to an op's measured time, with a kernel that does nothing:
    well under the 10 µs of even the smallest kernel call measured in calibration."""
    from annc.hardware.execution.steps import step_overhead_seconds

    seconds = step_overhead_seconds(2000)
    assert 0 < seconds < 1e-5
