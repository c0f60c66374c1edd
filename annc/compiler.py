"""The pipeline, top to bottom: text -> AST -> checked program -> IR -> selected IR.

Each stage has a name that `--emit` (and `emit=`) can stop at and print:
`ast` (the syntax tree), `ir` (the `kernel` dialect as lowered, nothing chosen
yet), `fused` (after `canonicalize-kernel`, the user's `--passes` and the
`fuse-regions` pass: fusable chains and whole loops are `kernel.region` ops, still
candidates only) and `selected` (after the `select-variants` pass: every op and
region names its variant, device and predicted time).

IR fed back in (`annc.ir_input`: a `.mlir` file at any of the three IR stages) goes
through the same pipeline from where it stands: lowered IR is canonicalized, passed
through `--passes`, fused and selected; fused IR is selected; selected IR runs its
selection as written.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp
from xdsl.printer import Printer

from annc.dsl import ast
from annc.dsl.canonicalization import canonicalize
from annc.dsl.checks import check
from annc.dsl.errors import AnncError, CompileError, Diagnostic
from annc.dsl.lowering import lower
from annc.dsl.parser import nested_too_deeply, parse
from annc.hardware.devices.home import check_home
from annc.history import expected_runs, program_key
from annc.ir_input import is_ir, parse_ir, stage_of
from annc.pass_pipeline import apply_passes, pipeline
from annc.passes.fusion import fuse_regions
from annc.passes.measuring import MEASURE_MODES
from annc.passes.overrides import override_variants
from annc.passes.select_variants import Plan, SelectVariants, apply_plan
from annc.plans import keep, kept_plan, plan_key
from annc.predictor.cost_model import CostModel
from annc.recording import record_measured, recording_enabled

STAGES = ("ast", "ir", "fused", "selected")
"""The stages `emit` can name, in pipeline order."""


@dataclass
class Compilation:
    """What the pipeline made of a program: the program at the stage asked for and,
    from `selected` on, the selection plan the IR was rewritten with."""

    stage: str
    program: ast.Program | None
    """The syntax tree (None for IR fed back in, which has none)."""
    module: ModuleOp | None = None
    """The IR (None at stage `ast`): after selection and overrides, exactly what runs."""
    plan: Plan | None = None
    """Every op's candidates, predictions and choice, with the notes (stage `selected`)."""
    program_key: str = ""
    """The program as `annc.history` counts its runs (stage `selected`)."""

    @property
    def ir(self) -> ModuleOp:
        if self.module is None:
            raise AnncError(f"the program was compiled to the {self.stage} stage, not to IR")
        return self.module

    @property
    def selection(self) -> Plan:
        if self.plan is None and self.stage == "selected":
            raise AnncError("the IR came in selected: its choices are written in it, and "
                            "there is no plan of candidates; give its lowered or fused IR")
        if self.plan is None:
            raise AnncError(f"the program was compiled to the {self.stage} stage; "
                            "no variants were selected")
        return self.plan

    @property
    def notes(self) -> list[str]:
        """What selection has to say, then which models it used (none before it)."""
        if self.plan is None:
            return []
        return [*self.plan.notes, f"note: variants chosen with {self.plan.models}"]

    def printed(self, debuginfo: bool = False) -> str:
        """The program as `--emit` prints it: the syntax tree, or the IR (with every op's
        location where `debuginfo`)."""
        if self.module is not None:
            if not debuginfo:
                return str(self.module)
            out = io.StringIO()
            Printer(stream=out, print_debuginfo=True).print_op(self.module)
            return out.getvalue()
        assert self.program is not None
        return ast.format_tree(self.program)


def select(module: ModuleOp, models: CostModel | None = None, measure: str = "auto",
           record: bool = True, kept_plans: bool = False, program: str = ""
           ) -> Plan:
    """Runs `select-variants` on the module in place; returns the plan it applied.

    `measure` (auto, never, always) lets selection time close candidates first
    (`passes.measuring`); what it timed is kept as wisdom unless `record` is false
    or recording is off (`ANNC_NO_RECORD=1`). Builds are weighed against the runs
    this program is expected to have (`annc.history`). With `kept_plans`, a plan kept
    for this very IR and state (`annc.plans`) is applied instead, and a new one is
    kept. `program` is the program's `annc.history.program_key` ("" for IR that no
    program text made: no history, no kept plan)."""
    if measure not in MEASURE_MODES:
        raise AnncError(f"--measure: expected one of {', '.join(MEASURE_MODES)}, "
                        f"got {measure!r}")
    runs = expected_runs(program) if program else 1
    key = plan_key(program, measure, runs) if kept_plans and program else None
    refused: list[str] = []
    plan = kept_plan(module, key, refused) if key is not None else None
    if plan is not None:
        return plan
    plan = SelectVariants(measure=measure, runs=runs).plan(module, models)
    plan.notes.extend(refused)
    apply_plan(plan)  # sets typed attributes per op: the IR stays valid
    if plan.measured and plan.chosen_models is not None and recording_enabled(not record):
        record_measured(plan, plan.chosen_models)
    if key is not None:
        keep(plan, key)
    return plan


_FROZEN: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "annc_frozen", default=None)
"""Inside `program_kept_frozen`: whether a pipeline froze what it made (a list, so that
the pipeline can say so to the block around it)."""


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector waits while the pipeline runs. The pipeline makes about
    150,000 objects for a 1,000-op program, and the collections they set off walked
    all of them again and again: selection took 0.31 ms per op in a fresh process
    with the collector on and 0.20 ms with it paused (2026-12-07, median of 5). What
    the pipeline leaves for it is collected afterwards, or, inside
    `program_kept_frozen`, frozen until the block ends."""
    enabled = gc.isenabled()
    frozen = _FROZEN.get()
    gc.disable()
    try:
        yield
    finally:
        if frozen is not None and (frozen or not gc.get_freeze_count()):
            gc.freeze()  # before the collector is back, so it never walks them
            frozen.append(True)
        if enabled:
            gc.enable()


@contextlib.contextmanager
def program_kept_frozen() -> Iterator[None]:
    """For a caller that compiles a program and then uses it (runs it, prints it): what
    the pipeline inside leaves (the IR, the plan, the imports before them) is frozen
    (`gc.freeze`) until the block ends, so that the collections its use sets off do not
    walk it again. Unfrozen, the first collections after a pipeline of 8,000 statements
    took 2.3 s and a run's `execute_s` 1.4-1.7 s where frozen 0.6-0.7 s (2026-12-07,
    under load). Where something else froze objects first, nothing is frozen here."""
    frozen: list[bool] = []
    token = _FROZEN.set(frozen)
    try:
        yield
    finally:
        _FROZEN.reset(token)
        if frozen:
            gc.unfreeze()


def compile_program(
    text: str,
    filename: str = "<input>",
    params: Mapping[str, int | str] | None = None,
    targets: tuple[str, ...] | list[str] | None = None,
    emit: str = "selected",
    measure: str = "auto",
    record: bool = True,
    kept_plans: bool = False,
    variants: Mapping[str, str] | None = None,
    lowered: Callable[[ModuleOp], None] | None = None,
    passes: str = "",
) -> Compilation:
    """The pipeline, top to bottom: parse, check, lower, canonicalize, run the user's
    `passes` (a pipeline in `xdsl-opt`'s syntax, `annc.pass_pipeline`), fuse regions,
    select variants, apply the user's `variants` (kernel -> variant name) as a rewrite.
    Stops at `emit`. `lowered` is told of the IR as soon as it exists (a run gets ready
    beside the rest). Text that is IR (`annc.ir_input.is_ir`) starts where it stands.

    Every command reads its program through here, so all of them see one choice."""
    if emit not in STAGES:
        raise AnncError(f"unknown stage {emit!r}; stages are {', '.join(STAGES)}")
    check_home()
    if passes.strip():
        pipeline(passes)  # a pass that does not exist is an error at any stage
    with _collector_paused():
        if is_ir(text, filename):
            if params or targets is not None:
                raise AnncError(f"{filename}: is IR, whose params and targets were fixed "
                                "when it was lowered; -D and --target apply to programs")
            return _ir_pipeline(text, filename, emit, measure, record, variants, lowered,
                                passes)
        return _pipeline(text, filename, params, targets, emit, measure, record, kept_plans,
                         variants, lowered, passes)


def _pipeline(text: str, filename: str, params: Mapping[str, int | str] | None,
              targets: tuple[str, ...] | list[str] | None, emit: str, measure: str,
              record: bool, kept_plans: bool, variants: Mapping[str, str] | None,
              lowered: Callable[[ModuleOp], None] | None, passes: str) -> Compilation:
    program = parse(text, filename)
    if emit == "ast":
        return Compilation(emit, program)
    try:
        typed = check(program, text, params, tuple(targets) if targets is not None else None)
        module = lower(typed)
    except RecursionError:
        raise nested_too_deeply(text, filename) from None
    if emit == "ir":
        return Compilation(emit, program, module)
    if lowered is not None:
        lowered(module)
    canonicalize(module)
    apply_passes(module, passes)
    fuse_regions(module)
    if emit == "fused":
        return Compilation(emit, program, module)
    key = program_key(text, {**(params or {}), **({"--passes": passes} if passes else {})},
                      targets)
    plan = select(module, measure=measure, record=record, kept_plans=kept_plans,
                  program=key)
    if variants:
        override_variants(module, variants, plan)
    return Compilation(emit, program, module, plan, key)


def _ir_pipeline(text: str, filename: str, emit: str, measure: str, record: bool,
                 variants: Mapping[str, str] | None,
                 lowered: Callable[[ModuleOp], None] | None, passes: str) -> Compilation:
    """IR fed back in, taken from its stage to `emit`: only what is still needed runs."""
    if emit == "ast":
        raise AnncError(f"{filename}: is IR, which has no syntax tree; emit one of "
                        f"{', '.join(STAGES[1:])}")
    module = parse_ir(text, filename)
    stage = stage_of(module)
    if STAGES.index(emit) < STAGES.index(stage):
        raise AnncError(f"{filename}: the IR is at the {stage} stage already, past {emit}")
    if lowered is not None:
        lowered(module)
    if stage == "ir" and emit != "ir":
        canonicalize(module)
        apply_passes(module, passes)
        fuse_regions(module)
        stage = "fused"
    elif passes:
        raise AnncError(f"--passes: {filename} is at the {stage} stage; passes run on "
                        "lowered IR, before fuse-regions")
    plan = None
    if stage == "fused" and emit == "selected":
        plan = select(module, measure=measure, record=record)
    if variants and emit == "selected":
        override_variants(module, variants, plan)
    return Compilation(emit, None, module, plan)


def compile_source(
    text: str,
    filename: str = "<input>",
    params: Mapping[str, int | str] | None = None,
    targets: tuple[str, ...] | list[str] | None = None,
    emit: str = "selected",
    measure: str = "auto",
) -> ast.Program | ModuleOp:
    """Compiles program text up to the stage `emit` names; raises CompileError.

    The program at that stage: the AST or the IR (`compile_program` also returns
    the selection plan). `measure` is selection's policy for timing close candidates."""
    compiled = compile_program(text, filename, params, targets, emit, measure)
    if compiled.module is not None:
        return compiled.module
    assert compiled.program is not None
    return compiled.program


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
