"""The `annc` command line: one subcommand per module in `annc.commands`.

User errors (`AnncError`) print their message and exit 1; usage errors exit 2
(argparse); Ctrl-C exits 130 (`annc.interrupts`). No traceback reaches the user unless
`ANNC_DEBUG=1` is set.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from annc import supervisor
from annc.dsl.errors import AnncError
from annc.hardware.devices.home import check_home
from annc.interrupts import (
    exit_interrupted,
    give_back_ctrl_c,
    say_interrupted,
    take_ctrl_c,
)

COMMANDS = ("compile", "run", "explain", "tune", "build", "variants", "devices",
            "calibrate", "train", "evaluate", "cache", "store")
"""Subcommands, in the order `annc --help` lists them; each is `annc.commands.<name>`."""


def _available_commands(only: str | None = None) -> list[str]:
    names = []
    for name in COMMANDS if only is None else (only,):
        try:
            importlib.import_module(f"annc.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"annc.commands.{name}":
                raise
            continue
        names.append(name)
    return names


def _command_named(argv: Sequence[str] | None) -> str | None:
    """The subcommand the arguments name, when they start with one (so that only its
    module is imported: each command imports what it needs, some of it heavy)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return args[0] if args and args[0] in COMMANDS else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the arguments, only for the command they name, if any."""
    parser = argparse.ArgumentParser(
        prog="annc",
        description="Compile and run physics workloads, choosing each kernel's fastest variant.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _available_commands(_command_named(argv)):
        module = importlib.import_module(f"annc.commands.{name}")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser, by name, in the order `annc --help` lists them."""
    for action in parser._actions:  # argparse offers no public way to its subparsers
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments, or a usage error (exit 2) from the command they name; `-D N 512`,
    a value apart from its param, is a bad `-D` (exit 1) that says to write `-D N=512`."""
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        words = list(sys.argv[1:] if argv is None else argv)
        for name in (d for d in getattr(args, "defines", []) if "=" not in d):
            value = _after_define(words, name)
            if value is not None and not value.startswith("-"):
                raise AnncError(f"<command line>: error: -D {name} {value}: a param and its "
                                f"value are one argument: write -D {name}={value}")
        command_parsers(parser)[args.command].error(
            f"unrecognized arguments: {' '.join(extra)}")
    return args


def _after_define(words: list[str], name: str) -> str | None:
    """The word after `-D NAME` (or `-DNAME`) on the command line, if any."""
    for i, word in enumerate(words):
        if word == "-D" and words[i + 1:i + 2] == [name]:
            return words[i + 2] if i + 2 < len(words) else None
        if word == f"-D{name}":
            return words[i + 1] if i + 1 < len(words) else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point: runs one command and returns its exit status.

    Everything heavy (JAX, xDSL, the commands) is imported inside, under the same
    handlers as the command itself, so a Ctrl-C while annc is still starting is an
    exit 130 like any other; a second Ctrl-C while annc cleans up after the first
    exits at once (`annc.interrupts`)."""
    previous = take_ctrl_c()
    try:
        words = list(sys.argv[1:] if argv is None else argv)
        watched, process_id = supervisor.watched_run(words)
        if watched:  # before the command's module, which is heavy, is imported
            return supervisor.watch(words, process_id)
        args = parse_arguments(words)
        check_home()
        return int(args.handler(args) or 0)
    except AnncError as error:
        print(str(error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        say_interrupted()
        exit_interrupted()
        return 130
    except BrokenPipeError:  # the reader went away (`annc ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:  # a bug in annc: say so in one line, not a traceback
        if os.environ.get("ANNC_DEBUG") == "1":
            raise
        print(
            f"annc: internal error: {type(error).__name__}: {error}\n"
            "This is a bug in annc; rerun with ANNC_DEBUG=1 for the traceback and report it.",
            file=sys.stderr,
        )
        return 70
    finally:
        give_back_ctrl_c(previous)


if __name__ == "__main__":
    sys.exit(main())
