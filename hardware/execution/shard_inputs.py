"""A distributed run's inputs, materialised a block of rows at a time.

In a `--distributed` run every process would otherwise hold every input whole. Here an
input of one dimension or more is a `RowSource`: a sharded region that splits it by
rows asks for the rows of this process's devices only, and anything that needs it
whole (an op run by one device, a replicated operand) asks for all of it, once.
Its rows are drawn from the seed (`hardware.execution.drawing`: the values of a
one-process run) or read from the archive: an array stored uncompressed in an `.npz`
(`numpy.savez`) is mapped (`numpy.memmap`), so a block of rows reads those rows
only; a compressed one (`numpy.savez_compressed`) is read whole.
Each block is checked and converted as a whole input is (`rundata.converted`).
"""

from __future__ import annotations

import functools
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annc.dsl.errors import DataError, MissingInputsError
from annc.hardware.execution.drawing import Position, draw_block, positions
from annc.hardware.execution.rundata import InputSpec, converted, read_archive, reading_notes

LOCAL_HEADER = 30
"""Bytes of a zip member's local header before its name and extra field."""


@dataclass(frozen=True)
class RowSource:
    """An input that gives any block of its rows alone (`rows`), or all of them."""

    shape: tuple[int, ...]
    dtype: np.dtype
    read: Callable[[int, int], np.ndarray]
    """Rows [start, stop), converted to `dtype`, as a new aligned array."""
    placed: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """What a sharded region made of it on the mesh, by sharding: made once a run."""

    def rows(self, start: int, stop: int) -> np.ndarray:
        return self.read(start, stop)

    def whole(self) -> np.ndarray:
        return self.read(0, self.shape[0])

    def describe(self) -> str:
        return "by rows (an input, read where asked)"

    def block(self, index: tuple[slice, ...]) -> np.ndarray:
        """The part a device holds, by its index (JAX's `make_array_from_callback`)."""
        start, stop, _ = index[0].indices(self.shape[0])
        return self.rows(start, stop)[(slice(None), *index[1:])]


@dataclass(frozen=True)
class InputsByRows:
    arrays: list[np.ndarray | RowSource]
    """One per declared input, in declaration order: 0-d inputs whole, others by rows."""
    notes: list[str]


def drawn_by_rows(specs: list[InputSpec], seed: int) -> InputsByRows:
    """Every input drawn from `seed` by rows: the values `rundata.generated_inputs`
    gives, any block of rows alone."""
    starts = positions([(spec.dtype, math.prod(spec.shape)) for spec in specs])
    arrays: list[np.ndarray | RowSource] = []
    for spec, start in zip(specs, starts, strict=True):
        if not spec.shape:
            arrays.append(draw_block(seed, start, spec.dtype, 0, 1).reshape(()))
            continue
        row = math.prod(spec.shape[1:])

        def read(first: int, stop: int, spec: InputSpec = spec, start: Position = start,
                 row: int = row) -> np.ndarray:
            return draw_block(seed, start, spec.dtype, first * row, stop * row).reshape(
                (stop - first, *spec.shape[1:]))

        arrays.append(RowSource(spec.shape, spec.dtype, read))
    return InputsByRows(arrays, [])


def read_by_rows(specs: list[InputSpec], path: str) -> InputsByRows:
    """Every input from the `.npz` archive at `path`, by rows where it is stored
    uncompressed; a DataError where the archive cannot be read, a MissingInputsError
    where it lacks an input, as `rundata.prepare_inputs` says them."""
    members = _members(path)
    missing = [spec for spec in specs if spec.name not in members]
    undeclared = sorted(set(members) - {spec.name for spec in specs})
    if missing:
        raise MissingInputsError({spec.name: str(spec) for spec in missing}, len(specs),
                                 undeclared)
    arrays: list[np.ndarray | RowSource] = []
    changed = []
    for spec in specs:
        source = members[spec.name]()
        if source.shape != spec.shape or not spec.shape:
            arrays.append(converted(spec, source)[0])  # refused, or 0-d: taken whole
            continue
        _, note = converted(InputSpec(spec.name, spec.dtype, (0, *spec.shape[1:])),
                            source[:0])  # the dtype checked before anything is read
        if note:
            changed.append(f"{spec.name} ({note})")

        def read(first: int, stop: int, spec: InputSpec = spec,
                 source: np.ndarray = source) -> np.ndarray:
            part = InputSpec(spec.name, spec.dtype, (stop - first, *spec.shape[1:]))
            return converted(part, source[first:stop])[0]

        arrays.append(RowSource(spec.shape, spec.dtype, read))
    return InputsByRows(arrays, reading_notes(changed, undeclared))


def _members(path: str) -> dict[str, Callable[[], np.ndarray]]:
    """The archive's arrays by name, each opened when called: mapped where stored
    uncompressed, else read whole."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [info for info in archive.infolist() if info.filename.endswith(".npy")]
    except (OSError, zipfile.BadZipFile):
        read_archive(path)  # raises the DataError that says why
        raise DataError(f"{path}: cannot read it as an .npz archive") from None
    return {info.filename.removesuffix(".npy"):
            functools.partial(_mapped if info.compress_type == zipfile.ZIP_STORED else _whole,
                              path, info)
            for info in infos}


def _whole(path: str, info: zipfile.ZipInfo) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return np.asarray(archive[info.filename.removesuffix(".npy")])
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path}: cannot read {info.filename} ({error})") from None


def _mapped(path: str, info: zipfile.ZipInfo) -> np.ndarray:
    """A stored member as a read-only memory map (read whole where it is not in C
    order or holds objects)."""
    with open(path, "rb") as file:
        file.seek(info.header_offset)
        header = file.read(LOCAL_HEADER)
        skip = int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
        file.seek(info.header_offset + LOCAL_HEADER + skip)
        version = np.lib.format.read_magic(file)
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = reader(file)
        offset = file.tell()
    if fortran or dtype.hasobject or not shape:
        return _whole(path, info)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
