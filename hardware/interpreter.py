"""Executes annc IR with xDSL's `Interpreter`: what is printed is what runs.

Each `kernel` op runs the variant it names (`variant` and `device` attributes,
set by selection, or by `passes.overrides` where the user forced one); an op that
names none runs
`numpy.reference` on the CPU. Every execution is timed, so a run can report
the measured time of each op summed over all the times it executed.

Values between ops are `Resident` tensors: the copies of one immutable value on
the devices that needed it. An operand is copied to an op's device only if it
is not there yet, and results come back to the host only when the function
returns them (or a CPU op reads them), so data moves only when it must.

A JAX kernel on the CPU reads its operands in place only where they start on a
64-byte boundary (see `hardware.allocator`); a value that does not is moved onto
one once, before the first such kernel reads it, and counted as copying time.

Kernels run under `np.errstate(all="ignore")`: NaN or infinity in the inputs, a
division by zero or an overflow give the IEEE results numpy gives (NaN, ±inf),
without RuntimeWarnings — a physicist checks the outputs, not warnings.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr, TensorType
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    impl,
    register_impls,
)

from dsl import dtypes
from dsl.dialect import KERNEL_OPS, ConstantOp, KernelOp
from dsl.errors import RunError
from dsl.lowering import FUNCTION_NAME, OUTPUTS_ATTRIBUTE
from hardware.allocator import aligned, keep_freed_memory
from hardware.compiled import compiled
from hardware.control_flow import ControlFlowFunctions
from hardware.device import Device
from hardware.variants import Variant, load_library, load_variant, variants_for
from hardware.variants.reference import REFERENCE


@dataclass
class Resident:
    """One tensor value and its copies, by device name. Values are immutable, so a copy
    once made stays valid; a copy between two devices goes through the host."""

    shape: tuple[int, ...]
    dtype: np.dtype
    copies: dict[str, object]

    @staticmethod
    def on_host(array: np.ndarray) -> Resident:
        array = np.asarray(array)
        return Resident(tuple(array.shape), array.dtype, {"cpu": array})

    def host(self, devices: Mapping[str, Device]) -> np.ndarray:
        if "cpu" not in self.copies:
            name, handle = next(iter(self.copies.items()))
            self.copies["cpu"] = devices[name].get(handle)
        return np.asarray(self.copies["cpu"])

    def aligned_host(self, devices: Mapping[str, Device]) -> np.ndarray:
        """The host copy, moved once onto a 64-byte boundary if it is not on one, so
        that XLA reads it in place instead of copying it on every call."""
        array = self.copies["cpu"] = aligned(self.host(devices))
        return array

    def on(self, device: Device, devices: Mapping[str, Device]) -> object:
        if device.name not in self.copies:
            self.copies[device.name] = device.put(self.host(devices))
        return self.copies[device.name]


@dataclass
class OpRecord:
    """What one kernel op did during a run."""

    index: int
    kernel: str
    variant: str
    device: str
    shapes: list[list[int]]
    loc: str
    predicted_s: float | None
    measured_s: float = 0.0
    executions: int = 0
    times: list[float] = field(default_factory=list)
    """Seconds of each execution, in order."""


@dataclass
class Execution:
    """Runs kernel ops with their variants and keeps an `OpRecord` per op."""

    devices: Mapping[str, Device]
    records: dict[int, OpRecord] = field(default_factory=dict)
    transfer_s: float = 0.0
    """Seconds spent copying operands to devices (included in the ops' measured times)."""
    _index: dict[KernelOp, int] = field(default_factory=dict)

    def number_ops(self, module: ModuleOp) -> None:
        """Gives every kernel op its index: its position in the printed IR."""
        for op in module.walk():
            if isinstance(op, KernelOp):
                self._index[op] = len(self._index)

    def variant_for(self, op: KernelOp) -> Variant:
        kernel = op.kernel_name()
        device = op.device.data if op.device else "cpu"
        name = op.variant.data if op.variant else REFERENCE
        if device not in self.devices:
            where = f"{op.loc.data}: error: " if op.loc else ""
            raise RunError(f"{where}{kernel} is pinned to @{device}, but this machine has no "
                           f"{device} device (found: {', '.join(self.devices)})")
        try:
            return load_variant(kernel, name, device)  # imports only the backend it needs
        except LookupError:
            load_library()
            known = ", ".join(v.name for v in variants_for(kernel, device))
            raise RunError(f"{kernel} has no variant {name!r} on {device}; "
                           f"known: {known}") from None

    def run(self, op: KernelOp, operands: tuple[Resident | np.ndarray, ...]) -> Resident:
        variant = self.variant_for(op)
        values = [v if isinstance(v, Resident) else Resident.on_host(v) for v in operands]
        shapes = tuple(v.shape for v in values)
        dtype = values[0].dtype
        if not variant.applies(shapes, dtype):
            raise RunError(f"variant {variant.name} of {variant.kernel} does not apply to "
                           f"shapes {list(map(list, shapes))} ({dtype})")
        kernel = compiled(variant, shapes, dtype).kernel
        device = self.devices[variant.device]
        start = time.perf_counter()
        handles: list[object]
        if variant.backend == "jax" and device.name == "cpu":
            handles = [v.aligned_host(self.devices) for v in values]
        else:
            handles = [v.on(device, self.devices) for v in values]
        copied = time.perf_counter()
        with np.errstate(all="ignore"):  # NaN and inf are results, as in numpy, not errors
            result = kernel(*handles)
        elapsed = time.perf_counter() - start
        self.transfer_s += copied - start
        self.record(op, variant, shapes, elapsed)
        result_type = op.results[0].type
        assert isinstance(result_type, TensorType)
        return Resident(tuple(result_type.get_shape()), dtype, {device.name: result})

    def record(self, op: KernelOp, variant: Variant, shapes: tuple, elapsed: float) -> None:
        index = self._index.setdefault(op, len(self._index))
        record = self.records.get(index)
        if record is None:
            record = self.records[index] = OpRecord(
                index=index,
                kernel=variant.kernel,
                variant=variant.name,
                device=variant.device,
                shapes=[list(s) for s in shapes],
                loc=op.loc.data if op.loc else "",
                predicted_s=op.predicted_s.value.data if op.predicted_s else None,
            )
        record.measured_s += elapsed
        record.executions += 1
        record.times.append(elapsed)


def _run_kernel(
    functions: KernelFunctions, interpreter: Interpreter, op: KernelOp, args: PythonValues
) -> PythonValues:
    return (functions.execution.run(op, tuple(args)),)


class KernelFunctions(InterpreterFunctions):
    """Interpreter implementations of the `kernel` dialect."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution

    @impl(ConstantOp)
    def run_constant(
        self, interpreter: Interpreter, op: ConstantOp, args: PythonValues
    ) -> PythonValues:
        dtype = dtypes.to_numpy(dtypes.from_element_type(op.value.get_element_type()))
        values = np.array(op.value.get_values(), dtype=dtype)
        return (values.reshape(op.value.get_shape()),)


for _op in KERNEL_OPS:
    setattr(KernelFunctions, f"run_{_op.kernel_name()}", impl(_op)(_run_kernel))
register_impls(KernelFunctions)


def output_names(module: ModuleOp) -> list[str]:
    attr = module.attributes[OUTPUTS_ATTRIBUTE]
    assert isinstance(attr, ArrayAttr)
    return [s.data for s in attr.data if isinstance(s, StringAttr)]


def execute(
    module: ModuleOp,
    inputs: Sequence[np.ndarray],
    execution: Execution,
) -> dict[str, np.ndarray]:
    """Runs the module's `main` on the inputs; returns its outputs by name."""
    keep_freed_memory()  # as when the kernels were calibrated
    interpreter = Interpreter(module)
    for functions in (ControlFlowFunctions(), KernelFunctions(execution)):
        interpreter.register_implementations(functions)
    execution.number_ops(module)
    results = interpreter.call_op(FUNCTION_NAME, tuple(inputs))
    start = time.perf_counter()
    outputs = {
        name: value.host(execution.devices) if isinstance(value, Resident) else np.asarray(value)
        for name, value in zip(output_names(module), results, strict=True)
    }
    execution.transfer_s += time.perf_counter() - start
    return outputs

