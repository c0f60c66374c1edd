"""A `kernel.region` op as a `RegionSpec`: what its body computes, numbered for the builders.

A fused chain's inputs are the region's inputs. A whole loop's inputs are its
carried values (the loop's initial values, one per iter_arg, even where two
start from the same value), then the loop-invariant values it reads: region
inputs, and constants made inside the loop, which become inputs too (their
arrays are part of the source). Regions nested in the loop's body are
flattened into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IntegerAttr, TensorType
from xdsl.ir import Block, BlockArgument, OpResult, SSAValue

from annc.dsl import dtypes
from annc.dsl.dialect import ConstantOp, KernelOp, RegionOp, YieldOp
from annc.hardware.variants.regions.spec import RegionOp as SpecOp
from annc.hardware.variants.regions.spec import RegionSpec

FOLDED_CONSTANT_ELEMENTS = 256
"""Constants of at most this many elements (stencils, coefficients) are part of the
spec, for a builder to fold into its code; larger ones are only inputs."""


@dataclass(frozen=True)
class Lowered:
    """A region's spec and where its inputs come from when it runs."""

    spec: RegionSpec
    sources: tuple[int | np.ndarray, ...] = field(compare=False)
    """Per spec input: the index of the region's input it is, or a constant's array."""
    results: tuple[int, ...] = ()
    """Per result of the region op: the spec output it is."""


def _dtype(value: SSAValue) -> str:
    assert isinstance(value.type, TensorType)
    return dtypes.of_tensor(value.type)


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


class _Numbering:
    """Value numbers: inputs first, then every op's result in order."""

    def __init__(self) -> None:
        self.number: dict[SSAValue, int] = {}
        self.inputs: list[tuple[int, ...]] = []
        self.sources: list[int | np.ndarray] = []
        self.ops: list[SpecOp] = []
        self.constants: list[tuple[int, tuple[float, ...]]] = []

    def add_input(self, value: SSAValue, source: int | np.ndarray,
                  known: np.ndarray | None = None) -> None:
        """A region input; `known` is its value where a constant gives it."""
        self.number[value] = len(self.inputs)
        self.inputs.append(_shape(value))
        self.sources.append(source)
        if known is not None and known.size <= FOLDED_CONSTANT_ELEMENTS:
            self.constants.append((len(self.inputs) - 1,
                                   tuple(float(x) for x in known.ravel())))

    def block(self, block: Block) -> list[SSAValue]:
        """Numbers the block's kernel ops (after every input is added); returns what its
        terminator yields. A nested region's arguments and results take the numbers of
        its inputs and of what it yields."""
        for op in block.ops:
            if isinstance(op, KernelOp):
                self.number[op.results[0]] = len(self.inputs) + len(self.ops)
                self.ops.append(SpecOp(op.kernel_name(),
                                       tuple(self.number[v] for v in op.operands)))
            elif isinstance(op, RegionOp):
                for argument, operand in zip(op.block.args, op.inputs, strict=True):
                    self.number[argument] = self.number[operand]
                yielded = self.block(op.block)
                for result, value in zip(op.outputs, yielded, strict=True):
                    self.number[result] = self.number[value]
            elif isinstance(op, YieldOp | scf.YieldOp):
                return list(op.operands)
            elif not isinstance(op, ConstantOp | arith.ConstantOp):
                raise ValueError(f"a region cannot hold {op.name}")
        raise ValueError("a region's block has no terminator")


def _bound(value: SSAValue) -> int:
    owner = value.owner
    if not isinstance(owner, arith.ConstantOp) or not isinstance(owner.value, IntegerAttr):
        raise ValueError("a whole-loop region needs constant bounds")
    return owner.value.value.data


def lower_region(region: RegionOp) -> Lowered:
    """The spec of a region op (a fused chain or a whole loop)."""
    loop = next((op for op in region.block.ops if isinstance(op, scf.ForOp)), None)
    if loop is None:
        return _lower_chain(region)
    return _lower_loop(region, loop)


def _known(value: SSAValue) -> np.ndarray | None:
    """The array of a region input that a `kernel.constant` makes, if one does."""
    owner = value.owner
    return owner.array() if isinstance(owner, ConstantOp) else None


def _lower_chain(region: RegionOp) -> Lowered:
    numbering = _Numbering()
    inputs = region.inputs  # made anew on each read: read once, not once an input
    for index, (argument, value) in enumerate(zip(region.block.args, inputs, strict=True)):
        numbering.add_input(argument, index, _known(value))
    yielded = numbering.block(region.block)
    outputs = tuple(numbering.number[v] for v in yielded)
    spec = RegionSpec(tuple(numbering.inputs), _dtype(region.block.args[0])
                      if region.block.args else _dtype(yielded[0]),
                      tuple(numbering.ops), outputs, constants=tuple(numbering.constants))
    return Lowered(spec, tuple(numbering.sources), tuple(range(len(outputs))))


def _argument_index(value: SSAValue, region: RegionOp) -> int:
    if not (isinstance(value, BlockArgument) and value.block is region.block):
        raise ValueError("a whole loop's initial values must be the region's inputs")
    return value.index


def _lower_loop(region: RegionOp, loop: scf.ForOp) -> Lowered:
    lower, upper, step = (_bound(v) for v in (loop.lb, loop.ub, loop.step))
    trips = max(0, -(-(upper - lower) // step)) if step > 0 else 0
    body = loop.body.block
    numbering = _Numbering()
    carried = list(body.args[1:])
    for argument, initial in zip(carried, loop.iter_args, strict=True):
        numbering.add_input(argument, _argument_index(initial, region))
    for op in body.walk():
        if isinstance(op, ConstantOp) and op.parent_block() is body:
            array = op.array()
            numbering.add_input(op.result, array, array)
    inputs = region.inputs
    for op in body.walk():
        for operand in op.operands:
            if isinstance(operand, BlockArgument) and operand.block is region.block \
                    and operand not in numbering.number:
                numbering.add_input(operand, operand.index, _known(inputs[operand.index]))
    yielded = numbering.block(body)
    outputs = tuple(numbering.number[v] for v in yielded)
    results = []
    region_yield = region.block.last_op
    assert isinstance(region_yield, YieldOp)
    for value in region_yield.values:
        if not (isinstance(value, OpResult) and value.op is loop):
            raise ValueError("a whole-loop region returns only its loop's results")
        results.append(value.index)
    spec = RegionSpec(tuple(numbering.inputs), _dtype(carried[0]) if carried else "f32",
                      tuple(numbering.ops), outputs, trips=trips, carried=len(carried),
                      constants=tuple(numbering.constants))
    return Lowered(spec, tuple(numbering.sources), tuple(results))
