"""`annc run`: compile a workload, run it, and show or save its outputs."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from rich.console import Console
from rich.table import Column, Table

from annc.commands.common import (
    add_cluster_arguments,
    add_passes_argument,
    add_program_arguments,
    add_selection_arguments,
    add_target_argument,
    compact_shapes,
    defines,
    key_values,
    print_notes,
    printable,
    short_time,
    targets,
)
from annc.commands.tables import (
    Fitted,
    add_wide_argument,
    compact_table,
    console_for,
    print_fitted,
    right,
)
from annc.dsl import dtypes
from annc.dsl.errors import AnncError, DataError, MissingInputsError
from annc.dsl.types import TensorType
from annc.hardware.execution.planning import BUILDS
from annc.hardware.execution.rundata import check_seed, read_archive, save_outputs
from annc.running import RunResult, run_file

HELP = "compile and run a workload"

RUN_LEGEND = ("runs: how many times it ran; predicted, measured: its time over all its runs; "
              "at: its line and column")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_program_arguments(parser)
    add_target_argument(parser)
    parser.add_argument("--inputs", metavar="IN.npz",
                        help="take every input by name from this archive (without it, every "
                        "input is generated)")
    parser.add_argument("--generate-missing", action="store_true",
                        help="with --inputs: generate the inputs the archive lacks, as "
                        "without --inputs (a note names each)")
    parser.add_argument("--seed", type=seed_argument, default=0, metavar="S",
                        help="seed for generated inputs (uniform in [0, 1)): a non-negative "
                        "integer; default 0")
    parser.add_argument("--save", metavar="OUT.npz", help="write every output to this archive")
    parser.add_argument("--report", choices=("table", "json"),
                        help="show each op's variant, device and time (json: one object on "
                        "standard output)")
    add_wide_argument(parser)
    add_passes_argument(parser)
    parser.add_argument("--variant", metavar="KERNEL=NAME", action="append", default=[],
                        help="force a variant for every op of a kernel, e.g. matmul=numpy")
    parser.add_argument("--builds", choices=BUILDS, default=None,
                        help="for chosen variants whose builds are not kept: start on what "
                        "runs now and build them beside the run (beside, the default; "
                        "ANNC_BUILDS sets another), build them first, or never")
    add_selection_arguments(parser)
    group = add_cluster_arguments(parser, "run as one process of a jax.distributed run: its "
                                  "sharded regions span every process's devices")
    group.add_argument("--shard-regions", action="store_true",
                       help="run every region that can be split over the mesh as "
                       "jax.sharded, whatever the models predict (to measure it)")
    group.add_argument("--gather-limit", type=int, default=None, metavar="BYTES",
                       help="--save writes larger outputs per process, with an index "
                       "(default 1 GiB)")


def seed_argument(text: str) -> int:
    """`--seed`'s type: a non-negative integer, as numpy's generator takes it (of any
    size, up to the digits Python reads from text); anything else is a usage error."""
    try:
        return check_seed(int(text))
    except (ValueError, DataError):
        shown = repr(text) if len(text) <= 40 else f"{text[:20]!r}... ({len(text)} characters)"
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer of at most {sys.get_int_max_str_digits()} "
            f"digits, got {shown}") from None


def _summary(value: np.ndarray) -> str:
    if value.ndim == 0:
        return f"{value.item():.6g}"
    with np.errstate(all="ignore"):
        return (f"min {np.min(value):.6g}  mean {np.mean(value):.6g}  "
                f"max {np.max(value):.6g}") if value.size else "empty"


def _type(value: np.ndarray) -> str:
    return str(TensorType(dtypes.from_numpy(value.dtype), value.shape))


def _print_outputs(console: Console, result: RunResult) -> None:
    table = compact_table("name", "type", "value")
    for name, value in result.outputs.items():
        table.add_row(name, _type(value), _summary(value))
    for name, value in result.on_mesh.items():
        table.add_row(name, _type(value), "in parts, over --gather-limit: not gathered")
    print_fitted(console, [Fitted("outputs", table)])
    console.print(f"kernel time: {result.report['total_measured_s'] * 1e3:.3f} ms")


def print_report(console: Console, result: RunResult, file: str) -> None:
    """What ran, op by op and region by region: its variant and device, how often, and
    its time over all its runs, predicted and measured; its place in the file as
    LINE:COLUMN (the file is in the title). Where a table is too wide for the terminal,
    a device that everything ran on moves into the title, then each operand's shape
    takes a line of its own."""
    ops, regions = result.report["ops"], result.report["regions"]
    devices = {row["device"] for row in [*ops, *regions]}
    one_device = next(iter(devices)) if len(devices) == 1 else None
    for title, rows, table in (("ops", ops, _ops_table), ("regions", regions, _regions_table)):
        if not rows:
            continue
        forms = [Fitted(f"{title} of {file}", table(rows, file, True, False))]
        if one_device is not None:
            forms.append(Fitted(f"{title} of {file}, all on {one_device}",
                                table(rows, file, False, False)))
        forms.append(Fitted(forms[-1].title, table(rows, file, one_device is None, True)))
        print_fitted(console, forms)
    console.print(RUN_LEGEND)
    console.print()


def _ops_table(ops: list[dict], file: str, device: bool, stacked: bool) -> Table:
    """The ops; `stacked`: each operand's shape on a line of its own."""
    table = compact_table(right("#"), "kernel", "variant", *(["device"] if device else []),
                          "shapes", *_time_columns())
    for op in ops:
        shapes = compact_shapes(op["shapes"])
        table.add_row(str(op["index"]), op["kernel"], op["variant"],
                      *([op["device"]] if device else []),
                      shapes.replace(" ", "\n") if stacked else shapes, *_times(op, file))
    return table


def _regions_table(regions: list[dict], file: str, device: bool, stacked: bool) -> Table:
    """The regions that ran; `stacked`: their ops' indices a line each."""
    table = compact_table(right("#"), "kind", "ops", "variant", *(["device"] if device else []),
                          *_time_columns())
    for region in regions:
        table.add_row(str(region["index"]), region["kind"],
                      ("\n" if stacked else ",").join(str(i) for i in region["ops"]),
                      region["variant"], *([region["device"]] if device else []),
                      *_times(region, file))
    return table


def _time_columns() -> list[str | Column]:
    return [right("runs"), right("predicted"), right("measured"), "at"]


def _times(row: dict, file: str) -> list[str]:
    return [str(row["executions"]), short_time(row["predicted_s"]),
            short_time(row["measured_s"]), row["loc"].removeprefix(f"{file}:")]


def _announce(note: str) -> None:
    """A note that must be seen before the run starts (it may run for hours)."""
    print(printable(note), file=sys.stderr, flush=True)


def _distributed(args: argparse.Namespace) -> int:
    """One process of a distributed run: process 0 prints the report and the outputs."""
    from annc import distributed

    if args.variant or args.builds or args.generate_missing:
        raise AnncError("run --distributed: --variant, --builds and --generate-missing "
                        "are not taken (every process runs process 0's plan, builds first)")
    cluster = distributed.Cluster(args.coordinator, args.processes, args.process_id,
                                  args.cluster_timeout or distributed.DEFAULT_TIMEOUT_S)
    with distributed.quiet_stdout():
        done = distributed.run_program(args.file, cluster, args.inputs, defines(args),
                                       args.seed, targets(args), args.measure,
                                       args.shard_regions)
        result = done.result
        first = done.process == 0
        whole = distributed.fits(result, args.gather_limit or distributed.DEFAULT_GATHER_LIMIT)
        split = {name: value.describe() for name, value in result.on_mesh.items()}
        if whole:
            distributed.attempt("gathering the outputs",
                                lambda: distributed.gather_outputs(result))
        if args.save:
            distributed.attempt("saving the outputs", lambda: save_outputs(
                args.save, result.outputs) if whole and first else None if whole else
                distributed.save_parts(args.save, {**result.outputs, **result.on_mesh},
                                       done.process, done.processes, save_outputs))
        peaks = distributed.peak_memory()
    if not first:
        return 0
    print_notes(result.notes)
    result.report["distributed"] = {"processes": done.processes, "devices": done.devices,
                                    "on_mesh": split, "gathered": whole,
                                    "max_rss_bytes": peaks}
    if args.report == "json":
        print(json.dumps(result.report))
        return 0
    console = console_for(args)
    console.print(f"ran on {done.devices} devices in {done.processes} processes")
    if args.report == "table":
        print_report(console, result, args.file)
    _print_outputs(console, result)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.distributed:
        return _distributed(args)
    if any(value is not None for value in (args.coordinator, args.processes, args.process_id,
                                           args.cluster_timeout, args.gather_limit)) or (
            args.shard_regions):
        raise AnncError("run: --coordinator, --processes, --process-id, --timeout, "
                        "--gather-limit and --shard-regions go with --distributed")
    inputs = read_archive(args.inputs) if args.inputs else None
    try:
        result = run_file(args.file, inputs=inputs, params=defines(args), seed=args.seed,
                          targets=targets(args),
                          variants=key_values(args.variant, "--variant"),
                          measure=args.measure, record=not args.no_record,
                          builds=args.builds, progress=sys.stderr.isatty(),
                          generate_missing=args.generate_missing, announce=_announce,
                          passes=args.passes)
    except MissingInputsError as error:
        raise MissingInputsError(error.missing, error.declared, error.undeclared, args.inputs,
                                 "Add them to the archive, or pass --generate-missing"
                                 ) from None
    print_notes(result.notes)
    if args.save:
        save_outputs(args.save, result.outputs)
    if args.report == "json":
        print(json.dumps(result.report))
        return 0
    console = console_for(args)
    if args.report == "table":
        print_report(console, result, args.file)
    _print_outputs(console, result)
    return 0
