"""The reference for executable plans: the same IR run by xDSL's `Interpreter`, op by op.

Every op goes through the interpreter's dispatch; each kernel op runs the variant it
names with its operands copied from the host and its result copied back, so nothing
of the plan's slots, residency, loops or timing is shared. Tests compare a plan's
outputs with these, bit for bit. The seven ops besides kernels have their own small
implementations: importing xDSL's for whole dialects imports all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from xdsl.dialects import arith, func, scf
from xdsl.dialects.builtin import IntegerAttr, ModuleOp
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    ReturnedValues,
    TerminatorValue,
    impl,
    impl_callable,
    impl_terminator,
    register_impls,
)

from annc.dsl import dtypes
from annc.dsl.dialect import KERNEL_OPS, ConstantOp, KernelOp, RegionOp, YieldOp
from annc.dsl.lowering import FUNCTION_NAME
from annc.hardware.devices.device import Device
from annc.hardware.execution.planning import output_names, variant_for
from annc.hardware.variants.compiled import compiled


@register_impls
class ControlFlowFunctions(InterpreterFunctions):
    """`func.func` (callable), `func.return`, `scf.for`, `scf.yield`, integer constants,
    and `kernel.region` (its body op by op) with `kernel.yield`."""

    @impl_callable(func.FuncOp)
    def call_function(self, interpreter: Interpreter, op: func.FuncOp,
                      args: tuple[Any, ...]) -> PythonValues:
        return interpreter.run_ssacfg_region(op.body, args, op.sym_name.data)

    @impl_terminator(func.ReturnOp)
    def run_return(self, interpreter: Interpreter, op: func.ReturnOp,
                   args: PythonValues) -> tuple[TerminatorValue, PythonValues]:
        return ReturnedValues(args), ()

    @impl(scf.ForOp)
    def run_for(self, interpreter: Interpreter, op: scf.ForOp,
                args: PythonValues) -> PythonValues:
        lower, upper, step, *carried = args
        values = tuple(carried)
        for i in range(lower, upper, step):
            values = interpreter.run_ssacfg_region(op.body, (i, *values), "repeat")
        return values

    @impl_terminator(scf.YieldOp)
    def run_yield(self, interpreter: Interpreter, op: scf.YieldOp,
                  args: PythonValues) -> tuple[TerminatorValue, PythonValues]:
        return ReturnedValues(args), ()

    @impl(RegionOp)
    def run_region(self, interpreter: Interpreter, op: RegionOp,
                   args: PythonValues) -> PythonValues:
        """A region's body, op by op, whatever variant the region names."""
        return interpreter.run_ssacfg_region(op.body, args, "region")

    @impl_terminator(YieldOp)
    def run_region_yield(self, interpreter: Interpreter, op: YieldOp,
                         args: PythonValues) -> tuple[TerminatorValue, PythonValues]:
        return ReturnedValues(args), ()

    @impl(arith.ConstantOp)
    def run_constant(self, interpreter: Interpreter, op: arith.ConstantOp,
                     args: PythonValues) -> PythonValues:
        assert isinstance(op.value, IntegerAttr)
        return (op.value.value.data,)


def _run_kernel(functions: KernelFunctions, interpreter: Interpreter, op: KernelOp,
                args: PythonValues) -> PythonValues:
    variant = variant_for(op, functions.devices)
    shapes = tuple(a.shape for a in args)
    kernel = compiled(variant, shapes, args[0].dtype).kernel
    device = functions.devices[variant.device]
    with np.errstate(all="ignore"):
        result = kernel(*(device.put(a) for a in args))
    return (np.asarray(device.get(result)),)


class KernelFunctions(InterpreterFunctions):
    """Every kernel op runs its variant on host copies; constants are arrays."""

    def __init__(self, devices: Mapping[str, Device]) -> None:
        self.devices = devices

    @impl(ConstantOp)
    def run_constant(self, interpreter: Interpreter, op: ConstantOp,
                     args: PythonValues) -> PythonValues:
        dtype = dtypes.to_numpy(dtypes.from_element_type(op.value.get_element_type()))
        values = np.array(op.value.get_values(), dtype=dtype)
        return (values.reshape(op.value.get_shape()),)


for _op in KERNEL_OPS:
    setattr(KernelFunctions, f"run_{_op.kernel_name()}", impl(_op)(_run_kernel))
register_impls(KernelFunctions)


def interpret(module: ModuleOp, inputs: Sequence[np.ndarray],
              devices: Mapping[str, Device]) -> dict[str, np.ndarray]:
    """The module's outputs by name, as xDSL's interpreter computes them."""
    interpreter = Interpreter(module)
    interpreter.register_implementations(ControlFlowFunctions())
    interpreter.register_implementations(KernelFunctions(devices))
    results = interpreter.call_op(FUNCTION_NAME, tuple(inputs))
    return dict(zip(output_names(module), map(np.asarray, results), strict=True))
