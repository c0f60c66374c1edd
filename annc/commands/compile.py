"""`annc compile`: print a program at a stage of the pipeline (AST or IR)."""

from __future__ import annotations

import argparse
from pathlib import Path

from annc.commands.common import (
    add_passes_argument,
    add_program_arguments,
    add_selection_arguments,
    add_target_argument,
    defines,
    print_notes,
    targets,
)
from annc.compiler import STAGES, compile_program, program_kept_frozen, read_source
from annc.dsl.errors import AnncError

HELP = "compile a workload and print it as an AST, as xDSL IR, or as IR with variants chosen"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_program_arguments(parser)
    add_target_argument(parser)
    parser.add_argument("--emit", choices=STAGES, default="ir",
                        help="the stage to print (default: ir)")
    parser.add_argument("-o", dest="output", metavar="OUT",
                        help="write to this file instead of standard output")
    parser.add_argument("--print-debuginfo", action="store_true",
                        help="print every op's source location, loc(\"FILE\":LINE:COL), as "
                        "xdsl-opt --print-debuginfo does")
    add_passes_argument(parser)
    add_selection_arguments(parser)


def run(args: argparse.Namespace) -> int:
    with program_kept_frozen():
        compiled = compile_program(read_source(args.file), args.file, defines(args),
                                   targets(args), args.emit, args.measure,
                                   record=not args.no_record, passes=args.passes)
        print_notes(compiled.notes)
        text = compiled.printed(debuginfo=args.print_debuginfo)
    if args.output:
        try:
            Path(args.output).write_text(text + "\n")
        except OSError as error:
            raise AnncError(f"cannot write {args.output}: {error.strerror or error}") from None
    else:
        print(text)
    return 0
