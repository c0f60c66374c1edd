"""Running a workload: compile, check memory, prepare inputs, plan, execute, report.

Beside each op's times the report splits the run's wall time: `startup_s` (from the
process's start, when annc is the program, to the execution: imports, parsing,
selection), `compile_s` (building or loading kernels that the run waited for) and
`execute_s` (the execution's wall time, making the plan, dispatching steps and
copies included, builds it waited for excluded). Builds made beside the run
(`builds="beside"`, the default: see `hardware.execution.planning`) are listed under
`tiers`; those not done when the run ends go on in their helper process and are kept
for the next run, unless `wait_for_builds` (or `ANNC_WAIT_FOR_BUILDS=1`) makes the run
wait for them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from xdsl.dialects.builtin import ModuleOp

from annc.compiler import compile_program, program_kept_frozen, read_source
from annc.dsl.errors import AnncError
from annc.dsl.lowering import module_targets
from annc.forecast import long_run_note
from annc.hardware import events
from annc.hardware.devices import signing
from annc.hardware.execution.beside import Beside
from annc.hardware.execution.memory import ensure_fits
from annc.hardware.execution.plan import ExecutablePlan, OpRun
from annc.hardware.execution.planning import BUILDS, Builds, compile_plan
from annc.hardware.execution.progress import RunProgress
from annc.hardware.execution.rundata import check_seed, input_specs, prepare_inputs
from annc.hardware.execution.shard_inputs import InputsByRows
from annc.hardware.execution.warm import WarmUp
from annc.hardware.variants.compiled import build_seconds
from annc.hardware.variants.halide import build_cache
from annc.history import ProgramSource, count_run
from annc.passes.overrides import override_variants
from annc.process import startup_seconds
from annc.recording import env_flag, record_run, recording_enabled, steady_seconds
from annc.recording import notes as recording_notes


@dataclass
class RunResult:
    outputs: dict[str, np.ndarray]
    report: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    records: list[OpRun] = field(default_factory=list, repr=False)
    """What each op did, with every execution's time (split where an op switched
    variants)."""
    names: list[str] = field(default_factory=list)
    """Every output's name, in the order the program returns them."""
    on_mesh: dict[str, Any] = field(default_factory=dict, repr=False)
    """The outputs a sharded region left split over the mesh, not gathered (only where
    the run was asked for them so: `run_module(..., gather=False)`)."""


WAIT_ENV = "ANNC_WAIT_FOR_BUILDS"
BUILDS_ENV = "ANNC_BUILDS"


def builds_mode(builds: str | None = None) -> str:
    """`builds` where given, else `$ANNC_BUILDS`, else `beside`; refused before anything
    is prepared where it is none of `BUILDS`."""
    mode = builds or os.environ.get(BUILDS_ENV) or "beside"
    if mode not in BUILDS:
        raise AnncError(f"builds: expected one of {', '.join(BUILDS)}, got {mode!r}")
    return mode


def waits_for_builds(wait: bool | None = None) -> bool:
    """`wait` where given, else whether `ANNC_WAIT_FOR_BUILDS` is 1, true or yes."""
    return env_flag(WAIT_ENV) if wait is None else wait


def _devices() -> dict[str, Any]:
    from annc.hardware.devices import available as devices

    finder = getattr(devices, "available_devices", None)
    return finder() if finder is not None else {"cpu": devices.CPU}


def run_module(
    module: ModuleOp,
    inputs: Mapping[str, ArrayLike] | None = None,
    seed: int = 0,
    variants: Mapping[str, str] | None = None,
    models: str | None = None,
    builds: str | None = None,
    wait_for_builds: bool | None = None,
    progress: bool | RunProgress = False,
    warm: WarmUp | None = None,
    generate_missing: bool = False,
    by_rows: InputsByRows | None = None,
    gather: bool = True,
) -> RunResult:
    """Runs compiled IR on the given inputs, or on inputs generated from `seed`.

    With `inputs` None every input is drawn uniform in [0, 1) from `seed`; otherwise
    every declared input must be given (a `MissingInputsError` lists those that are
    not) unless `generate_missing` asks for the missing ones to be drawn, each holding
    the values it holds when no input is given (see `hardware.execution.rundata`).

    `variants` (kernel -> variant name) rewrites the IR before it runs
    (`passes.overrides`); `models` names the model set that selected the variants, for
    the report. `builds` (beside, first, never) says what to do about chosen variants
    whose builds are not kept (`hardware.execution.planning`); `progress` shows a bar
    on standard error for a run that lasts (or is told the trips of the outer loops);
    `warm` is the process's warm-up for this run, started while it compiled
    (`hardware.execution.warm`). A distributed run gives its inputs `by_rows` instead
    (`hardware.execution.shard_inputs`), and with `gather` False finds the outputs
    that sharded regions left on the mesh under `on_mesh`, not gathered whole."""
    builds = builds_mode(builds)
    counted = events.snapshot()
    if variants:
        override_variants(module, variants)
    ensure_fits(module)
    prepared = by_rows or prepare_inputs(input_specs(module), inputs, seed, generate_missing)
    notes = list(prepared.notes)
    devices = _devices()
    notes += [f"note: target {name} is not on this machine; skipping it"
              for name in module_targets(module) or () if name not in devices]
    beside = Beside() if builds == "beside" else None
    plan_builds = Builds(builds, beside)
    built, began = build_seconds(), time.perf_counter()
    try:
        told = progress if isinstance(progress, RunProgress) else RunProgress(0, progress)
        executable = compile_plan(module, devices, plan_builds, told)
        if warm is not None:
            warm.finish()  # after the builds, so that the execution gets its memory
        held = executable.run_kept(prepared.arrays) if not gather else dict(
            executable.run(prepared.arrays))
    except BaseException:
        if beside is not None:
            beside.stop()
        raise
    compile_s = build_seconds() - built
    execute_s = time.perf_counter() - began - compile_s
    if beside is not None:
        beside.finish(wait=waits_for_builds(wait_for_builds))
    notes += executable.notes + _build_notes(plan_builds, executable)
    records = executable.records()
    ops = [
        {
            "index": r.index,
            "kernel": r.kernel,
            "variant": r.variant,
            "device": r.device,
            "shapes": r.shapes,
            "predicted_s": None if r.predicted_s is None else r.predicted_s * r.executions,
            "measured_s": r.measured_s,
            "steady_s": steady_seconds(r.times) if r.times else None,
            "executions": r.executions,
            "loc": r.loc,
        }
        for r in records
    ]
    ran = [region for region in executable.regions if region.times_ns]
    regions = [{**region.report(),
                "steady_s": steady_seconds([t * 1e-9 for t in region.times_ns])}
               for region in ran]
    predicted = [None if r.predicted_s is None else r.predicted_s * r.executions
                 for r in records] + [region.predicted_total_s for region in ran]
    report = {
        "ops": ops,
        "regions": regions,
        "tiers": _tiers_report(executable, plan_builds),
        "total_predicted_s": _total(predicted),
        "total_measured_s": (sum(r.measured_s for r in records)
                             + sum(region.measured_s for region in ran)),
        "transfer_s": executable.transfer_s,
        "models": models,
        "compile_s": compile_s,
        "execute_s": execute_s,
        "notes": notes,
        "events": events.since(counted),
    }
    outputs = {name: value for name, value in held.items() if isinstance(value, np.ndarray)}
    return RunResult(outputs, report, notes, executable.tier_records(), list(held),
                     {name: value for name, value in held.items() if name not in outputs})


def _tiers_report(executable: ExecutablePlan, builds: Builds) -> list[dict[str, Any]]:
    """Every op and region that started on one variant while another built beside it."""
    status = {s.job.key: s.status for s in builds.beside.jobs} if builds.beside else {}
    return [{"at": where, "started_on": tier.started_on or tier.variant,
             "target": tier.target, "switched": tier.switched_after is not None,
             "switched_after": tier.switched_after, "switched_at_s": tier.switched_at_s,
             "build": status.get(tier.build, "not started"), "job": tier.label}
            for where, tier in executable.tiers]


def _build_notes(builds: Builds, executable: ExecutablePlan) -> list[str]:
    """What the run did about builds it did not wait for."""
    if builds.mode == "never":
        return [f"note: not built (--builds never): {job.label}" for job in builds.jobs]
    if builds.beside is None:
        return []
    notes = list(builds.beside.notes)
    going = builds.beside.building()
    if going:
        labels = "; ".join(job.label for job in going)
        builds_go = "1 build beside the run goes" if len(going) == 1 else \
            f"{len(going)} builds beside the run go"
        notes.append(f"note: {builds_go} on in the background (pid "
                     f"{builds.beside.helper_pid}) and will be kept for the next run: {labels}")
    return notes


def _total(predicted: list[float | None]) -> float | None:
    """The sum of the ops' predicted times; None when there are none or one is unknown."""
    known = [p for p in predicted if p is not None]
    return sum(known) if predicted and len(known) == len(predicted) else None


def run_file(
    path: str | Path,
    inputs: Mapping[str, ArrayLike] | None = None,
    params: Mapping[str, int | str] | None = None,
    seed: int = 0,
    targets: tuple[str, ...] | list[str] | None = None,
    variants: Mapping[str, str] | None = None,
    measure: str = "auto",
    record: bool = True,
    builds: str | None = None,
    wait_for_builds: bool | None = None,
    progress: bool = False,
    generate_missing: bool = False,
    announce: Callable[[str], None] | None = None,
    passes: str = "",
) -> RunResult:
    """Compiles and runs a program file; `result.outputs` maps output names to arrays.
    The file may be IR (`.mlir`) at any stage; it goes on from where it stands
    (`annc.compiler`). `passes` is a pipeline of the user's passes (`--passes`).

    `inputs` maps every input the program declares to its array (converted to the
    declared dtype); with none given every input is drawn uniform in [0, 1) from `seed`,
    and `generate_missing` draws those missing from `inputs` alike, with a note.

    Every kernel runs the variant and device `select-variants` chose, except the
    kernels named in `variants` (kernel -> variant name), which run that variant.
    `measure` is selection's policy for timing close candidates; with `record`
    (and `ANNC_NO_RECORD` unset) what the run measured is kept and learnt from.
    `builds` says what to do about chosen variants whose builds are not kept:
    `beside` (start on what can run now, build beside the run, switch when ready),
    `first` (build before running) or `never` (run what needs no build); default
    `$ANNC_BUILDS`, else `beside`;
    `wait_for_builds` (default: `ANNC_WAIT_FOR_BUILDS`) makes the call wait for builds
    still going on beside it when the run ends; `progress` shows a bar on standard
    error for a run that lasts. A run predicted to take over a minute has a note
    (`annc.forecast`), given to `announce` before the run starts where there is one,
    else kept with the result's notes."""
    check_seed(seed)  # before reading and compiling, which may take seconds
    return run_source(read_source(path), str(path), inputs, params, seed, targets, variants,
                      measure, record, builds, wait_for_builds, progress, generate_missing,
                      announce, passes)


def run_source(
    text: str,
    filename: str = "<input>",
    inputs: Mapping[str, ArrayLike] | None = None,
    params: Mapping[str, int | str] | None = None,
    seed: int = 0,
    targets: tuple[str, ...] | list[str] | None = None,
    variants: Mapping[str, str] | None = None,
    measure: str = "auto",
    record: bool = True,
    builds: str | None = None,
    wait_for_builds: bool | None = None,
    progress: bool = False,
    generate_missing: bool = False,
    announce: Callable[[str], None] | None = None,
    passes: str = "",
) -> RunResult:
    """Like `run_file`, for program text (or IR); `filename` names it in errors and in the
    report's locations, as in `compile_source`. Its past runs (which weigh its builds)
    and its kept plan are found by its text, params and targets, whatever its name."""
    check_seed(seed)  # before compiling, which may take seconds
    began, built, counted = time.perf_counter(), build_seconds(), events.snapshot()
    startup_s = startup_seconds()
    recording = recording_enabled(not record)
    warm = WarmUp()
    with program_kept_frozen():
        compiled = compile_program(text, filename, params, targets, "selected", measure,
                                   record=recording, kept_plans=True, variants=variants,
                                   lowered=warm.start, passes=passes)
        plan = compiled.plan  # None for IR selected before it came in: it runs as written
        selection_builds = build_seconds() - built
        startup_s += time.perf_counter() - began - selection_builds
        long_run = long_run_note(plan) if plan is not None else None
        if long_run is not None and announce is not None:
            announce(long_run)
            long_run = None
        models = plan.models if plan is not None else "the selection written in the IR"
        result = run_module(compiled.ir, inputs, seed, models=models, builds=builds,
                            wait_for_builds=wait_for_builds, progress=progress, warm=warm,
                            generate_missing=generate_missing)
        result.report = {**result.report, "startup_s": startup_s,
                         "compile_s": result.report["compile_s"] + selection_builds}
        if compiled.program_key:
            count_run(compiled.program_key, ProgramSource(
                text, filename, {str(k): str(v) for k, v in (params or {}).items()},
                None if targets is None else list(targets)))
        if recording and plan is not None and plan.chosen_models is not None:
            record_run(plan, result.records, plan.chosen_models)
    notes = [*compiled.notes, *([long_run] if long_run else []), *result.notes,
             *build_cache.notes, *signing.notes, *recording_notes]
    result.notes = list(dict.fromkeys(notes))
    result.report["notes"] = result.notes
    result.report["events"] = events.since(counted)
    return result
