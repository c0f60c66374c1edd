"""`fuse-regions`: group kernel ops that may run as one compiled function into regions.

Two kinds of region, both `kernel.region` ops whose body is the original ops:

- **Fused chains.** In every block, in program order, an op joins the group of
  the ops that produce its operands when the group stays *fusable*: at most one
  op that is not element-wise (a convolution, matrix product or reduction, whose
  element-wise consumers and producers fuse around it) besides transposes (which
  a fused version reads through instead of copying), one
  dtype, one pin (or none), and no op outside the group between its first and
  last member reading a member's result (the region takes the place of its last
  member, so such an op would read a value not yet made). Groups of two ops or
  more become regions.
- **Whole loops.** An `scf.for` with constant bounds and at least one trip whose
  body holds only kernel ops, constants and fused chains (no inner loop), of one
  dtype and pinned nowhere but the CPU, is wrapped in a region too.

A region is only a candidate: `select-variants` compares running it compiled
with running its ops one by one (variant `ops`), which is always possible.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, TensorType
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass

from dsl import dtypes, kernels
from dsl.dialect import ConstantOp, KernelOp, RegionOp, YieldOp
from passes.sites import trip_count

LOOP_DEVICES = (None, "cpu")
"""The pins a whole loop's ops may carry: its compiled versions run on the CPU."""


def _dtype(op: Operation) -> str:
    type_ = op.results[0].type
    assert isinstance(type_, TensorType)
    return dtypes.of_tensor(type_)


def _pin(op: KernelOp) -> str | None:
    return op.device.data if op.device else None


def _elementwise(op: KernelOp) -> bool:
    return kernels.kernel(op.kernel_name()).kind == "elementwise"


def _in_block(op: Operation, block: Block) -> Operation | None:
    """The op of `block` that is `op` or holds it; None if `op` is not inside the block."""
    while op.parent_block() is not block:
        parent = op.parent_op()
        if parent is None:
            return None
        op = parent
    return op


@dataclass
class _Group:
    ops: list[KernelOp]

    def fusable_with(self, other: list[KernelOp]) -> bool:
        merged = self.ops + other
        return (sum(not _elementwise(op) and op.kernel_name() != "transpose"
                    for op in merged) <= 1
                and len({_dtype(op) for op in merged}) == 1
                and len({_pin(op) for op in merged}) == 1)


def _legal(members: list[KernelOp], block: Block, position: dict[Operation, int]) -> bool:
    """Whether moving `members` to the position of the last of them keeps every use
    after its definition: no op between them outside the group reads their results."""
    last = max(position[op] for op in members)
    member_set = set(members)
    for op in members:
        for result in op.results:
            for use in result.uses:
                user = _in_block(use.operation, block)
                if user is not None and user not in member_set and position[user] < last:
                    return False
    return True


def _chains(block: Block) -> list[list[KernelOp]]:
    """The fusable groups of a block's kernel ops, each in program order."""
    position = {op: i for i, op in enumerate(block.ops)}
    group_of: dict[Operation, _Group] = {}
    groups: list[_Group] = []
    for op in block.ops:
        if not isinstance(op, KernelOp):
            continue
        producers: list[_Group] = []
        for operand in op.operands:
            owner = operand.owner
            if isinstance(owner, Operation) and owner in group_of:
                group = group_of[owner]
                if group not in producers:
                    producers.append(group)
        joined = _join(op, producers, block, position)
        if joined is None:
            joined = _Group([op])
            groups.append(joined)
        for member in joined.ops:
            group_of[member] = joined
    return [group.ops for group in groups if len(group.ops) >= 2]


def _join(op: KernelOp, producers: list[_Group], block: Block,
          position: dict[Operation, int]) -> _Group | None:
    """The group `op` joins (merging its producers' groups where that is fusable)."""
    options = [producers] if len(producers) > 1 else []
    options += [[group] for group in producers]
    for option in options:
        ops = sorted((m for g in option for m in g.ops), key=position.__getitem__)
        head = option[0]
        if not head.fusable_with([m for g in option[1:] for m in g.ops] + [op]):
            continue
        if not _legal([*ops, op], block, position):
            continue
        head.ops = [*ops, op]
        for group in option[1:]:
            group.ops = []
        return head
    return None


def _outside(op: Operation | None, members: set[Operation]) -> bool:
    """Whether `op` is neither one of `members` nor inside one."""
    while op is not None:
        if op in members:
            return False
        op = op.parent_op()
    return True


def _defined_outside(value: SSAValue, members: set[Operation]) -> bool:
    owner = value.owner
    return _outside(owner if isinstance(owner, Operation) else owner.parent_op(), members)


def _wrap(members: list[Operation]) -> RegionOp:
    """Moves `members` (ops of one block, in order) into a new region op at the place of
    the last of them; outer values become the region's inputs, and values used after it
    its results."""
    member_set = set(members)
    inputs: list[SSAValue] = []
    for member in members:
        for op in member.walk():
            for operand in op.operands:
                if _defined_outside(operand, member_set) and operand not in inputs:
                    inputs.append(operand)
    outputs: list[SSAValue] = [r for member in members for r in member.results
                               if any(_outside(use.operation, member_set) for use in r.uses)]
    region = RegionOp(inputs, [r.type for r in outputs])
    loc = next((op.loc for member in members for op in member.walk()
                if isinstance(op, KernelOp) and op.loc), None)
    if loc is not None:
        region.attributes["loc"] = loc
    pins = {_pin(op) for op in members if isinstance(op, KernelOp)}
    if len(pins) == 1 and None not in pins:
        region.attributes["device"] = members[0].attributes["device"]
    last = members[-1]
    block = last.parent_block()
    assert block is not None
    block.insert_op_after(region, last)
    for result_index, result in enumerate(outputs):
        for use in list(result.uses):
            if _outside(use.operation, member_set) and use.operation is not region:
                use.operation.operands[use.index] = region.outputs[result_index]
    for member in members:
        block.detach_op(member)
        region.block.add_op(member)
    region.block.add_op(YieldOp(outputs))
    _read_arguments(region, inputs)
    return region


def _read_arguments(region: RegionOp, inputs: list[SSAValue]) -> None:
    """Makes the ops inside the region read its block arguments instead of `inputs`.

    It walks the region's own ops, not the uses of the inputs: a program's input may be
    read by hundreds of ops outside it."""
    argument_of = dict(zip(inputs, region.block.args, strict=True))
    for op in region.block.walk():
        for index, operand in enumerate(op.operands):
            if operand in argument_of:
                op.operands[index] = argument_of[operand]


def _fuse_block(block: Block) -> None:
    for op in list(block.ops):
        for region in op.regions:
            for inner in region.blocks:
                _fuse_block(inner)
    for group in _chains(block):
        _wrap(list(group))


def _loop_fits(loop: scf.ForOp) -> bool:
    if not all(isinstance(v.owner, arith.ConstantOp) and isinstance(v.owner.value, IntegerAttr)
               for v in (loop.lb, loop.ub, loop.step)):
        return False
    found: set[str] = set()
    has_kernels = False
    for op in loop.body.block.walk():
        if isinstance(op, scf.ForOp) or (isinstance(op, RegionOp) and op.is_loop()):
            return False
        if isinstance(op, KernelOp):
            if _pin(op) not in LOOP_DEVICES:
                return False
            found.add(_dtype(op))
            has_kernels = True
        elif isinstance(op, ConstantOp):
            found.add(_dtype(op))
        elif not isinstance(op, RegionOp | YieldOp | scf.YieldOp):
            return False
    return has_kernels and len(found) == 1 and trip_count(loop) > 0


def _wrap_loop(loop: scf.ForOp) -> RegionOp:
    """The loop in a region of its own, with copies of its bounds inside."""
    block = loop.parent_block()
    assert block is not None
    copies = []
    for index, bound in enumerate((loop.lb, loop.ub, loop.step)):
        owner = bound.owner
        assert isinstance(owner, arith.ConstantOp)
        copy = owner.clone()
        block.insert_op_before(copy, loop)
        loop.operands[index] = copy.result
        copies.append(copy)
        if not owner.result.uses:
            block.erase_op(owner)
    return _wrap([*copies, loop])


def _fuse_loops(block: Block) -> None:
    for op in list(block.ops):
        if isinstance(op, scf.ForOp):
            _fuse_loops(op.body.block)
            if _loop_fits(op):
                _wrap_loop(op)


def fuse_regions(module: ModuleOp) -> None:
    """Groups the module's fusable chains and whole loops into regions (in place)."""
    for op in module.ops:
        for region in op.regions:
            for block in region.blocks:
                _fuse_block(block)
                _fuse_loops(block)


@dataclass(frozen=True)
class FuseRegions(ModulePass):
    """Groups fusable chains of kernel ops, and whole loops, into `kernel.region` ops."""

    name = "fuse-regions"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fuse_regions(op)
