"""`annc tune`: measure every candidate of every op of a workload (the oracle).

Each kernel op is measured alone, on its real operand shapes, with every
variant of its kernel that applies, on every device the program may use (its
pin, else its targets that this machine has). Measurements run in a worker
process, so a variant that crashes or hangs is reported, not fatal. Ops with
the same kernel, shapes and dtype share their measurements.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from xdsl.dialects.builtin import ModuleOp, TensorType

from annc.commands.common import (
    add_program_arguments,
    add_selection_arguments,
    add_target_argument,
    compact_shapes,
    defines,
    printable,
    seconds_argument,
    short_time,
    targets,
)
from annc.commands.tables import add_wide_argument, console_for
from annc.commands.variants import comma_names
from annc.compiler import compile_program, read_source
from annc.dsl import dtypes
from annc.dsl.dialect import KernelOp
from annc.dsl.lowering import module_targets
from annc.dsl.records import Record
from annc.hardware.calibration.runs import select_variants
from annc.hardware.devices.available import available_devices
from annc.hardware.measure.settings import TimingSettings
from annc.hardware.measure.worker import MeasureWorker, Request
from annc.hardware.variants.reference import REFERENCE
from annc.passes.select_variants import Plan
from annc.passes.sites import data_flow
from annc.recording import notes as recording_notes
from annc.recording import record_tune, recording_enabled

HELP = "measure every candidate variant and device of every op of a workload"

TUNE_SETTINGS = TimingSettings(min_repeats=5, min_seconds=0.1, max_repeats=1000,
                               max_seconds=10.0, warmup=1)
TUNE_TIMEOUT_S = 120.0

Shapes = tuple[tuple[int, ...], ...]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_program_arguments(parser)
    add_target_argument(parser)
    parser.add_argument("--report", choices=("table", "json"), default="table",
                        help="a table (default) or one JSON object on standard output")
    add_wide_argument(parser)
    parser.add_argument("--variants", metavar="NAME,...",
                        help="only candidates of these variant names, e.g. numpy,jax")
    parser.add_argument("--timeout", type=seconds_argument, default=TUNE_TIMEOUT_S,
                        metavar="SECONDS",
                        help=f"give up on a candidate after this long (default "
                        f"{TUNE_TIMEOUT_S:g})")
    add_selection_arguments(parser, measure=False)


def op_signature(op: KernelOp) -> tuple[Shapes, str]:
    """The op's operand shapes and dtype name, from its operand types."""
    shapes = []
    dtype = "float64"
    for operand in op.operands:
        type_ = operand.type
        assert isinstance(type_, TensorType)
        shapes.append(tuple(int(d) for d in type_.get_shape()))
        dtype = dtypes.stored_name(dtypes.of_tensor(type_))
    return tuple(shapes), dtype


def allowed_devices(module: ModuleOp, pin: str | None) -> list[str]:
    """The op's pin, else the module's targets that this machine has (all when none)."""
    here = list(available_devices())
    if pin is not None:
        return [pin] if pin in here else []
    wanted = module_targets(module)
    return here if wanted is None else [d for d in here if d in wanted]


def tune(module: ModuleOp, names: Sequence[str] | None, timeout_s: float,
         console: Console, plan: Plan | None = None) -> dict[str, Any]:
    """The `tune --report json` object for a compiled module.

    With a selection `plan` of the same module, `chosen` and each candidate's
    `predicted_s` come from it; without, `chosen` is the default variant."""
    kernel_ops = [op for op in module.walk() if isinstance(op, KernelOp)]
    planned = plan.ops if plan is not None else [None] * len(kernel_ops)
    trips = [site.trips for site in data_flow(module).sites]
    variants = select_variants(names=names)
    cache: dict[tuple[str, str, str, Shapes, str], Record] = {}
    ops = []
    with MeasureWorker() as worker, console.status("tuning") as status:
        for index, (op, op_plan) in enumerate(zip(kernel_ops, planned, strict=True)):
            predicted = {} if op_plan is None else {
                (c.variant, c.device): c.predicted_s for c in op_plan.candidates}
            cached = set() if op_plan is None else {
                (c.variant, c.device) for c in op_plan.candidates if c.build == "cached"}
            kernel = op.kernel_name()
            shapes, dtype = op_signature(op)
            pin = op_plan.site.pin if op_plan is not None else (
                op.pin_device.data if op.pin_device else None)
            devices = allowed_devices(module, pin)
            candidates = []
            for variant in variants:
                if (variant.kernel != kernel or variant.device not in devices
                        or not variant.applies(shapes, np.dtype(dtype))):
                    continue
                key = (kernel, variant.name, variant.device, shapes, dtype)
                if key not in cache:
                    status.update(f"op {index}: {kernel} {variant.name} on {variant.device}")
                    cache[key] = worker.measure(
                        Request(kernel, variant.name, variant.device, shapes, dtype,
                                TUNE_SETTINGS, source="tune"), timeout_s)
                    if cache[key].status != "ok":
                        console.print(f"note: op {index} ({kernel}): {variant.name} on "
                                      f"{variant.device} {cache[key].status}: "
                                      f"{cache[key].error}", soft_wrap=True)
                measured = cache[key]
                candidates.append({
                    "variant": variant.name, "device": variant.device,
                    "predicted_s": predicted.get((variant.name, variant.device)),
                    "measured_s": measured.seconds if measured.status == "ok" else None,
                    "compile_s": measured.compile_s if measured.status == "ok" else None,
                    "cached": (variant.name, variant.device) in cached,
                })
            chosen = {"variant": REFERENCE, "device": pin or "cpu"}
            if op_plan is not None and op_plan.chosen is not None:
                chosen = {"variant": op_plan.chosen.variant, "device": op_plan.chosen.device}
            ops.append({"index": index, "kernel": kernel, "shapes": [list(s) for s in shapes],
                        "trips": trips[index], "chosen": chosen, "candidates": candidates})
    return {"ops": ops}


def run(args: argparse.Namespace) -> int:
    compiled = compile_program(read_source(args.file), args.file, defines(args), targets(args),
                               "selected", measure="never", record=False)
    module, plan = compiled.ir, compiled.selection
    console = Console(stderr=True)
    for note in [*plan.notes, f"note: chosen with {plan.models}"]:
        console.print(printable(note), soft_wrap=True, markup=False)
    report = tune(module, comma_names(args.variants), args.timeout, console, plan)
    if recording_enabled(args.no_record) and plan.chosen_models is not None:
        record_tune(report, plan, plan.chosen_models)
        for note in recording_notes:
            console.print(printable(note), soft_wrap=True, markup=False)
    if args.report == "json":
        print(json.dumps(report))
    else:
        print_table(report, console_for(args))
    return 0


def print_table(report: dict[str, Any], console: Console) -> None:
    table = Table("#")
    for column in ("kernel", "shapes"):
        table.add_column(column, overflow="fold")
    table.add_column("variant", no_wrap=True)  # names are never cut or wrapped
    for column in ("device", "time", "build"):
        table.add_column(column, no_wrap=True, justify="left" if column == "device" else "right")
    table.add_column("", overflow="fold")
    for op in report["ops"]:
        measured = [c["measured_s"] for c in op["candidates"] if c["measured_s"] is not None]
        best = min(measured, default=None)
        shapes = compact_shapes(op["shapes"])
        if not op["candidates"]:
            table.add_row(str(op["index"]), op["kernel"], shapes, "(no candidate)", "", "-", "-",
                          "")
        for i, c in enumerate(sorted(op["candidates"], key=lambda c: (c["measured_s"] is None,
                                                                        c["measured_s"] or 0))):
            marks = []
            if c["measured_s"] is not None and c["measured_s"] == best:
                marks.append("fastest")
            if (c["variant"], c["device"]) == (op["chosen"]["variant"], op["chosen"]["device"]):
                marks.append("chosen")
            if c.get("cached"):
                marks.append("cached")
            table.add_row(str(op["index"]) if i == 0 else "", op["kernel"] if i == 0 else "",
                          shapes if i == 0 else "", c["variant"], c["device"],
                          short_time(c["measured_s"]), short_time(c["compile_s"]),
                          ", ".join(marks))
        table.add_section()
    console.print(table)
