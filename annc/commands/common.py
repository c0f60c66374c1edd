"""Arguments shared by the commands that take a program file."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from annc.dsl.errors import AnncError


def add_program_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the workload, an .ann file")
    parser.add_argument(
        "-D", dest="defines", metavar="NAME=VALUE", action="append", default=[],
        help="override a param, e.g. -D N=1024 (repeatable)",
    )


def add_passes_argument(parser: argparse.ArgumentParser) -> None:
    """`--passes`: the user's passes, run on the lowered IR before fusion and selection."""
    parser.add_argument(
        "--passes", metavar="PIPELINE", default="",
        help="passes to run on the lowered IR before fuse-regions and selection, in "
        "xdsl-opt's syntax, e.g. cse,dce (any pass xdsl-opt -p finds)")


def add_target_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", metavar="DEV,...",
        help="devices the compiler may use (cpu, gpu, opencl); replaces the program's "
        "target statement",
    )


def add_selection_arguments(parser: argparse.ArgumentParser, measure: bool = True,
                            record: bool = True) -> None:
    """`--measure` (selection's policy for timing close candidates) and `--no-record`."""
    if measure:
        parser.add_argument(
            "--measure", choices=("auto", "never", "always"), default="auto",
            help="time the best candidates on the real shapes when their predicted intervals "
            "overlap: auto (default) when at least 50 ms is at stake, within 5%% of the "
            "program's predicted time; always; or never")
    if record:
        parser.add_argument(
            "--no-record", action="store_true",
            help="do not keep what was measured (nor learn from it); also ANNC_NO_RECORD=1")


CLUSTER_OPTIONS = ("coordinator", "processes", "process_id", "cluster_timeout")
"""The options that say how a process joins a `jax.distributed` run."""


def add_cluster_arguments(parser: argparse.ArgumentParser, distributed_help: str,
                          timeout: str = "--timeout") -> argparse._ArgumentGroup:
    """`--distributed` and how a process joins the run (`annc.distributed.Cluster`;
    the join's timeout is `args.cluster_timeout`, under the option `timeout` names);
    returns the group, for a command's own options of a distributed run."""
    group = parser.add_argument_group(
        "across processes and hosts (--distributed; see docs/distributed.md)")
    group.add_argument("--distributed", action="store_true", help=distributed_help)
    group.add_argument("--coordinator", metavar="HOST:PORT",
                       help="process 0's address (default: JAX_COORDINATOR_ADDRESS, or the "
                       "scheduler's, as JAX reads them)")
    group.add_argument("--processes", type=int, metavar="N",
                       help="how many processes run (default: from the environment)")
    group.add_argument("--process-id", type=int, metavar="I",
                       help="this process's id, 0 to N-1 (default: from the environment)")
    group.add_argument(timeout, dest="cluster_timeout", type=int, default=None,
                       metavar="SECONDS",
                       help="how long to wait for the others to join, and for a silent "
                       "process before the run fails (default 120)")
    return group


def seconds_argument(text: str) -> float:
    """The type of an option in seconds (`--budget`, `--timeout`): a finite positive
    number; anything else (0, -1, nan, inf) is a usage error before any work starts."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r}")
    return value


def defines(args: argparse.Namespace) -> dict[str, str]:
    """The -D overrides as NAME -> VALUE text; the checker validates the values."""
    values: dict[str, str] = {}
    for define in args.defines:
        name, sep, value = define.partition("=")
        if not sep or not name:
            raise AnncError(f"<command line>: error: -D {define}: expected NAME=VALUE, "
                            "e.g. -D N=512")
        values[name.strip()] = value.strip()
    return values


def targets(args: argparse.Namespace) -> tuple[str, ...] | None:
    if getattr(args, "target", None) is None:
        return None
    return tuple(t.strip() for t in args.target.split(",") if t.strip())


def compact_shapes(shapes: Sequence[Sequence[int]]) -> str:
    """Operand shapes for a table: `512x512 3x3`, a scalar as `()`."""
    return " ".join("x".join(map(str, s)) or "()" for s in shapes)


def key_values(items: list[str], option: str) -> dict[str, str]:
    """`KEY=VALUE` option values as a dict, e.g. for --variant matmul=numpy."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise AnncError(f"<command line>: error: {option} {item}: expected KERNEL=NAME")
        result[key.strip()] = value.strip()
    return result


def short_time(seconds: float | None) -> str:
    """A duration in the unit that keeps it short: `523 ns`, `5.2 µs`, `1.3 ms`, `2.1 s`,
    `12 min`, `3.5 h`, `41 days` (a unit from two of it on)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * scale:
            return f"{seconds / scale:.3g} {unit}"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0)) if c != 0x0a}
"""Control characters (but the line break), as Python writes them in a string."""


def printable(text: str) -> str:
    """The text with control characters shown as escapes: a note may quote a file or a
    name, and neither should move the cursor or recolour the terminal."""
    return text.translate(_CONTROL)


def print_notes(notes: Sequence[str]) -> None:
    """Prints notes to standard error, each made printable."""
    for note in notes:
        print(printable(note), file=sys.stderr)
