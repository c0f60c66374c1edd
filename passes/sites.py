"""The kernel ops of a module as selection sees them: shapes, dtype, trip count, data flow.

A *site* is one kernel op with how many times it runs (the product of the trip
counts of the `scf.for` loops around it), its pin, and which values it reads
and writes. Values are tracked through loops: a loop-carried block argument and
a loop's result are the value its body yields, so the data flow between kernel
ops is visible across iterations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from xdsl.dialects import scf
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, TensorType
from xdsl.ir import BlockArgument, Operation, OpResult, SSAValue
from xdsl.traits import ConstantLike

from annc.dsl import dtypes
from annc.dsl.dialect import KernelOp, RegionOp, where

HOST = -1
"""The producer of values that start on the host: inputs, constants."""


@dataclass(slots=True)
class Site:
    index: int
    op: KernelOp
    kernel: str
    shapes: tuple[tuple[int, ...], ...]
    dtype: str
    trips: int
    pin: str | None
    loc: str
    operands: list[int] = field(default_factory=list)
    """The value id of each operand."""
    result: int = 0
    pin_variant: str | None = None
    """The variant the user pinned the op to (`kernel.pin_variant`)."""


@dataclass(slots=True)
class Value:
    """A tensor moving between sites; `producer` is a site index or HOST."""

    producer: int
    bytes: int
    times: int
    """How often a new instance of it is produced (its producer's trip count)."""
    consumers: list[int] = field(default_factory=list)
    """Site indices reading it; HOST for a function result."""


@dataclass
class DataFlow:
    sites: list[Site]
    values: list[Value]


def trip_count(loop: scf.ForOp) -> int:
    """How many times the loop runs; 1 where a bound is not a constant."""
    bounds = []
    for operand in (loop.lb, loop.ub, loop.step):
        value = ConstantLike.get_constant_value(operand)
        if not isinstance(value, IntegerAttr):
            return 1
        bounds.append(value.value.data)
    lower, upper, step = bounds
    return max(0, math.ceil((upper - lower) / step)) if step > 0 else 0


def trips_of(op: Operation) -> int:
    """How many times an op runs: the product of the trip counts of the loops around it."""
    trips = 1
    parent = op.parent_op()
    while parent is not None:
        if isinstance(parent, scf.ForOp):
            trips *= trip_count(parent)
        parent = parent.parent_op()
    return trips


def _shape(value: SSAValue) -> tuple[int, ...]:
    type_ = value.type
    assert isinstance(type_, TensorType)
    return tuple(type_.get_shape())


def _tensor_bytes(value: SSAValue) -> int:
    return dtypes.itemsize(dtypes.of_tensor(value.type)) * math.prod(_shape(value))


def _source(value: SSAValue, seen: frozenset[SSAValue] = frozenset()) -> SSAValue:
    """The value a loop-carried argument or a loop result stands for (what the body
    yields), seeing through regions: a region's argument is its input, and its result
    what its body yields."""
    if value in seen:
        return value
    if isinstance(value, OpResult) and isinstance(value.op, scf.ForOp | RegionOp):
        yielded = value.op.regions[0].block.last_op
        assert yielded is not None
        return _source(yielded.operands[value.index], seen | {value})
    if isinstance(value, BlockArgument) and isinstance(value.block.parent_op(), RegionOp):
        region = value.block.parent_op()
        assert region is not None
        return _source(region.operands[value.index], seen | {value})
    if isinstance(value, BlockArgument) and isinstance(value.block.parent_op(), scf.ForOp):
        if value.index == 0:
            return value
        yielded = value.block.last_op
        assert yielded is not None
        return _source(yielded.operands[value.index - 1], seen | {value})
    return value


def data_flow(module: ModuleOp) -> DataFlow:
    """Every kernel op of the module as a site, in program order, and the values between."""
    sites: list[Site] = []
    index_of: dict[Operation, int] = {}
    for op in module.walk():
        if isinstance(op, KernelOp):
            index_of[op] = len(sites)
            element = op.operands[0].type
            assert isinstance(element, TensorType)
            sites.append(Site(
                index=len(sites), op=op, kernel=op.kernel_name(),
                shapes=tuple(_shape(o) for o in op.operands),
                dtype=dtypes.of_tensor(element),
                trips=trips_of(op), pin=op.pin_device.data if op.pin_device else None,
                loc=where(op),
                pin_variant=op.pin_variant.data if op.pin_variant else None,
            ))
    values: list[Value] = []
    value_of: dict[SSAValue, int] = {}
    """The id of each source value (`_source`) and of each value read, once found."""

    def value_id(value: SSAValue) -> int:
        if value in value_of:  # a program's inputs are read by many ops
            return value_of[value]
        source = _source(value)
        if source not in value_of:
            producer = HOST
            if isinstance(source, OpResult) and source.op in index_of:
                producer = index_of[source.op]
            times = sites[producer].trips if producer != HOST else 1
            value_of[source] = len(values)
            values.append(Value(producer, _tensor_bytes(source), times))
        value_of[value] = value_of[source]
        return value_of[value]

    for site in sites:
        site.operands = [value_id(o) for o in site.op.operands]
        for v in site.operands:
            values[v].consumers.append(site.index)
        site.result = value_id(site.op.results[0])
    for op in module.walk():
        if op.name == "func.return":
            for operand in op.operands:
                values[value_id(operand)].consumers.append(HOST)
    return DataFlow(sites, values)
