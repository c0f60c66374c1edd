"""A `const` literal of numbers only, read in one go.

The grammar's `NUMBERS` terminal finds such a literal's extent (a `[`, then brackets,
commas, characters of numbers and blanks, up to the last `]` it can reach); `read`
reads it. Read number by number, a literal of 200,000 elements took 4.6 s and 480 MB to
parse (a Lark token, tree node and AST node per number); read here, with a few passes of
numpy over its characters and one numpy call that converts every number as Python's
`float` does, a million take 0.16 s.

`read` accepts the text only where the number-by-number grammar reads exactly the same
tokens from it: `-`? `NUMBER` for each number (`-` may be followed by blanks), commas
and brackets, with blanks and newlines between tokens only, nested as lists of one or
more items. Anything else (a stray character, a missing comma, an empty list, nesting
deeper than `DEEPEST`) is `NotOneLiteral`, and the parser reads the program number by
number, which reports the error exactly as it always has.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

DEEPEST = 32
"""The deepest nesting read here; deeper literals are read number by number (numpy's
arrays have at most 64 dimensions)."""


def _characters(characters: str) -> np.ndarray:
    """A lookup table: True at the byte of each of `characters`."""
    table = np.zeros(256, dtype=bool)
    table[np.frombuffer(characters.encode("ascii"), dtype=np.uint8)] = True
    return table


_BLANK = _characters(" \t\f\r\n")
_OF_A_NUMBER = _characters("0123456789.eE+-")
_JOINS_ON_THE_LEFT = _characters("0123456789.eE+")
"""A character that a blank may not separate from a following `_OF_A_NUMBER` one: the
two would be one token without the blank, and two (an error) with it."""
_OPENS_AN_ITEM = _characters("[,")
_BRACKET = _characters("[]")
_INNERMOST_LIST = re.compile(r"\[0(?:,0)*\]")


class NotOneLiteral(ValueError):
    """The text is not exactly one well-formed literal of numbers."""


PIECE = 1 << 20
"""Characters read at a time: the masks of a piece cost a few MB, whatever the size of
the literal, and numpy reuses their memory from piece to piece."""


def read(text: str) -> np.ndarray | None:
    """The numbers of a literal such as `[[1, 2], [3, -4.5e2]]` as a float64 array of
    its shape; None where it is well formed but ragged (rows of different lengths).
    Raises `NotOneLiteral` for any other text.

    Beyond the text it costs its numbers' characters and their values (a piece's masks
    aside): a million numbers (10.5 MB of text) took 0.16 s and 26 MB at the peak, where
    read whole they took 40 MB (2026-12-07, medians of 5 under load)."""
    skeletons, fields = [], []
    for piece, last in _pieces(text):
        compact = _without_blanks(np.frombuffer(piece.encode("ascii"), dtype=np.uint8))
        if not last:
            compact = compact[:-1]  # the comma the next piece starts with
        skeletons.append(_skeleton(compact))
        fields.append(_fields(compact))
    skeleton = "".join(skeletons)
    values = np.empty(skeleton.count("0"))
    start = 0
    for part, written in zip(skeletons, fields, strict=True):
        count = part.count("0")
        values[start:start + count] = _numbers(written, count)
        start += count
    shape = _shape(skeleton)
    if shape is not None:
        return values.reshape(shape)
    if _well_formed(skeleton):
        return None
    raise NotOneLiteral(text[:40])


def _pieces(text: str) -> Iterator[tuple[str, bool]]:
    """The text in pieces of about `PIECE` characters, each cut before a comma (no
    number or run of blanks spans two pieces), and whether it is the last. Each but the
    last ends with the comma the next starts with, so that every run of blanks in a
    piece has a character on each side."""
    start = 0
    while True:
        cut = text.find(",", start + PIECE)
        if cut < 0:
            yield text[start:], True
            return
        yield text[start:cut + 1], False
        start = cut


def _fields(compact: np.ndarray) -> bytes:
    """The numbers of a piece, less its blanks, as comma-separated text."""
    number = _BRACKET[compact]
    np.logical_not(number, out=number)
    fields: bytes = compact[number].tobytes()
    return fields[1:] if fields.startswith(b",") else fields


def _skeleton(compact: np.ndarray) -> str:
    """The literal with every number a `0`: `[[0,0],[0,0]]`."""
    number = _OF_A_NUMBER[compact]
    first = np.empty_like(number)  # a number's first character stands for it
    first[0] = number[0]
    np.greater(number[1:], number[:-1], out=first[1:])
    np.logical_not(number, out=number)
    number |= first
    skeleton: np.ndarray = compact[number]
    skeleton[_OF_A_NUMBER[skeleton]] = ord("0")
    return skeleton.tobytes().decode("ascii")


def _without_blanks(characters: np.ndarray) -> np.ndarray:
    """The characters less their blanks, where the blanks only separate tokens: between
    two parts of what would be one number (`1 2`, `1 e5`, `1e- 5`) they are an error.
    The text starts with `[` and ends with `]`, so every run of blanks has a character
    on each side."""
    blank = _BLANK[characters]
    returns = np.flatnonzero(characters == ord("\r"))
    if np.any(characters[returns + 1] != ord("\n")):
        raise NotOneLiteral("a carriage return not before a newline")
    left = characters[:-1][blank[1:] > blank[:-1]]  # the character before each run
    right = characters[1:][blank[:-1] > blank[1:]]  # and the one after it
    if np.any(_JOINS_ON_THE_LEFT[left] & _OF_A_NUMBER[right]):
        raise NotOneLiteral("blanks inside a number")
    if np.any(left == ord("-")) and not _blanks_follow_signs_only(characters, blank):
        raise NotOneLiteral("blanks after a minus that is not a sign")
    np.logical_not(blank, out=blank)
    compact: np.ndarray = characters[blank]
    return compact


def _blanks_follow_signs_only(characters: np.ndarray, blank: np.ndarray) -> bool:
    """Whether every `-` followed by blanks is a sign, as in `[ - 1`: the first character
    before it that is not a blank is a `[` or a `,` (else `1e- 5`)."""
    minus = np.flatnonzero((characters[:-1] == ord("-")) & blank[1:])
    kept = np.flatnonzero(~blank)
    before = kept[np.searchsorted(kept, minus) - 1]  # minus > 0: characters[0] is `[`
    return bool(np.all(_OPENS_AN_ITEM[characters[before]]))


def _numbers(fields: bytes, count: int) -> np.ndarray:
    """The comma-separated numbers as float64: `count` of them, each read to its end.
    numpy reads a field as C's `strtod` does, and refuses one it cannot read to its end;
    that differs from `-`? `NUMBER` only in also taking a leading `+` (checked on every
    string of up to 7 characters of `01.eE+-`, alone, first and last)."""
    if fields.startswith(b"+") or b",+" in fields:
        raise NotOneLiteral("a number with a + sign")
    try:
        values = np.fromstring(fields, dtype=np.float64, sep=",")
    except ValueError:
        raise NotOneLiteral("a number numpy cannot read to its end") from None
    if values.size != count:
        raise NotOneLiteral("numbers that are not one each")
    return values


def _shape(skeleton: str) -> tuple[int, ...] | None:
    """The shape of a skeleton (every number a `0`, no blanks) of a rectangular literal,
    or None if it is not one. The shape is read off the first list at each level (the
    first run of as many `]` as the levels inside it ends it), then the whole skeleton
    is compared with the one that shape has: a few passes in C, not one per number."""
    depth = len(skeleton) - len(skeleton.lstrip("["))
    if not 0 < depth <= DEEPEST:
        return None
    shape: list[int] = []
    item = "0"
    for level in reversed(range(depth)):
        end = skeleton.find("]" * (depth - level))  # its last `]` ends this level's list
        size = (end + depth - 2 * level - 1) // (len(item) + 1)
        if end < 0 or size < 1:
            return None
        shape.insert(0, size)
        item = "[" + ",".join([item] * size) + "]"
    return tuple(shape) if item == skeleton else None


def _well_formed(skeleton: str) -> bool:
    """Whether a skeleton is a nested list of numbers at all, rectangular or not: lists of
    numbers reduce to a number, level by level, until one number is left."""
    for _ in range(DEEPEST):
        reduced = _INNERMOST_LIST.sub("0", skeleton)
        if reduced == "0":
            return True
        if reduced == skeleton:
            return False
        skeleton = reduced
    return False
