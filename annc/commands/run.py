"""`annc run`: compile a workload, run it, and show or save its outputs."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from rich.console import Console
from rich.table import Table

from annc.commands.common import (
    add_program_arguments,
    add_selection_arguments,
    add_target_argument,
    compact_shapes,
    defines,
    key_values,
    targets,
)
from annc.running import RunResult, run_file
from dsl import dtypes
from dsl.types import TensorType
from hardware.execution.planning import BUILDS
from hardware.execution.rundata import read_archive, save_outputs

HELP = "compile and run a workload"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_program_arguments(parser)
    add_target_argument(parser)
    parser.add_argument("--inputs", metavar="IN.npz",
                        help="take inputs by name from this archive; others are generated")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for generated inputs (uniform in [0, 1)); default 0")
    parser.add_argument("--save", metavar="OUT.npz", help="write every output to this archive")
    parser.add_argument("--report", choices=("table", "json"),
                        help="show each op's variant, device and time (json: one object on "
                        "standard output)")
    parser.add_argument("--variant", metavar="KERNEL=NAME", action="append", default=[],
                        help="force a variant for every op of a kernel, e.g. matmul=numpy")
    parser.add_argument("--builds", choices=BUILDS, default=None,
                        help="for chosen variants whose builds are not kept: start on what "
                        "runs now and build them beside the run (beside, the default; "
                        "ANNC_BUILDS sets another), build them first, or never")
    add_selection_arguments(parser)


def _summary(value: np.ndarray) -> str:
    if value.ndim == 0:
        return f"{value.item():.6g}"
    with np.errstate(all="ignore"):
        return (f"min {np.min(value):.6g}  mean {np.mean(value):.6g}  "
                f"max {np.max(value):.6g}") if value.size else "empty"


def _type(value: np.ndarray) -> str:
    return str(TensorType(dtypes.from_numpy(value.dtype), value.shape))


def _print_outputs(console: Console, result: RunResult) -> None:
    table = Table(title="outputs")
    for column in ("name", "type", "value"):
        table.add_column(column)
    for name, value in result.outputs.items():
        table.add_row(name, _type(value), _summary(value))
    console.print(table)
    console.print(f"kernel time: {result.report['total_measured_s'] * 1e3:.3f} ms")


def _print_report(console: Console, result: RunResult) -> None:
    table = Table(title="ops")
    for column in ("#", "kernel", "variant", "device", "shapes", "runs", "predicted ms",
                   "measured ms", "source"):
        table.add_column(column, justify="right" if "ms" in column or column in "#runs"
                         else "left")
    for op in result.report["ops"]:
        predicted = op["predicted_s"]
        table.add_row(
            str(op["index"]), op["kernel"], op["variant"], op["device"],
            compact_shapes(op["shapes"]),
            str(op["executions"]),
            "-" if predicted is None else f"{predicted * 1e3:.3f}",
            f"{op['measured_s'] * 1e3:.3f}", op["loc"],
        )
    console.print(table)


def _announce(note: str) -> None:
    """A note that must be seen before the run starts (it may run for hours)."""
    print(note, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    inputs = read_archive(args.inputs) if args.inputs else None
    result = run_file(args.file, inputs=inputs, params=defines(args), seed=args.seed,
                      targets=targets(args), variants=key_values(args.variant, "--variant"),
                      measure=args.measure, record=not args.no_record, builds=args.builds,
                      progress=sys.stderr.isatty(), announce=_announce)
    for note in result.notes:
        print(note, file=sys.stderr)
    if args.save:
        save_outputs(args.save, result.outputs)
    if args.report == "json":
        print(json.dumps(result.report))
        return 0
    console = Console()
    if args.report == "table":
        _print_report(console, result)
    _print_outputs(console, result)
    return 0
