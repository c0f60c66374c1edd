"""Semantic checks: every rule of LANGUAGE.md, turning the AST into a `TypedProgram`.

Problems are collected as located diagnostics and raised together as one
`CompileError`; an expression that already failed types as `None` so that one
mistake is reported once, not again by every expression that uses it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from annc.dsl import ast, dtypes
from annc.dsl.errors import CompileError, Diagnostic, source_lines
from annc.dsl.kernels import KERNELS, ShapeMismatch
from annc.dsl.types import (
    DEVICES,
    DTYPES,
    Bind,
    Constant,
    ConstDecl,
    Loop,
    Operation,
    TensorType,
    TypedExpr,
    TypedProgram,
    TypedStatement,
    Value,
)

KERNEL_PARAMETERS: dict[str, tuple[str, ...]] = {
    name: spec.parameters for name, spec in KERNELS.items() if spec.called
}
"""The kernels a program can call, with the names of their parameters."""

LARGEST_INTEGER = 2**63 - 1
"""The largest dimension or repeat count: the IR holds them as 64-bit integers."""

BINARY_KERNELS = {
    spec.operator: name for name, spec in KERNELS.items() if spec.operator and spec.arity == 2
}
FOLDED_CALLS = {"exp": np.exp, "sqrt": np.sqrt, "abs": np.abs, "sum": np.positive,
                "norm": np.abs}
"""The called kernels of one operand, as applied to a number at compile time."""

Checked = TypedExpr | float | None
"""What checking an expression gives: a typed expression, a number not yet
given a dtype (literals and names bound to them), or None after an error."""


@dataclass
class _Binding:
    type: TensorType | None
    literal: float | None
    loc: ast.Location
    declared: bool = False
    """True for inputs and consts, which cannot be declared again."""


@dataclass
class _LoopFrame:
    loc: ast.Location
    carried: dict[str, TensorType]
    bound: list[str] = field(default_factory=list)
    """Names first bound inside the loop, which are gone after it (kept as they come:
    comparing the names before and after each loop was quadratic in a program of many
    loops, 37 s for 32,000)."""


@dataclass
class _Scope:
    """What is bound where, during the walk over the statements."""

    values: dict[str, _Binding] = field(default_factory=dict)
    loop_locals: dict[str, tuple[ast.Location, ast.Location]] = field(default_factory=dict)
    """Names bound only inside a finished repeat: (assignment, repeat) locations."""

    def copy(self) -> _Scope:
        return _Scope(dict(self.values), dict(self.loop_locals))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _unknown_kernel(kernel: str) -> str:
    """`unknown kernel 'foo'; kernels are ...`, or where a kernel's name is close,
    `unknown kernel 'matvek'; did you mean 'matvec'? Kernels are ...`: the question
    ends its sentence, and the list makes its own."""
    kernels = ", ".join(KERNEL_PARAMETERS)
    suggestion = _suggest(kernel, list(KERNEL_PARAMETERS))
    if suggestion:
        return f"unknown kernel '{kernel}'{suggestion} Kernels are {kernels}"
    return f"unknown kernel '{kernel}'; kernels are {kernels}"


def _assigned_names(statements: tuple[ast.Statement, ...]) -> list[str]:
    """Names assigned anywhere in a block, nested blocks included, in order."""
    names: dict[str, None] = {}  # a list's `in` was quadratic in a long loop body
    for statement in statements:
        if isinstance(statement, ast.Assign):
            names[statement.name] = None
        elif isinstance(statement, ast.Repeat):
            names.update(dict.fromkeys(_assigned_names(statement.body)))
    return list(names)


def _literal_shape(literal: ast.Literal) -> tuple[int, ...] | None:
    """The shape of a nested list literal, or None if it is ragged."""
    if isinstance(literal, ast.Number):
        return ()
    if isinstance(literal, ast.NumberArray):
        return None if literal.values is None else literal.values.shape
    shapes = {_literal_shape(item) for item in literal.items}
    if len(shapes) != 1 or None in shapes:
        return None
    (inner,) = shapes
    assert inner is not None
    return (len(literal.items), *inner)


def _literal_values(literal: ast.Literal) -> np.ndarray:
    """The numbers of a rectangular literal, float64 in row-major order."""
    if isinstance(literal, ast.NumberArray) and literal.values is not None:
        return literal.values.ravel()
    return np.array(list(_numbers(literal)), dtype=np.float64)


def _numbers(literal: ast.Literal) -> Iterator[float]:
    if isinstance(literal, ast.Number):
        yield literal.value
    elif isinstance(literal, ast.NumberArray):
        assert literal.values is not None
        yield from literal.values.ravel().tolist()
    else:
        for item in literal.items:
            yield from _numbers(item)


def _fold(op: str, left: float, right: float) -> float:
    """Compile-time arithmetic on numbers, with numpy's float64 semantics."""
    a, b = np.float64(left), np.float64(right)
    with np.errstate(all="ignore"):
        result = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
    return float(result)


def _fold_call(kernel: str, value: float) -> float:
    with np.errstate(all="ignore"):
        return float(FOLDED_CALLS[kernel](np.float64(value)))


class _Source:
    """The program's text, split into lines only when an error quotes one (the lines of a
    10 MB literal are another 10 MB)."""

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def lines(self) -> list[str]:
        return source_lines(self.text)

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""


class _Checker:
    def __init__(
        self,
        program: ast.Program,
        source: _Source,
        params: dict[str, int],
        targets: tuple[str, ...] | None,
    ) -> None:
        self.program = program
        self.source = source
        self.params = params
        self.param_locs: dict[str, ast.Location] = {}
        self.targets = targets
        self.targets_from_command_line = targets is not None
        self.target_loc: ast.Location | None = None
        self.first_assignment: ast.Location | None = None
        self.diagnostics: list[Diagnostic] = []
        self.scope = _Scope()
        self.loops: list[_LoopFrame] = []
        self.inputs: list[tuple[str, TensorType]] = []
        self.declares_f32 = False
        """Whether an input or const so far is f32 (see `probe_dtype`)."""

    # Reporting -----------------------------------------------------------------

    def error(self, loc: ast.Location, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.program.filename, loc.line, loc.column,
                                           message, self.source.line(loc.line)))

    def constant(self, value: float, dtype: str, loc: ast.Location) -> Constant | None:
        """A number given a dtype; one that is not finite there is an error (the IR's
        dense attributes cannot carry inf and NaN through a print and re-parse)."""
        with np.errstate(all="ignore"):
            cast = np.array(value, dtype=dtypes.to_numpy(dtype))
        if not np.isfinite(cast):
            self.error(loc, f"this number is {cast} in {dtype}; annc constants must be "
                       "finite")
            return None
        return Constant(value, TensorType(dtype, ()), loc)

    # Statements ----------------------------------------------------------------

    def check_program(self) -> TypedProgram:
        statements = self.program.statements
        body = self.check_block(statements, top_level=True)
        outputs = self.check_outputs(statements)
        return TypedProgram(
            filename=self.program.filename,
            params=dict(self.params),
            inputs=tuple(self.inputs),
            targets=self.targets,
            body=tuple(body),
            outputs=outputs,
            output_loc=next((s.loc for s in statements if isinstance(s, ast.Output)),
                            self.program.end),
        )

    def check_block(
        self, statements: tuple[ast.Statement, ...], top_level: bool
    ) -> list[TypedStatement]:
        typed: list[TypedStatement] = []
        for statement in statements:
            if isinstance(statement, ast.Output):
                if not top_level:
                    self.error(statement.loc, "output must be the last statement of the file, "
                               "outside any repeat block")
                continue
            if not top_level and isinstance(statement, ast.Param | ast.Input | ast.Const
                                             | ast.Target):
                keyword = type(statement).__name__.lower()
                self.error(statement.loc, f"{keyword} must be at the top level of the file, "
                           "not inside a repeat block")
                continue
            typed.extend(self.check_statement(statement))
        return typed

    def check_statement(self, statement: ast.Statement) -> list[TypedStatement]:
        match statement:
            case ast.Param():
                self.check_param(statement)
            case ast.Input():
                self.check_input(statement)
            case ast.Const():
                return self.check_const(statement)
            case ast.Target():
                self.check_target(statement)
            case ast.Assign():
                return self.check_assign(statement)
            case ast.Repeat():
                return self.check_repeat(statement)
        return []

    def check_new_name(self, name: str, loc: ast.Location) -> bool:
        """A declaration's name must be free; says why not and returns False if taken."""
        if name in KERNEL_PARAMETERS:
            self.error(loc, f"'{name}' is a kernel name and cannot be declared or assigned")
            return False
        earlier = self.param_locs.get(name) or (
            self.scope.values[name].loc if name in self.scope.values else None
        )
        if earlier is not None:
            self.error(loc, f"{name} is already declared at line {earlier.line}")
            return False
        return True

    def check_param(self, statement: ast.Param) -> None:
        if not self.check_new_name(statement.name, statement.loc):
            return
        self.param_locs[statement.name] = statement.loc
        if statement.name in self.params:  # overridden with -D
            return
        text = statement.value.text
        if not text.isdigit():
            self.error(statement.value.loc,
                       f"param {statement.name} must be a non-negative integer, got {text}")
            return
        self.params[statement.name] = int(text)

    def resolve_type(self, spec: ast.TypeSpec) -> TensorType | None:
        ok = True
        if spec.dtype not in DTYPES:
            self.error(spec.loc, f"unknown dtype '{spec.dtype}'; use f32 or f64")
            ok = False
        shape = []
        for dim in spec.dims:
            size = self.resolve_dim(dim)
            ok = ok and size is not None
            shape.append(size or 0)
        return TensorType(spec.dtype, tuple(shape)) if ok else None

    def resolve_dim(self, dim: ast.Dim) -> int | None:
        if dim.is_name:
            value = self.param_value(dim.value, dim.loc)
            if value is None:
                return None
            if value <= 0:
                self.error(dim.loc, f"dimension {dim.value} = {value} is not positive; "
                           "dimensions must be positive")
                return None
            return self.at_most_largest(value, dim.loc, f"dimension {dim.value}")
        if not dim.value.isdigit() or int(dim.value) <= 0:
            self.error(dim.loc, f"dimension must be a positive integer, got {dim.value}")
            return None
        return self.at_most_largest(int(dim.value), dim.loc, "dimension")

    def at_most_largest(self, value: int, loc: ast.Location, what: str) -> int | None:
        """A size or count the IR's 64-bit integers can hold, or None (reported)."""
        if value > LARGEST_INTEGER:
            self.error(loc, f"{what} is too large ({value}); at most {LARGEST_INTEGER}")
            return None
        return value

    def param_value(self, name: str, loc: ast.Location) -> int | None:
        if name in self.params and name in self.param_locs:
            return self.params[name]
        if name in self.scope.values:
            self.error(loc, f"{name} is not a param; shapes and repeat counts take integers "
                       "or params")
        else:
            self.error(loc, f"unknown param '{name}'{_suggest(name, list(self.param_locs))}")
        return None

    def check_input(self, statement: ast.Input) -> None:
        if not self.check_new_name(statement.name, statement.loc):
            return
        type_ = self.resolve_type(statement.type)
        self.scope.values[statement.name] = _Binding(type_, None, statement.loc, declared=True)
        if type_ is not None:
            self.inputs.append((statement.name, type_))
            self.declares_f32 |= type_.dtype == "f32"

    def check_const(self, statement: ast.Const) -> list[TypedStatement]:
        if not self.check_new_name(statement.name, statement.loc):
            return []
        type_ = self.resolve_type(statement.type)
        self.scope.values[statement.name] = _Binding(type_, None, statement.loc, declared=True)
        self.declares_f32 |= type_ is not None and type_.dtype == "f32"
        shape = _literal_shape(statement.value)
        if shape is None:
            self.error(statement.value.loc, f"const {statement.name}: the literal is ragged "
                       "(its rows have different lengths)")
            self.scope.values[statement.name].type = None
            return []
        if type_ is None:
            return []
        if shape != type_.shape:
            written = f"[{', '.join(map(str, shape))}]" if shape else "a single number"
            self.error(statement.value.loc, f"const {statement.name}: the literal has shape "
                       f"{written} but the declared type is {type_}")
            self.scope.values[statement.name].type = None
            return []
        with np.errstate(all="ignore"):
            values = _literal_values(statement.value).astype(dtypes.to_numpy(type_.dtype),
                                                              copy=False)
        if not np.all(np.isfinite(values)):
            self.error(statement.value.loc, f"const {statement.name}: a value is "
                       f"{values[~np.isfinite(values)][0]} in {type_.dtype}; annc constants "
                       "must be finite")
            return []
        return [ConstDecl(statement.name, type_, values, statement.loc)]

    def check_target(self, statement: ast.Target) -> None:
        if self.target_loc is not None:
            self.error(statement.loc, "a program has at most one target statement; the first "
                       f"is at line {self.target_loc.line}")
            return
        self.target_loc = statement.loc
        if self.first_assignment is not None:
            self.error(statement.loc, "target must come before any assignment (the first "
                       f"assignment is at line {self.first_assignment.line})")
        devices: list[str] = []
        for device in statement.devices:
            if device.name not in DEVICES:
                self.error(device.loc, f"unknown device '{device.name}'; devices are "
                           f"{', '.join(DEVICES)}")
            elif device.name in devices:
                self.error(device.loc, f"device {device.name} is listed twice")
            else:
                devices.append(device.name)
        if not self.targets_from_command_line:
            self.targets = tuple(devices)

    def check_pin(self, pin: ast.Device | None) -> str | None:
        if pin is None:
            return None
        if pin.name not in DEVICES:
            self.error(pin.loc, f"unknown device '{pin.name}'; devices are {', '.join(DEVICES)}")
            return None
        if self.targets is not None and pin.name not in self.targets:
            where = "--target" if self.targets_from_command_line else "the target statement"
            self.error(pin.loc, f"@{pin.name} pins to a device outside the target list "
                       f"({', '.join(self.targets)}) given by {where}")
            return None
        return pin.name

    def check_assign(self, statement: ast.Assign) -> list[TypedStatement]:
        if self.first_assignment is None:
            self.first_assignment = statement.loc
        name = statement.name
        if name in KERNEL_PARAMETERS:
            self.error(statement.loc, f"cannot assign to '{name}': it is a kernel name")
            return []
        if name in self.param_locs:
            self.error(statement.loc, f"cannot assign to {name}: it is a param (a compile-time "
                       "integer)")
            return []
        device = self.check_pin(statement.pin)
        value = self.check_expr(statement.value, device)
        carried = self.carried_type(name)
        if value is None:
            self.bind(name, _Binding(carried, None, statement.loc))
            return []
        if isinstance(value, float):
            if carried is None:
                self.bind(name, _Binding(None, value, statement.loc))
                return []
            value = self.constant(value, carried.dtype, statement.value.loc)
            if value is None:
                return []
        if carried is not None and value.type != carried:
            frame = next(f for f in reversed(self.loops) if name in f.carried)
            self.error(statement.loc, f"{name} changes type inside the repeat block at line "
                       f"{frame.loc.line}: {carried} before the block, {value.type} here; a "
                       "loop-carried name keeps its shape and dtype")
            return []
        self.bind(name, _Binding(value.type, None, statement.loc))
        return [Bind(name, value)]

    def bind(self, name: str, binding: _Binding) -> None:
        previous = self.scope.values.get(name)
        if previous is not None:
            binding.declared = previous.declared
        elif self.loops:
            self.loops[-1].bound.append(name)
        self.scope.values[name] = binding
        self.scope.loop_locals.pop(name, None)

    def carried_type(self, name: str) -> TensorType | None:
        for frame in reversed(self.loops):
            if name in frame.carried:
                return frame.carried[name]
        return None

    def check_repeat(self, statement: ast.Repeat) -> list[TypedStatement]:
        count = self.check_count(statement.count)
        typed: list[TypedStatement] = []
        carried: dict[str, TensorType] = {}
        for name in _assigned_names(statement.body):
            binding = self.scope.values.get(name)
            if binding is None:
                continue
            if binding.literal is not None:
                dtype = self.probe_dtype(statement.body, name)
                constant = self.constant(binding.literal, dtype, binding.loc)
                if constant is None:
                    continue
                typed.append(Bind(name, constant))
                binding = _Binding(constant.type, None, binding.loc, binding.declared)
                self.scope.values[name] = binding
            if binding.type is not None:
                carried[name] = binding.type
        frame = _LoopFrame(statement.loc, carried)
        self.loops.append(frame)
        body = self.check_block(statement.body, top_level=False)
        self.loops.pop()
        for name in frame.bound:
            self.scope.loop_locals[name] = (self.scope.values.pop(name).loc, statement.loc)
        if count is None:
            return typed
        typed.append(Loop(count, tuple(carried.items()), tuple(body), statement.loc))
        return typed

    def probe_dtype(self, body: tuple[ast.Statement, ...], name: str) -> str:
        """The dtype a loop-carried name bound to a number takes: the first of f64 and
        f32 with which the loop body checks cleanly (f64, numpy's default, if neither).

        Each probe checks the whole body, once or twice a name. Where no input or const is
        f32, no value the name meets is, so f32 cannot check where f64 does not: f64,
        without probing (a body of n such accumulators took n² checks: 400 took 2.3 s)."""
        if not self.declares_f32:
            return "f64"
        binding = self.scope.values[name]
        for dtype in DTYPES[::-1]:
            probe = _Checker(self.program, self.source, dict(self.params), self.targets)
            probe.declares_f32 = self.declares_f32
            probe.param_locs = dict(self.param_locs)
            probe.scope = self.scope.copy()
            probe.scope.values[name] = _Binding(TensorType(dtype, ()), None, binding.loc)
            probe.check_block(body, top_level=False)
            if not probe.diagnostics:
                return dtype
        return "f64"

    def check_count(self, count: ast.Number | ast.Name) -> int | None:
        if isinstance(count, ast.Name):
            value = self.param_value(count.id, count.loc)
            what = f"repeat count {count.id}"
        elif not count.text.isdigit():
            self.error(count.loc, f"a repeat count must be a non-negative integer, got "
                       f"{count.text}")
            return None
        else:
            value, what = int(count.text), "repeat count"
        return None if value is None else self.at_most_largest(value, count.loc, what)

    def check_outputs(
        self, statements: tuple[ast.Statement, ...]
    ) -> tuple[tuple[str, TypedExpr], ...]:
        outputs = [s for s in statements if isinstance(s, ast.Output)]
        if not outputs:
            self.error(self.program.end, "the program has no output statement; end it with "
                       "`output NAME, ...`")
            return ()
        first = outputs[0]
        for extra in outputs[1:]:
            self.error(extra.loc, f"a program has exactly one output statement; the first is "
                       f"at line {first.loc.line}")
        if not isinstance(statements[-1], ast.Output):
            self.error(first.loc, "output must be the last statement of the file")
        typed = []
        seen: set[str] = set()
        for name in first.names:
            if name.id in seen:
                self.error(name.loc, f"{name.id} is listed twice in output")
                continue
            seen.add(name.id)
            value = self.check_name(name)
            if isinstance(value, float):
                value = self.constant(value, "f64", name.loc)
            if value is not None:
                typed.append((name.id, value))
        return tuple(typed)

    # Expressions ---------------------------------------------------------------

    def check_expr(self, expr: ast.Expr, device: str | None) -> Checked:
        match expr:
            case ast.Number():
                return expr.value
            case ast.Name():
                return self.check_name(expr)
            case ast.Negate():
                operand = self.check_expr(expr.operand, device)
                if operand is None or isinstance(operand, float):
                    return -operand if operand is not None else None
                return Operation("neg", (operand,), operand.type, expr.loc, device)
            case ast.Binary():
                left = self.check_expr(expr.left, device)
                right = self.check_expr(expr.right, device)
                return self.check_binary(expr, left, right, device)
            case ast.Call():
                return self.check_call(expr, device)
        raise AssertionError(f"unexpected expression {expr!r}")

    def check_name(self, name: ast.Name) -> Checked:
        binding = self.scope.values.get(name.id)
        if binding is not None:
            if binding.literal is not None:
                return binding.literal
            if binding.type is None:
                return None  # its definition already failed
            return Value(name.id, binding.type)
        if name.id in self.param_locs:
            self.error(name.loc, f"{name.id} is a param; params can only be used in shapes "
                       "and repeat counts")
        elif name.id in KERNEL_PARAMETERS:
            self.error(name.loc, f"{name.id} is a kernel; call it as {name.id}(...)")
        elif name.id in self.scope.loop_locals:
            assigned, repeat = self.scope.loop_locals[name.id]
            self.error(name.loc, f"{name.id} is assigned inside the repeat block at line "
                       f"{repeat.line} (line {assigned.line}) but not bound before it, so it "
                       "does not exist after the block; bind it before the repeat")
        else:
            known = list(self.scope.values)
            self.error(name.loc, f"unknown name '{name.id}'{_suggest(name.id, known)}")
        return None

    def check_binary(
        self, expr: ast.Binary, left: Checked, right: Checked, device: str | None
    ) -> Checked:
        if left is None or right is None:
            return None
        if isinstance(left, float) and isinstance(right, float):
            return _fold(expr.op, left, right)
        if isinstance(left, float):
            assert not isinstance(right, float)
            left = self.constant(left, right.type.dtype, expr.left.loc)
        if isinstance(right, float):
            assert left is not None and not isinstance(left, float)
            right = self.constant(right, left.type.dtype, expr.right.loc)
        if left is None or right is None:
            return None
        a, b = left.type, right.type
        if a.dtype != b.dtype:
            self.error(expr.loc, f"'{expr.op}': dtypes differ: {a} and {b}; annc does not "
                       "convert between f32 and f64")
            return None
        kernel = BINARY_KERNELS[expr.op]
        try:
            shape = KERNELS[kernel].result_shape((a.shape, b.shape))
        except ShapeMismatch as mismatch:
            self.error(expr.loc, f"'{expr.op}': {mismatch.describe([str(a), str(b)])}")
            return None
        return Operation(kernel, (left, right), TensorType(a.dtype, shape), expr.loc, device)

    def check_call(self, call: ast.Call, device: str | None) -> Checked:
        kernel = call.kernel
        if kernel not in KERNEL_PARAMETERS:
            if kernel in self.scope.values or kernel in self.param_locs:
                self.error(call.loc, f"{kernel} is not a kernel and cannot be called")
            else:
                self.error(call.loc, _unknown_kernel(kernel))
            for arg in call.args:
                self.check_expr(arg, device)
            return None
        parameters = KERNEL_PARAMETERS[kernel]
        args = [self.check_expr(arg, device) for arg in call.args]
        if len(args) != len(parameters):
            self.error(call.loc, f"{kernel} takes {_plural(len(parameters), 'argument')} "
                       f"({kernel}({', '.join(parameters)})), got {len(args)}")
            return None
        if any(arg is None for arg in args):
            return None
        if len(args) == 1 and isinstance(args[0], float) and kernel in FOLDED_CALLS:
            return _fold_call(kernel, args[0])
        for position, checked in enumerate(args, start=1):
            if isinstance(checked, float):
                self.error(call.args[position - 1].loc if hasattr(call.args[position - 1], "loc")
                           else call.loc, f"{kernel}: argument {position} is a number; "
                           f"{kernel} takes tensors")
                return None
        typed = [a for a in args if not isinstance(a, float) and a is not None]
        result = self.kernel_result(call, [a.type for a in typed])
        if result is None:
            return None
        return Operation(kernel, tuple(typed), result, call.loc, device)

    def kernel_result(self, call: ast.Call, types: list[TensorType]) -> TensorType | None:
        """The result type of a kernel on operands of these types, or None (reported)."""
        kernel = call.kernel
        shown = " and ".join(map(str, types))
        if len({t.dtype for t in types}) > 1:
            self.error(call.loc, f"{kernel}: dtypes differ: {shown}")
            return None
        dtype = types[0].dtype
        try:
            shape = KERNELS[kernel].result_shape(tuple(t.shape for t in types))
        except ShapeMismatch as mismatch:
            self.error(call.loc, f"{kernel}: {mismatch.describe([str(t) for t in types])}")
            return None
        return TensorType(dtype, shape)


def _command_line_error(line: str, column: int, message: str) -> Diagnostic:
    return Diagnostic("<command line>", 1, column, message, line)


def _check_overrides(
    program: ast.Program, overrides: Mapping[str, int | str]
) -> tuple[dict[str, int], list[Diagnostic]]:
    """Validates `-D NAME=VALUE` overrides against the program's params."""
    declared = [s.name for s in program.statements if isinstance(s, ast.Param)]
    parts = [f"-D {name}={value}" for name, value in overrides.items()]
    line = " ".join(parts)
    values: dict[str, int] = {}
    diagnostics: list[Diagnostic] = []
    column = 1
    for part, (name, value) in zip(parts, overrides.items(), strict=True):
        text = str(value)
        if name not in declared:
            listed = ", ".join(declared) if declared else "none"
            diagnostics.append(_command_line_error(
                line, column + 3, f"-D {name}: the program declares no param {name} "
                f"(its params: {listed}){_suggest(name, declared)}"))
        elif isinstance(value, bool) or not (text.isascii() and text.isdigit()):
            diagnostics.append(_command_line_error(
                line, column + 4 + len(name), f"-D {name}={text}: a param must be a "
                "non-negative integer"))
        else:
            values[name] = int(text)
        column += len(part) + 1
    return values, diagnostics


def check(
    program: ast.Program,
    text: str,
    params: Mapping[str, int | str] | None = None,
    targets: tuple[str, ...] | None = None,
) -> TypedProgram:
    """Checks a parsed program; `params` are -D overrides, `targets` a --target override."""
    values, diagnostics = _check_overrides(program, params or {})
    if targets is not None:
        unknown = [t for t in targets if t not in DEVICES]
        if unknown:
            line = "--target " + ",".join(targets)
            diagnostics.append(_command_line_error(
                line, line.index(unknown[0]) + 1,
                f"unknown device '{unknown[0]}'; devices are {', '.join(DEVICES)}"))
    if diagnostics:
        raise CompileError(diagnostics)
    checker = _Checker(program, _Source(text), values, targets)
    typed = checker.check_program()
    if checker.diagnostics:
        raise CompileError(checker.diagnostics)
    return typed
