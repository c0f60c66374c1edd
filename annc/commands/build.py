"""`annc build`: build ahead everything a program's plan would want, and keep it."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from annc.building import Built, build_ahead, wanted_builds
from annc.commands.common import (
    add_program_arguments,
    add_target_argument,
    defines,
    short_time,
    targets,
)

HELP = "build ahead the variants a run of a workload would build, and keep them for its runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_program_arguments(parser)
    add_target_argument(parser)
    parser.add_argument("--report", choices=("table", "json"), default="table",
                        help="a line per build (default) or one JSON object on standard "
                        "output")


def run(args: argparse.Namespace) -> int:
    jobs = wanted_builds(args.file, defines(args), targets(args))
    console = Console(file=sys.stderr)
    if not jobs:
        if args.report == "json":
            print(json.dumps({"builds": []}))
        else:
            console.print("nothing to build: every variant the plan wants is kept already")
        return 0
    bar = Progress(TextColumn("building"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.description}"), console=console,
                   transient=True, disable=args.report == "json" or not console.is_terminal)

    def told(built: Built) -> None:
        bar.advance(task)
        if args.report != "json":
            bar.console.print(_line(built))

    with bar:
        task = bar.add_task(jobs[0].label, total=len(jobs))
        done = build_ahead(jobs, told)
    if args.report == "json":
        print(json.dumps({"builds": [vars(b) for b in done]}))
        return 0 if all(b.status != "failed" for b in done) else 1
    kept = [b for b in done if b.status in ("built", "kept already")]
    console.print(f"{len(kept)} of {len(jobs)} builds kept; the next run starts on "
                  f"{'them' if len(kept) > 1 else 'it' if kept else 'none of them'}")
    return 0 if all(b.status != "failed" for b in done) else 1


def _line(built: Built) -> str:
    if built.status == "built":
        return f"built {built.job} in {short_time(built.seconds)}"
    if built.status == "failed":
        return f"failed {built.job}: {built.message}"
    return f"{built.status}: {built.job}"
