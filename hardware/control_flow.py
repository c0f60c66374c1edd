"""How the interpreter runs the structure around kernel ops: `func`, `scf.for`, constants.

annc's IR uses a handful of operations besides its kernels (see `dsl.lowering`):
one `func.func` with its `func.return`, `scf.for` loops whose iter_args carry the
loop's values, their `scf.yield`, and `arith.constant` index bounds. These are
their implementations for xDSL's `Interpreter`. xDSL ships implementations of
whole dialects too, but importing any of them imports all of them (RISC-V
included), which costs a run noticeable start-up time (README, "Measurements behind
the design"); these five are all annc needs.
"""

from __future__ import annotations

from typing import Any

from xdsl.dialects import arith, func, scf
from xdsl.dialects.builtin import IntegerAttr
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


@register_impls
class ControlFlowFunctions(InterpreterFunctions):
    """`func.func` (callable), `func.return`, `scf.for`, `scf.yield`, integer constants."""

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

    @impl(arith.ConstantOp)
    def run_constant(self, interpreter: Interpreter, op: arith.ConstantOp,
                     args: PythonValues) -> PythonValues:
        value = op.value
        interpreter.interpreter_assert(isinstance(value, IntegerAttr),
                                       f"arith.constant of {type(value).__name__}")
        assert isinstance(value, IntegerAttr)
        return (value.value.data,)
