"""How the commands print tables: read at 80 columns, every cell whole.

rich fits a table to the terminal by wrapping cells a few letters a line and, where
that is not enough, by cutting them (`numpy.…`). Here a table is built with cells that
never wrap, in a compact style (no borders: two spaces between columns), and printed
at the terminal's width where it fits, else at its own width (the terminal wraps the
long lines; nothing is lost). A command with a long column offers a narrower form of
its table (`explain` moves its reasons below the table) and `print_fitted` prints the
first form that fits. Under `--wide` the console has no width to speak of: the first
form always fits, and no line is wrapped.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, RenderableType
from rich.table import Column, Table
from rich.text import Text

WIDE_COLUMNS = 100_000
"""The console's width under `--wide`: wider than any table or line annc prints."""

CHOSEN = "→"
"""The mark of the chosen candidate in a table's first column."""


def add_wide_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wide", action="store_true",
                        help="print tables and lines at full width, never wrapped or moved "
                        "below a table (for a wide terminal, a file or a pager)")


def console_for(args: argparse.Namespace) -> Console:
    """The console a command prints its tables on: the terminal's width (`$COLUMNS`,
    else 80 where standard output is not a terminal), or unbounded under `--wide`."""
    return Console(width=WIDE_COLUMNS) if args.wide else Console()


def compact_table(*columns: str | Column) -> Table:
    """A table whose cells never wrap: a header underlined by a rule, no borders, two
    spaces between columns. A column named with a string is left-justified."""
    made = [Column(column) if isinstance(column, str) else column for column in columns]
    for column in made:
        column.no_wrap = True
    return Table(*made, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                 padding=(0, 1, 0, 0))


def right(header: str) -> Column:
    """A right-justified column (numbers, times)."""
    return Column(header, justify="right")


@dataclass
class Fitted:
    """One form of a table: a title above it, the table, lines below it (a legend,
    notes), each line wrapped at the console's width."""

    title: str | None
    table: Table
    below: Sequence[RenderableType] = ()


def width_of(console: Console, table: Table) -> int:
    """The width the table takes with no cell wrapped or cut."""
    return console.measure(table, options=console.options.update_width(WIDE_COLUMNS)).maximum


def fits(console: Console, table: Table) -> bool:
    return width_of(console, table) <= console.width


def print_fitted(console: Console, forms: Sequence[Fitted]) -> None:
    """Prints the first form whose table fits the console, else the last one, at its own
    width: a cell is never cut."""
    chosen = next((form for form in forms if fits(console, form.table)), forms[-1])
    if chosen.title is not None:
        console.print(Text(chosen.title))
    print_table(console, chosen.table)
    for line in chosen.below:
        console.print(line)


def print_table(console: Console, table: Table) -> None:
    """Prints a table at the console's width, or wider where it needs more."""
    width = console.width
    console.width = max(width, width_of(console, table))
    try:
        console.print(table)
    finally:
        console.width = width


def notes_grid(label: str, notes: Sequence[tuple[str, str]]) -> Table:
    """Keyed notes below a table, e.g. `why not: a  1.08x the predicted cost of numpy`:
    the label once, then each key and its text, wrapped under itself."""
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for i, (key, text) in enumerate(notes):
        grid.add_row(label if i == 0 else "", key, text)
    return grid


def note_keys(texts: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """A key for each text (`a`, `b`, ...; the same text, the same key; no text, no key)
    and the keyed notes in order of first use."""
    keys: dict[str, str] = {}
    for text in texts:
        if text and text not in keys:
            keys[text] = _letters(len(keys))
    return [keys.get(text, "") for text in texts], [(key, text) for text, key in keys.items()]


def _letters(index: int) -> str:
    """`a` ... `z`, then `aa`, `ab`, ..."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters
