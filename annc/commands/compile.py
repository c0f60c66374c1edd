"""`annc compile`: print a program at a stage of the pipeline (AST or IR)."""

from __future__ import annotations

import argparse
from pathlib import Path

from annc.commands.common import add_program_arguments, add_target_argument, defines, targets
from annc.compiler import STAGES, compile_file
from dsl.ast import Program, format_tree
from dsl.errors import AnncError

HELP = "compile a workload and print it as an AST or as xDSL IR"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_program_arguments(parser)
    add_target_argument(parser)
    parser.add_argument("--emit", choices=STAGES, default="ir",
                        help="the stage to print (default: ir)")
    parser.add_argument("-o", dest="output", metavar="OUT",
                        help="write to this file instead of standard output")


def run(args: argparse.Namespace) -> int:
    result = compile_file(args.file, params=defines(args), targets=targets(args),
                          emit=args.emit)
    text = format_tree(result) if isinstance(result, Program) else str(result)
    if args.output:
        try:
            Path(args.output).write_text(text + "\n")
        except OSError as error:
            raise AnncError(f"cannot write {args.output}: {error.strerror or error}") from None
    else:
        print(text)
    return 0
