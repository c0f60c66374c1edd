"""The errors a user can meet, all in one place. Every one is a subclass of `AnncError`
and exported from `annc`; the command line prints its message and exits 1.

They live in `dsl/`, the lowest layer, because every layer raises some of them
(`hardware/` a `RunError` or a `StoreError`, `passes/` a `ModelError`) and no layer
below `annc/` may import `annc`.
"""

from __future__ import annotations

from dataclasses import dataclass


class AnncError(Exception):
    """An error caused by the user's input or state, reported without a traceback."""


def source_lines(text: str) -> list[str]:
    """The program's lines as the parser counts them: split at `\n` only (not at form
    feeds or Unicode line separators, which `str.splitlines` also splits at)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


@dataclass(frozen=True)
class Diagnostic:
    """One located problem in a program."""

    filename: str
    line: int
    column: int
    message: str
    source_line: str = ""

    def render(self) -> str:
        """`file:line:col: error: message`, then the source line as written and a caret
        under the column (tabs before it kept, so the caret lines up)."""
        text = f"{self.filename}:{self.line}:{self.column}: error: {self.message}"
        if self.source_line:
            before = self.source_line[: self.column - 1].ljust(self.column - 1)
            caret = "".join(c if c == "\t" else " " for c in before) + "^"
            text += f"\n{self.source_line}\n{caret}"
        return text


class CompileError(AnncError):
    """A program breaks a rule of the language.

    `filename`, `line`, `column` and `message` describe the first problem;
    `diagnostics` holds every problem found, in source order.
    """

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        if not diagnostics:
            raise ValueError("a CompileError needs at least one diagnostic")
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.line, d.column))
        first = self.diagnostics[0]
        self.filename = first.filename
        self.line = first.line
        self.column = first.column
        self.message = first.message
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


class RunError(AnncError):
    """The program cannot run as asked on this machine (a device or variant is missing)."""


class DataError(AnncError):
    """Input or output data cannot be read or written as asked."""


class OutOfMemoryError(AnncError):
    """The workload cannot fit in this machine's memory."""


class ModelError(AnncError):
    """No usable model set, or a model file that cannot be used."""


class StoreError(AnncError):
    """The measurement database cannot be opened or written."""


class HomeError(AnncError):
    """`$ANNC_HOME` cannot be created or written."""
