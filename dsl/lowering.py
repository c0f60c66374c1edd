"""Lowering of a checked program to xDSL IR.

The program becomes one `func.func @main` inside a `builtin.module`: inputs are
its arguments, outputs what `func.return` yields, every kernel call and
element-wise operation one op of the `kernel` dialect, and every `repeat` an
`scf.for` whose iter_args are the loop-carried names. The module records the
input and output names and the target list as attributes.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import MutableMapping
from functools import cache

from xdsl.dialects import arith, func, scf
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    FileLineColLoc,
    Float32Type,
    Float64Type,
    IndexType,
    ModuleOp,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from annc.dsl import ast, dialect, dtypes, types

INPUTS_ATTRIBUTE = "annc.inputs"
OUTPUTS_ATTRIBUTE = "annc.outputs"
TARGETS_ATTRIBUTE = "annc.targets"
SOURCE_ATTRIBUTE = "annc.source"
FUNCTION_NAME = "main"


Env = MutableMapping[str, SSAValue]
"""The value each name holds where lowering is: a loop's body sees the names outside it
through a `ChainMap` (a copy of them for every loop was quadratic in a program of many
loops: 32,000 took 25 s to lower)."""


@cache
def tensor_type(type_: types.TensorType) -> TensorType[Float32Type | Float64Type]:
    """The IR's type of a value; one attribute per type, shared (attributes are immutable):
    made anew for every op, making and verifying them was 40% of lowering."""
    return TensorType(dtypes.element_type(type_.dtype), type_.shape)


def _strings(values: tuple[str, ...]) -> ArrayAttr[StringAttr]:
    return ArrayAttr([StringAttr(v) for v in values])


class _Lowering:
    def __init__(self, program: types.TypedProgram) -> None:
        self.program = program

    def at(self, loc: ast.Location) -> FileLineColLoc:
        return dialect.location(self.program.filename, loc.line, loc.column)

    def emit(self, block: Block, op: Operation, name: str | None = None) -> SSAValue:
        block.add_op(op)
        result = op.results[0]
        if name is not None:
            result.name_hint = name
        return result

    def lower_expr(
        self, expr: types.TypedExpr, block: Block, env: Env, name: str | None
    ) -> SSAValue:
        match expr:
            case types.Value():
                return env[expr.name]
            case types.Constant():
                attr = DenseIntOrFPElementsAttr.from_list(tensor_type(expr.type), [expr.value])
                constant = dialect.ConstantOp(attr)
                constant.location = self.at(expr.loc)
                return self.emit(block, constant)
            case types.Operation():
                operands = [self.lower_expr(o, block, env, None) for o in expr.operands]
                op = dialect.OP_FOR_KERNEL[expr.kernel].create(
                    operands=operands, result_types=[tensor_type(expr.type)])
                op.location = self.at(expr.loc)
                if expr.device is not None:
                    op.pin_device = StringAttr(expr.device)
                return self.emit(block, op, name)
        raise AssertionError(f"unexpected expression {expr!r}")

    def lower_block(
        self, statements: tuple[types.TypedStatement, ...], block: Block, env: Env,
    ) -> None:
        for statement in statements:
            match statement:
                case types.ConstDecl():
                    constant = dialect.ConstantOp.of_array(tensor_type(statement.type),
                                                           statement.values)
                    constant.location = self.at(statement.loc)
                    env[statement.name] = self.emit(block, constant, statement.name)
                case types.Bind():
                    env[statement.name] = self.lower_expr(
                        statement.value, block, env, statement.name
                    )
                case types.Loop():
                    self.lower_loop(statement, block, env)

    def lower_loop(self, loop: types.Loop, block: Block, env: Env) -> None:
        index = IndexType()
        where = self.at(loop.loc)
        bounds = []
        for value in (0, loop.count, 1):
            bound = arith.ConstantOp.from_int_and_width(value, index)
            bound.location = where
            bounds.append(self.emit(block, bound))
        names = [name for name, _ in loop.carried]
        body = Block(arg_types=[index, *(tensor_type(t) for _, t in loop.carried)])
        body.args[0].name_hint = "i"
        inner = ChainMap[str, SSAValue]({}, env)  # what the body binds stays in the body
        for name, arg in zip(names, body.args[1:], strict=True):
            arg.name_hint = name
            inner[name] = arg
        self.lower_block(loop.body, body, inner)
        yield_op = scf.YieldOp(*(inner[name] for name in names))
        yield_op.location = where
        body.add_op(yield_op)
        lower, upper, step = bounds
        for_op = scf.ForOp(lower, upper, step, [env[name] for name in names], Region(body))
        for_op.location = where
        block.add_op(for_op)
        for name, result in zip(names, for_op.results, strict=True):
            result.name_hint = name
            env[name] = result

    def lower(self) -> ModuleOp:
        program = self.program
        input_types = [tensor_type(t) for _, t in program.inputs]
        output_types = [tensor_type(expr.type) for _, expr in program.outputs]
        function = func.FuncOp(FUNCTION_NAME, (input_types, output_types))
        function.location = dialect.location(program.filename, 1, 1)
        block = function.body.block
        env: dict[str, SSAValue] = {}
        for (name, _), arg in zip(program.inputs, block.args, strict=True):
            arg.name_hint = name
            env[name] = arg
        self.lower_block(program.body, block, env)
        results = [self.lower_expr(expr, block, env, None) for _, expr in program.outputs]
        return_op = func.ReturnOp(*results)
        return_op.location = self.at(program.output_loc)
        block.add_op(return_op)
        module = ModuleOp([function])
        module.location = function.location
        attributes: dict[str, Attribute] = {
            SOURCE_ATTRIBUTE: StringAttr(program.filename),
            INPUTS_ATTRIBUTE: _strings(tuple(name for name, _ in program.inputs)),
            OUTPUTS_ATTRIBUTE: _strings(tuple(name for name, _ in program.outputs)),
        }
        if program.targets is not None:
            attributes[TARGETS_ATTRIBUTE] = _strings(program.targets)
        module.attributes.update(attributes)
        return module


def module_targets(module: ModuleOp) -> list[str] | None:
    """The module's target list, or None where the program gave none."""
    attr = module.attributes.get(TARGETS_ATTRIBUTE)
    if not isinstance(attr, ArrayAttr):
        return None
    return [s.data for s in attr.data if isinstance(s, StringAttr)]


def lower(program: types.TypedProgram) -> ModuleOp:
    """Builds the IR of a checked program."""
    module = _Lowering(program).lower()
    module.verify()
    return module
