"""Calling ahead-of-time compiled Halide kernels through ctypes, without importing Halide.

A kernel compiled by `compile_to_static_library` and linked into a shared object
exports `int NAME(halide_buffer_t *input..., halide_buffer_t *output)`; a region
(`regions.halide_region`) has several outputs, after its inputs, and 0-d buffers
(a scalar: `dimensions` 0) among both. The
structures below mirror Halide 21's `HalideRuntime.h` (checked against the header
that `c_header` emits, in `tests/test_build_cache.py`):

    halide_dimension_t { int32 min, extent, stride; uint32 flags; }
    halide_type_t      { uint8 code; uint8 bits; uint16 lanes; }
    halide_buffer_t    { uint64 device; void *device_interface; uint8 *host;
                         uint64 flags; halide_type_t type; int32 dimensions;
                         halide_dimension_t *dim; void *padding; }

Kernels are compiled without Halide's runtime; one shared runtime is loaded first
with `RTLD_GLOBAL` so that every kernel resolves its `halide_*` calls to it.
A shared object is loaded from verified bytes: they are written to a private file
of a name never used before, loaded from there, and the file is removed, so what
runs is exactly what was checked.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import math
import os
import tempfile
import uuid
from pathlib import Path

import numpy as np

FLOAT_CODE = 2
"""`halide_type_float`."""


class HalideDimension(ctypes.Structure):
    _fields_ = [("min", ctypes.c_int32), ("extent", ctypes.c_int32),
                ("stride", ctypes.c_int32), ("flags", ctypes.c_uint32)]


class HalideType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class HalideBuffer(ctypes.Structure):
    _fields_ = [
        ("device", ctypes.c_uint64),
        ("device_interface", ctypes.c_void_p),
        ("host", ctypes.c_void_p),
        ("flags", ctypes.c_uint64),
        ("type", HalideType),
        ("dimensions", ctypes.c_int32),
        ("dim", ctypes.POINTER(HalideDimension)),
        ("padding", ctypes.c_void_p),
    ]


LAYOUT = {
    "halide_dimension_t": (ctypes.sizeof(HalideDimension),
                           {n: getattr(HalideDimension, n).offset
                            for n, *_ in HalideDimension._fields_}),
    "halide_type_t": (ctypes.sizeof(HalideType),
                      {n: getattr(HalideType, n).offset for n, *_ in HalideType._fields_}),
    "halide_buffer_t": (ctypes.sizeof(HalideBuffer),
                        {n: getattr(HalideBuffer, n).offset for n, *_ in HalideBuffer._fields_}),
}
"""Size and field offsets of each structure, as ctypes lays them out."""


class KernelError(RuntimeError):
    """A compiled kernel returned a Halide error code."""


class BufferSlot:
    """One `halide_buffer_t` for a fixed shape and dtype; only its host pointer changes."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        dims = (HalideDimension * max(len(shape), 1))()
        stride = 1
        for i, extent in enumerate(reversed(shape)):  # numpy's last axis is Halide's dim 0
            dims[i].min, dims[i].extent, dims[i].stride = 0, extent, stride
            stride *= extent
        self.dims = dims
        self.buffer = HalideBuffer()
        self.buffer.type = HalideType(FLOAT_CODE, np.dtype(dtype).itemsize * 8, 1)
        self.buffer.dimensions = len(shape)
        self.buffer.dim = ctypes.cast(dims, ctypes.POINTER(HalideDimension))
        self.pointer = ctypes.pointer(self.buffer)
        self.size = math.prod(shape)

    def bind(self, array: np.ndarray) -> None:
        """Points the buffer at a C-contiguous array of the slot's shape and dtype."""
        self.buffer.host = array.ctypes.data


_PRIVATE: list[Path] = []


def _private_folder() -> Path:
    """A folder of this process's own (removed when it exits) to load libraries from."""
    if not _PRIVATE:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) \
            else None
        _PRIVATE.append(Path(tempfile.mkdtemp(prefix=f"annc-so-{os.getpid()}-", dir=base)))
        atexit.register(_remove_private_folder)
    return _PRIVATE[0]


def _remove_private_folder() -> None:
    """Removes the folder if it is empty, as it is once every library is loaded (each
    file goes as soon as it is mapped); one a crash left a file in stays."""
    with contextlib.suppress(OSError):
        os.rmdir(_PRIVATE[0])


def load_shared_object(payload: bytes, global_symbols: bool = False) -> ctypes.CDLL:
    """Loads a shared object from its (already verified) bytes.

    The file name is new every time: the dynamic loader returns an already loaded
    library for a name it has seen, whatever the file now holds."""
    path = _private_folder() / f"{uuid.uuid4().hex}.so"
    path.write_bytes(payload)
    try:
        mode = ctypes.RTLD_GLOBAL if global_symbols else ctypes.RTLD_LOCAL
        return ctypes.CDLL(str(path), mode=mode)
    finally:
        path.unlink()


class AotFunction:
    """A compiled kernel's or region's entry point, called with numpy arrays of fixed
    shapes, all of one dtype."""

    def __init__(self, library: ctypes.CDLL, symbol: str, shapes: tuple[tuple[int, ...], ...],
                 dtype: np.dtype) -> None:
        self.library = library  # keeps the code mapped
        self.function = getattr(library, symbol)
        self.function.restype = ctypes.c_int
        self.function.argtypes = [ctypes.POINTER(HalideBuffer)] * len(shapes)
        self.slots = [BufferSlot(shape, dtype) for shape in shapes]
        self.pointers = [slot.pointer for slot in self.slots]

    def __call__(self, *arrays: np.ndarray) -> None:
        """Runs the pipeline on its inputs then outputs, each C-contiguous of its slot's
        shape."""
        for slot, array in zip(self.slots, arrays, strict=True):
            slot.bind(array)
        status = self.function(*self.pointers)
        if status != 0:
            raise KernelError(f"the compiled Halide kernel returned error {status}")
