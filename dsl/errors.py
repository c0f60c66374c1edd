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


class MissingInputsError(DataError):
    """Inputs were given, but not every input the program declares, and generating the
    rest was not asked for: a missing array is never drawn at random behind the user's
    back. `missing` maps each absent input's name to its declared type (`f64[4, 4]`),
    in declaration order; `declared` counts the program's inputs; `undeclared` names
    the given arrays the program does not declare (a misspelt name is in both)."""

    def __init__(self, missing: dict[str, str], declared: int, undeclared: list[str],
                 source: str = "inputs", remedy: str = "Give them, or pass "
                 "generate_missing=True") -> None:
        self.missing = missing
        self.declared = declared
        self.undeclared = undeclared
        super().__init__(self.render(source, remedy))

    def render(self, source: str, remedy: str) -> str:
        """The message naming where the inputs came from (`source`) and how to go on
        (`remedy`, e.g. `Add them to the archive, or pass --generate-missing`)."""
        listed = ", ".join(f"{name} : {kind}" for name, kind in self.missing.items())
        text = (f"{source}: {len(self.missing)} of the program's {self.declared} inputs "
                f"missing: {listed}. {remedy} to draw the missing ones uniform in [0, 1) "
                "from the seed.")
        if self.undeclared:
            text += (" Given but not declared by the program: "
                     f"{', '.join(self.undeclared)}")
            if any(name.startswith("arr_") for name in self.undeclared):
                text += (" (numpy.savez names arrays passed without a name arr_0, "
                         "arr_1, ...: save them as numpy.savez(path, NAME=array))")
            text += "."
        return text
