"""Executes annc IR with xDSL's `Interpreter`: what is printed is what runs.

Each `kernel` op runs the variant it names (`variant` and `device` attributes,
set by selection or forced by the user); an op that names none runs
`numpy.reference` on the CPU. Every execution is timed, so a run can report
the measured time of each op summed over all the times it executed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import ArrayAttr, Float32Type, ModuleOp, StringAttr
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    impl,
    register_impls,
)
from xdsl.interpreters.arith import ArithFunctions
from xdsl.interpreters.func import FuncFunctions
from xdsl.interpreters.scf import ScfFunctions

from dsl.dialect import KERNEL_OPS, ConstantOp, KernelOp
from dsl.errors import AnncError
from dsl.lowering import FUNCTION_NAME, OUTPUTS_ATTRIBUTE
from hardware.compiled import compiled
from hardware.devices import CPU, Device
from hardware.variants import Variant, get_variant, load_library, variants_for
from hardware.variants.reference import REFERENCE


class RunError(AnncError):
    """The program cannot run as asked on this machine (a device or variant is missing)."""


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


@dataclass
class Execution:
    """Runs kernel ops with their variants and keeps an `OpRecord` per op."""

    devices: Mapping[str, Device]
    forced: Mapping[str, str] = field(default_factory=dict)
    """kernel -> variant name, from `--variant KERNEL=NAME`."""
    records: dict[int, OpRecord] = field(default_factory=dict)
    _index: dict[int, int] = field(default_factory=dict)

    def number_ops(self, module: ModuleOp) -> None:
        """Gives every kernel op its index: its position in the printed IR."""
        for op in module.walk():
            if isinstance(op, KernelOp):
                self._index[id(op)] = len(self._index)

    def variant_for(self, op: KernelOp) -> Variant:
        kernel = op.kernel_name()
        device = op.device.data if op.device else "cpu"
        name = self.forced.get(kernel) or (op.variant.data if op.variant else REFERENCE)
        if (name, device) != (REFERENCE, "cpu"):
            load_library()
        if device not in self.devices:
            where = f"{op.loc.data}: error: " if op.loc else ""
            raise RunError(f"{where}{kernel} is pinned to @{device}, but this machine has no "
                           f"{device} device (found: {', '.join(self.devices)})")
        try:
            return get_variant(kernel, name, device)
        except LookupError:
            known = ", ".join(v.name for v in variants_for(kernel, device))
            raise RunError(f"{kernel} has no variant {name!r} on {device}; "
                           f"known: {known}") from None

    def run(self, op: KernelOp, operands: tuple[np.ndarray, ...]) -> np.ndarray:
        variant = self.variant_for(op)
        shapes = tuple(tuple(a.shape) for a in operands)
        dtype = operands[0].dtype
        if not variant.applies(shapes, dtype):
            raise RunError(f"variant {variant.name} of {variant.kernel} does not apply to "
                           f"shapes {list(map(list, shapes))} ({dtype})")
        kernel = compiled(variant, shapes, dtype).kernel
        device = self.devices[variant.device]
        start = time.perf_counter()
        resident = [device.put(a) for a in operands]
        result = device.get(kernel(*resident))
        elapsed = time.perf_counter() - start
        self.record(op, variant, shapes, elapsed)
        return result

    def record(self, op: KernelOp, variant: Variant, shapes: tuple, elapsed: float) -> None:
        index = self._index.setdefault(id(op), len(self._index))
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
        dtype = np.float32 if isinstance(op.value.get_element_type(), Float32Type) else np.float64
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
    interpreter = Interpreter(module)
    for functions in (FuncFunctions(), ScfFunctions(), ArithFunctions(),
                      KernelFunctions(execution)):
        interpreter.register_implementations(functions)
    execution.number_ops(module)
    results = interpreter.call_op(FUNCTION_NAME, tuple(inputs))
    return {name: np.asarray(value)
            for name, value in zip(output_names(module), results, strict=True)}


def cpu_only() -> dict[str, Device]:
    return {"cpu": CPU}
