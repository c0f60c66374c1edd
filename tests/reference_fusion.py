"""The reference for fusion's grouping: every candidate group checked from scratch.

This is how `passes.fusion` found its groups before it kept, per group, its counts and
the places its results are read: the same walk in program order and the same options
in the same order, each option's members merged, checked for fusability and then for a
reader between them anew. That made a chain of n element-wise ops cost n² (a program
of 10,000 such statements spent 407 s in fusion). Tests check that the faster grouping
forms exactly the same groups, on programs whose groups stay below `passes.fusion.
MOST_OPS` (a rule this reference predates).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.ir import Block, Operation

from annc.dsl.dialect import KernelOp
from annc.passes.fusion import _dtype, _elementwise, _in_block, _pin


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
    last = max(position[op] for op in members)
    member_set = set(members)
    for op in members:
        for result in op.results:
            for use in result.uses:
                user = _in_block(use.operation, block)
                if user is not None and user not in member_set and position[user] < last:
                    return False
    return True


def reference_chains(block: Block) -> list[list[KernelOp]]:
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
