"""The errors a user can meet. Every one is a subclass of `AnncError`."""

from __future__ import annotations

from dataclasses import dataclass


class AnncError(Exception):
    """An error caused by the user's input or state, reported without a traceback."""


@dataclass(frozen=True)
class Diagnostic:
    """One located problem in a program."""

    filename: str
    line: int
    column: int
    message: str
    source_line: str = ""

    def render(self) -> str:
        text = f"{self.filename}:{self.line}:{self.column}: error: {self.message}"
        if self.source_line:
            caret = " " * (self.column - 1) + "^"
            text += f"\n    {self.source_line}\n    {caret}"
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
