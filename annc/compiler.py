"""The pipeline, top to bottom: text -> AST -> checked program -> IR -> selected IR.

Each stage has a name that `--emit` (and `emit=`) can stop at and print:
`ast` (the syntax tree), `ir` (the `kernel` dialect, nothing chosen yet) and
`selected` (after the `select-variants` pass: every op names its variant,
device and predicted time).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp

from annc.recording import record_measured, recording_enabled
from dsl import ast
from dsl.checks import check
from dsl.errors import AnncError, CompileError, Diagnostic
from dsl.lowering import lower
from dsl.parser import nested_too_deeply, parse
from passes.measuring import MEASURE_MODES
from passes.models import ChosenModels
from passes.select_variants import Plan, apply_plan, plan_selection

STAGES = ("ast", "ir", "selected")
"""The stages `emit` can name, in pipeline order."""


def select(module: ModuleOp, models: ChosenModels | None = None, measure: str = "auto",
           record: bool = True) -> Plan:
    """Runs `select-variants` on the module in place; returns the plan it applied.

    `measure` (auto, never, always) lets selection time close candidates first
    (`passes.measuring`); what it timed is kept as wisdom unless `record` is false
    or recording is off (`ANNC_NO_RECORD=1`)."""
    if measure not in MEASURE_MODES:
        raise AnncError(f"--measure: expected one of {', '.join(MEASURE_MODES)}, "
                        f"got {measure!r}")
    plan = plan_selection(module, models, measure)
    apply_plan(plan)  # sets typed attributes per op: the IR stays valid
    if plan.measured and plan.chosen_models is not None and recording_enabled(not record):
        record_measured(plan, plan.chosen_models)
    return plan


def compile_source(
    text: str,
    filename: str = "<input>",
    params: Mapping[str, int | str] | None = None,
    targets: tuple[str, ...] | list[str] | None = None,
    emit: str = "selected",
    measure: str = "auto",
) -> ast.Program | ModuleOp:
    """Compiles program text up to the stage `emit` names; raises CompileError.

    `measure` is selection's policy for timing close candidates (see `select`)."""
    if emit not in STAGES:
        raise AnncError(f"unknown stage {emit!r}; stages are {', '.join(STAGES)}")
    program = parse(text, filename)
    if emit == "ast":
        return program
    try:
        typed = check(program, text, params, tuple(targets) if targets is not None else None)
        module = lower(typed)
    except RecursionError:
        raise nested_too_deeply(text, filename) from None
    if emit == "selected":
        select(module, measure=measure)
    return module


def read_source(path: str | Path) -> str:
    """A program file's text, or a located error if it is not readable UTF-8 text."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AnncError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AnncError(f"{path}: is a directory, not a program file") from None
    except OSError as error:
        raise AnncError(f"{path}: cannot read it ({error.strerror or error})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        start = data.rfind(b"\n", 0, error.start) + 1
        column = len(data[start:error.start].decode("utf-8", errors="replace")) + 1
        raise CompileError([Diagnostic(
            str(path), line, column,
            f"the file is not UTF-8 text (byte 0x{data[error.start]:02x}); annc programs "
            "are UTF-8 text files",
        )]) from None


def compile_file(
    path: str | Path,
    params: Mapping[str, int | str] | None = None,
    targets: tuple[str, ...] | list[str] | None = None,
    emit: str = "selected",
    measure: str = "auto",
) -> ast.Program | ModuleOp:
    """Like `compile_source`, for a program file."""
    return compile_source(read_source(path), str(path), params, targets, emit, measure)
