"""Inputs drawn from a seed, any block of any input alone: the values a run generates.

A run given no inputs draws each uniform in [0, 1) from `numpy.random.default_rng(seed)`,
in declaration order, as one stream (`Generator.random`). That generator is PCG64,
whose `advance(n)` jumps over n 64-bit draws in O(log n) steps, so one block of an
input (a distributed process's rows) can be drawn without the rest, holding exactly
the values the whole stream gives it: a single-process run and every process of a
`--distributed` run see the same numbers, and the numbers of a seed are those of
earlier versions.

The stream's arithmetic, from numpy's `Generator.random`: an f64 takes one 64-bit draw;
an f32 takes 32 bits, the low half of a fresh draw, then the high half kept for the
next f32 (kept across f64 draws between them). `Position` is the stream's state
before an input: its next fresh draw, and the draw whose high half is kept, if any.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from annc.hardware.devices.allocator import aligned_empty


@dataclass(frozen=True)
class Position:
    """The stream's state before an input is drawn."""

    draw: int
    """The next fresh 64-bit draw."""
    kept: int | None = None
    """The draw whose high half an f32 uses next, where one is kept."""

    def after(self, dtype: np.dtype, count: int) -> Position:
        """The state after `count` values of `dtype` are drawn from here."""
        if count == 0:
            return self
        if np.dtype(dtype).itemsize == 8:
            return Position(self.draw + count, self.kept)
        fresh = count - (self.kept is not None)  # f32s after the kept half
        end = self.draw + math.ceil(fresh / 2)
        return Position(end, end - 1 if fresh % 2 else None)


def positions(counts: list[tuple[np.dtype, int]]) -> list[Position]:
    """Where each input starts in the stream, given every input's dtype and size in
    declaration order."""
    found, here = [], Position(0)
    for dtype, count in counts:
        found.append(here)
        here = here.after(dtype, count)
    return found


def _generator(seed: int, draw: int) -> np.random.Generator:
    bits = np.random.PCG64(seed)
    bits.advance(draw)
    return np.random.Generator(bits)


def draw_block(seed: int, start: Position, dtype: np.dtype, first: int, stop: int
               ) -> np.ndarray:
    """Elements [first, stop) (flat, in C order) of the input that starts at `start`,
    drawn without the ones before them; a new 64-byte aligned array."""
    dtype = np.dtype(dtype)
    out = aligned_empty((stop - first,), dtype)
    if stop <= first:
        return out
    if dtype.itemsize == 8 or (start.kept is None and first % 2 == 0):  # the usual case
        draw = start.draw + (first if dtype.itemsize == 8 else first // 2)
        _generator(seed, draw).random(out=out, dtype=dtype)
        return out
    if start.kept is not None:  # element 0 is the kept high half; the rest start fresh
        if first == 0:
            out[0] = _f32(seed, start.kept, 1, high=True)[0]
            out[1:] = _f32(seed, start.draw, stop - 1, high=False)
            return out
        first -= 1
        stop -= 1
    out[:] = _f32(seed, start.draw + first // 2, stop - first, high=bool(first % 2))
    return out


def _f32(seed: int, draw: int, count: int, high: bool) -> np.ndarray:
    """`count` f32s from the stream, starting at the low (or high) half of `draw`."""
    generator = _generator(seed, draw)
    if high:
        generator.random(1, dtype=np.float32)  # the low half, dropped; the high one kept
    return generator.random(count, dtype=np.float32)
