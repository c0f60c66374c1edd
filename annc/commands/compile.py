"""`annc compile`: print a program at a stage of the pipeline (AST or IR)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp

from annc.commands.common import (
    add_program_arguments,
    add_selection_arguments,
    add_target_argument,
    defines,
    targets,
)
from annc.compiler import STAGES, compile_file, select
from dsl.ast import Program, format_tree
from dsl.errors import AnncError

HELP = "compile a workload and print it as an AST, as xDSL IR, or as IR with variants chosen"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_program_arguments(parser)
    add_target_argument(parser)
    parser.add_argument("--emit", choices=STAGES, default="ir",
                        help="the stage to print (default: ir)")
    parser.add_argument("-o", dest="output", metavar="OUT",
                        help="write to this file instead of standard output")
    add_selection_arguments(parser)


def run(args: argparse.Namespace) -> int:
    stage = "ir" if args.emit == "selected" else args.emit
    result = compile_file(args.file, params=defines(args), targets=targets(args), emit=stage)
    if args.emit == "selected":
        assert isinstance(result, ModuleOp)
        plan = select(result, measure=args.measure, record=not args.no_record)
        for note in [*plan.notes, f"note: variants chosen with {plan.models}"]:
            print(note, file=sys.stderr)
    text = format_tree(result) if isinstance(result, Program) else str(result)
    if args.output:
        try:
            Path(args.output).write_text(text + "\n")
        except OSError as error:
            raise AnncError(f"cannot write {args.output}: {error.strerror or error}") from None
    else:
        print(text)
    return 0
