"""A `const` literal of numbers only, read in one go.

The grammar's `NUMBERS` terminal finds such a literal's extent (a `[`, then brackets,
commas, characters of numbers and blanks, up to the last `]` it can reach); `read`
reads it. Read number by number, a literal of 200,000 elements took 4.6 s and 480 MB to
parse (a Lark token, tree node and AST node per number); read here, with a few passes of
numpy over its characters and one numpy call that converts every number as Python's
`float` does, a million elements take about 0.1 s.

`read` accepts the text only where the number-by-number grammar reads exactly the same
tokens from it: `-`? `NUMBER` for each number (`-` may be followed by blanks), commas
and brackets, with blanks and newlines between tokens only, nested as lists of one or
more items. Anything else (a stray character, a missing comma, an empty list, nesting
deeper than `DEEPEST`) is `NotOneLiteral`, and the parser reads the program number by
number, which reports the error exactly as it always has.
"""

from __future__ import annotations

import re

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


def read(text: str) -> np.ndarray | None:
    """The numbers of a literal such as `[[1, 2], [3, -4.5e2]]` as a float64 array of
    its shape; None where it is well formed but ragged (rows of different lengths).
    Raises `NotOneLiteral` for any other text."""
    compact = _without_blanks(np.frombuffer(text.encode("ascii"), dtype=np.uint8))
    skeleton = _skeleton(compact)
    fields = compact[~_BRACKET[compact]].tobytes()
    del compact  # the numbers' text and their values are what a large literal costs
    values = _numbers(fields, skeleton.count("0"))
    shape = _shape(skeleton)
    if shape is not None:
        return values.reshape(shape)
    if _well_formed(skeleton):
        return None
    raise NotOneLiteral(text[:40])


def _skeleton(compact: np.ndarray) -> str:
    """The literal with every number a `0`: `[[0,0],[0,0]]`."""
    number = _OF_A_NUMBER[compact]
    kept = ~number
    kept[1:] |= number[1:] & kept[:-1]  # each number's first character stands for it
    skeleton: np.ndarray = compact[kept]
    skeleton[_OF_A_NUMBER[skeleton]] = ord("0")
    return skeleton.tobytes().decode("ascii")


def _without_blanks(characters: np.ndarray) -> np.ndarray:
    """The characters less their blanks, where the blanks only separate tokens: between
    two parts of what would be one number (`1 2`, `1 e5`, `1e- 5`) they are an error.
    The text starts with `[` and ends with `]`, so every run of blanks has a character
    on each side. Masks, not positions: a position is 8 bytes, a mask's entry one."""
    blank = _BLANK[characters]
    returns = np.flatnonzero(characters == ord("\r"))
    if np.any(characters[returns + 1] != ord("\n")):
        raise NotOneLiteral("a carriage return not before a newline")
    kept = ~blank
    left = characters[:-1][blank[1:] & kept[:-1]]  # the character before each run
    right = characters[1:][blank[:-1] & kept[1:]]  # and the one after it
    if np.any(_JOINS_ON_THE_LEFT[left] & _OF_A_NUMBER[right]):
        raise NotOneLiteral("blanks inside a number")
    if np.any(left == ord("-")) and not _blanks_follow_signs_only(characters, blank):
        raise NotOneLiteral("blanks after a minus that is not a sign")
    compact: np.ndarray = characters[kept]
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
