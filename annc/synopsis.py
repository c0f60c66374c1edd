"""The commands' synopsis, one line per command, made from their argparse parsers.

`python -m annc.synopsis` prints it; README's commands block is this text, and a test
keeps the two equal, so an option added to a parser cannot be missing from the README.
"""

import argparse

from annc.cli import build_parser, command_parsers


def synopsis() -> list[str]:
    """`annc COMMAND POSITIONALS [OPTION ...] ...` for every command `annc --help` lists."""
    return [" ".join(["annc", name, *_words(parser)])
            for name, parser in command_parsers(build_parser()).items()]


def _words(parser: argparse.ArgumentParser) -> list[str]:
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    positionals = [_value(a) for a in actions if not a.option_strings]
    return positionals + [f"[{_option(a)}]" for a in actions if a.option_strings]


def _option(action: argparse.Action) -> str:
    """`--check`, `--report table|json`, `-D NAME=VALUE ...` (an option given again and
    again)."""
    name = max(action.option_strings, key=len)  # the long form where there is one
    if action.nargs == 0:
        return name
    repeated = " ..." if isinstance(action, argparse._AppendAction) else ""
    return f"{name} {_value(action)}{repeated}"


def _value(action: argparse.Action) -> str:
    if action.choices is not None:
        return "|".join(map(str, action.choices))
    if isinstance(action.metavar, str):
        return action.metavar
    return action.dest.upper()


if __name__ == "__main__":
    print("\n".join(synopsis()))
