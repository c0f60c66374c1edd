"""IR fed back in: `annc run` and `annc compile` of a `.mlir` file at any stage.

A file is IR where its name ends in `.mlir` or its text starts (after blank lines and
`//` comments) with a `builtin.module` or a `func.func`. It is parsed in annc's context
(`dsl.context`), verified by the dialect and by `verify-selection`, and its stage read
from what it holds: `selected` where an op names its variant, `fused` where it has a
`kernel.region`, else `ir` (as lowered). Every problem is a located plain error: a
parse error at its line and column in the file, an op that does not verify at the
op's line (or at its source location, where it carries one).
"""

from __future__ import annotations

import re

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException

from annc.dsl.context import annc_context
from annc.dsl.dialect import ChosenOp, RegionOp, where
from annc.dsl.errors import CompileError, Diagnostic, source_lines
from annc.dsl.lowering import INPUTS_ATTRIBUTE, OUTPUTS_ATTRIBUTE
from annc.passes.verify_selection import selection_problems

_IR_STARTS = ("builtin.module", '"builtin.module"', "module", "func.func", '"func.func"')


def is_ir(text: str, filename: str) -> bool:
    """Whether the text is MLIR rather than an annc program."""
    if filename.endswith(".mlir"):
        return True
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("//"):
            return stripped.startswith(_IR_STARTS)
    return False


def _error(text: str, filename: str, line: int, column: int, message: str) -> CompileError:
    lines = source_lines(text)
    shown = lines[line - 1] if 0 < line <= len(lines) else ""
    return CompileError([Diagnostic(filename, line, column, message, shown)])


def _op_position(text: str, module: ModuleOp, op: Operation) -> tuple[int, int]:
    """The line and column of the op in the text: the n-th op of its name is the n-th
    time its name is written (ops print in the order `walk` visits them)."""
    same = [o for o in module.walk() if o.name == op.name]
    found = list(re.finditer(rf"(?<![\w.]){re.escape(op.name)}(?![\w.])", text))
    index = same.index(op)
    if index >= len(found):
        return 1, 1
    start = found[index].start()
    line = text.count("\n", 0, start) + 1
    return line, start - (text.rfind("\n", 0, start) + 1) + 1


def _op_error(text: str, filename: str, module: ModuleOp, op: Operation,
              message: str) -> CompileError:
    line, column = _op_position(text, module, op)
    source = where(op)
    return _error(text, filename, line, column,
                  message + (f" (the op of {source})" if source else ""))


def parse_ir(text: str, filename: str) -> ModuleOp:
    """The module the text holds, verified; a located CompileError where it is not
    valid annc IR."""
    try:
        module = Parser(annc_context(), text, filename).parse_module()
    except ParseError as error:
        location = error.span.get_location()
        raise _error(text, filename, location.line, location.col,
                     f"this is not valid annc IR: {error.msg}") from None
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except VerifyException as error:
            raise _op_error(text, filename, module, op, str(error)) from None
    problems = selection_problems(module)
    if problems:
        op, message = problems[0]
        raise _op_error(text, filename, module, op, message)
    for attribute in (INPUTS_ATTRIBUTE, OUTPUTS_ATTRIBUTE):
        if attribute not in module.attributes:
            raise _error(text, filename, 1, 1,
                         f"the module has no {attribute} attribute: annc runs IR that it "
                         "lowered (`annc compile --emit ir`), which names its inputs and "
                         "outputs there")
    return module


def stage_of(module: ModuleOp) -> str:
    """How far the IR has come: `selected`, `fused` or `ir`."""
    ops = list(module.walk())
    if any(isinstance(op, ChosenOp) and op.variant is not None for op in ops):
        return "selected"
    if any(isinstance(op, RegionOp) for op in ops):
        return "fused"
    return "ir"
