"""How much memory a workload needs, estimated from its IR before anything is allocated."""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.dialects.func import FuncOp
from xdsl.ir import SSAValue

from annc.dsl import dtypes, types
from annc.dsl.errors import OutOfMemoryError
from annc.hardware.devices.allocator import available_bytes

HEADROOM = 0.9
"""The share of available memory a workload may plan to use."""


@dataclass(frozen=True)
class TensorSize:
    name: str
    type: str
    bytes: int


@dataclass(frozen=True)
class MemoryEstimate:
    total_bytes: int
    largest: TensorSize | None


def _describe(value: SSAValue) -> TensorSize | None:
    type_ = value.type
    if not isinstance(type_, TensorType):
        return None
    dtype = dtypes.of_tensor(type_)
    itemsize = dtypes.itemsize(dtype)
    shape = tuple(type_.get_shape())
    shown = str(types.TensorType(dtype, shape))
    return TensorSize(value.name_hint or "a temporary", shown, itemsize * math.prod(shape))


def estimate(module: ModuleOp) -> MemoryEstimate:
    """Bytes of every tensor the program holds: inputs and each op's result, counted once."""
    sizes: list[TensorSize] = []
    for op in module.walk():
        values: list[SSAValue] = list(op.results)
        if isinstance(op, FuncOp):
            values += list(op.body.block.args)
        sizes += [s for s in map(_describe, values) if s is not None]
    largest = max(sizes, key=lambda s: s.bytes, default=None)
    return MemoryEstimate(sum(s.bytes for s in sizes), largest)


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def ensure_fits(module: ModuleOp, available: int | None = None) -> MemoryEstimate:
    """Refuses a workload that cannot fit, naming its largest tensor and the bytes."""
    needed = estimate(module)
    limit = int((available_bytes() if available is None else available) * HEADROOM)
    if needed.total_bytes > limit:
        largest = needed.largest
        assert largest is not None
        raise OutOfMemoryError(
            f"the workload needs about {format_bytes(needed.total_bytes)} "
            f"({needed.total_bytes} bytes) but only {format_bytes(limit)} is available; its "
            f"largest tensor is {largest.name} : {largest.type} "
            f"({format_bytes(largest.bytes)}, {largest.bytes} bytes). Use smaller sizes "
            "(-D) or a machine with more memory."
        )
    return needed
