"""`fuse-regions`: group kernel ops that may run as one compiled function into regions.

Two kinds of region, both `kernel.region` ops whose body is the original ops:

- **Fused chains.** In every block, in program order, an op joins the group of
  the ops that produce its operands when the group stays *fusable*: at most one
  op that is not element-wise (a convolution, matrix product or reduction, whose
  element-wise consumers and producers fuse around it) besides transposes (which
  a fused version reads through instead of copying), one
  dtype, one pin (or none), at most `MOST_OPS` ops, and no op outside the group
  between its first and last member reading a member's result (the region takes the
  place of its last member, so such an op would read a value not yet made). Groups of
  two ops or more become regions.
- **Whole loops.** An `scf.for` with constant bounds and at least one trip whose
  body holds only kernel ops, constants and fused chains (no inner loop), at most
  `MOST_OPS` kernel ops, of one dtype and pinned nowhere but the CPU, is wrapped in a
  region too.

A region is only a candidate: `select-variants` compares running it compiled
with running its ops one by one (variant `ops`), which is always possible.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, TensorType
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern
from xdsl.rewriter import InsertPoint

from annc.dsl import dtypes, kernels
from annc.dsl.dialect import ConstantOp, KernelOp, RegionOp, YieldOp, where
from annc.passes.sites import trip_count

LOOP_DEVICES = (None, "cpu")
"""The pins a whole loop's ops may carry: its compiled versions run on the CPU."""

MOST_OPS = 256
"""The most kernel ops a region holds; a longer chain becomes several regions. What a
region costs to build grows faster than its length: Halide built a chain of 100 ops in
1.1 s, 400 in 3.6 s and 1,600 in 21 s, and its auto-scheduler crashed the process (its
stack overflowed) on a chain of 800,000 (2026-12-07). The examples' regions hold 2 to
12 ops."""


def _dtype(op: Operation) -> str:
    type_ = op.results[0].type
    assert isinstance(type_, TensorType)
    return dtypes.of_tensor(type_)


def _pin(op: KernelOp) -> str | None:
    return op.pin_device.data if op.pin_device else None


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


def _heavy(op: KernelOp) -> bool:
    """Whether the op counts against a group's one op that is not element-wise."""
    return not _elementwise(op) and op.kernel_name() != "transpose"


@dataclass(eq=False)
class _Group:
    """A fusable group as it grows: its members and what decides whether it may grow.

    `readers` is a heap of the positions of the ops that read a member's result (the
    op of the block that holds the reader, where it is nested), members' among them
    until they come to the top (a member stays one). Kept as the walk goes, these make
    each step cost the ops it touches, not the group's size: checked from scratch, a
    chain of n element-wise ops cost n² (10,000 statements spent 407 s here)."""

    ops: list[KernelOp]
    order: int
    """Where the group stands among the block's groups (its first op's turn)."""
    heavy: int
    dtype: str
    pin: str | None
    readers: list[int] = field(default_factory=list)


class _Grouping:
    """The groups of one block's kernel ops, formed in program order: an op joins the
    group of the ops that produce its operands (all their groups merged, else one of
    them, in operand order) where that stays fusable and legal."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self.ops = list(block.ops)
        self.position = {op: i for i, op in enumerate(self.ops)}
        self.group_of: dict[Operation, _Group] = {}
        self.groups: list[_Group] = []

    def chains(self) -> list[list[KernelOp]]:
        for op in self.ops:
            if isinstance(op, KernelOp):
                self.add(op)
        groups = sorted((g for g in self.groups if len(g.ops) >= 2), key=lambda g: g.order)
        return [sorted(g.ops, key=self.position.__getitem__) for g in groups]

    def add(self, op: KernelOp) -> None:
        producers: list[_Group] = []
        for operand in op.operands:
            owner = operand.owner
            if isinstance(owner, Operation) and owner in self.group_of:
                group = self.group_of[owner]
                if group not in producers:
                    producers.append(group)
        options = [producers] if len(producers) > 1 else []
        options += [[group] for group in producers]
        option = next((o for o in options if self.fusable(o, op) and self.legal(o, op)), None)
        group = self.merge(option) if option else self.new_group(op)
        group.ops.append(op)
        group.heavy += _heavy(op)
        self.group_of[op] = group
        for result in op.results:
            for use in result.uses:
                reader = _in_block(use.operation, self.block)
                if reader is not None:
                    heapq.heappush(group.readers, self.position[reader])

    def new_group(self, op: KernelOp) -> _Group:
        group = _Group([], len(self.groups), 0, _dtype(op), _pin(op))
        self.groups.append(group)
        return group

    @staticmethod
    def fusable(option: list[_Group], op: KernelOp) -> bool:
        """At most one op that is not element-wise (transposes aside), one dtype, one
        pin, `MOST_OPS` ops."""
        return (sum(len(g.ops) for g in option) < MOST_OPS
                and sum(g.heavy for g in option) + _heavy(op) <= 1
                and all(g.dtype == _dtype(op) and g.pin == _pin(op) for g in option))

    def legal(self, option: list[_Group], op: KernelOp) -> bool:
        """Whether the option's groups and `op` may become one region at `op`'s place: no
        op before it outside them reads their results. A reader inside another group of
        the option is set back, since the option may not be taken."""
        here = self.position[op]
        merged = set(option)
        set_back: list[tuple[_Group, int]] = []
        legal = True
        for group in option:
            while legal and group.readers and group.readers[0] < here:
                reader = heapq.heappop(group.readers)
                owner = self.group_of.get(self.ops[reader])
                if owner is group:
                    continue  # a member now, for good
                set_back.append((group, reader))
                legal = owner in merged
        for group, reader in set_back:
            heapq.heappush(group.readers, reader)
        return legal

    def merge(self, option: list[_Group]) -> _Group:
        """The option's groups as one: the largest takes the others' ops (so an op moves
        O(log n) times at most), and the place in order of the option's first."""
        largest = max(option, key=lambda g: len(g.ops))
        for group in option:
            if group is largest:
                continue
            for member in group.ops:
                self.group_of[member] = largest
            largest.ops += group.ops
            largest.heavy += group.heavy
            for reader in group.readers:
                heapq.heappush(largest.readers, reader)
            group.ops, group.readers = [], []
        largest.order = option[0].order
        return largest


def _chains(block: Block) -> list[list[KernelOp]]:
    """The fusable groups of a block's kernel ops, each in program order."""
    return _Grouping(block).chains()


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


def _wrap(members: list[Operation], rewriter: PatternRewriter) -> RegionOp:
    """Moves `members` (ops of one block, in order) into a new region op at the place of
    the last of them; outer values become the region's inputs, and values used after it
    its results."""
    member_set = set(members)
    inputs: dict[SSAValue, None] = {}  # in order of first use, each once
    for member in members:
        for op in member.walk():
            for operand in op.operands:
                if operand not in inputs and _defined_outside(operand, member_set):
                    inputs[operand] = None
    outputs: list[SSAValue] = [r for member in members for r in member.results
                               if any(_outside(use.operation, member_set) for use in r.uses)]
    region = RegionOp(list(inputs), [r.type for r in outputs])
    region.location = next((op.location for member in members for op in member.walk()
                            if isinstance(op, KernelOp) and where(op)), region.location)
    pins = {_pin(op) for op in members if isinstance(op, KernelOp)}
    if len(pins) == 1 and None not in pins:
        first = next(op for op in members if isinstance(op, KernelOp))
        region.pin_device = first.pin_device
    rewriter.insert(region, InsertPoint.after(members[-1]))
    for result, output in zip(outputs, region.outputs, strict=True):
        rewriter.replace_uses_with_if(
            result, output,
            lambda use: use.operation is not region and _outside(use.operation, member_set))
        output.name_hint = None  # the rewriter lends it the member's name: keep the IR as printed
    for member in members:
        member.detach()
    rewriter.insert([*members, YieldOp(outputs)], InsertPoint.at_end(region.block))
    _read_arguments(region, list(inputs), rewriter)
    return region


def _read_arguments(region: RegionOp, inputs: list[SSAValue],
                    rewriter: PatternRewriter) -> None:
    """Makes the ops inside the region read its block arguments instead of `inputs`.

    It walks the region's own ops, not the uses of the inputs: a program's input may be
    read by hundreds of ops outside it."""
    argument_of = dict(zip(inputs, region.block.args, strict=True))
    for op in region.block.walk():
        changed = False
        for index, operand in enumerate(op.operands):
            if operand in argument_of:
                op.operands[index] = argument_of[operand]
                changed = True
        if changed:
            rewriter.notify_op_modified(op)


@dataclass
class FuseChain(RewritePattern):
    """Wraps each fusable chain in a region, at its last op. The chains are found first,
    for every block of the module (`chains_of`): grouping is a question about a whole
    block, and wrapping one block's chains changes no other block's."""

    chain_ending_at: dict[Operation, list[KernelOp]]

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        chain = self.chain_ending_at.pop(op, None)
        if chain is not None:
            _wrap(list(chain), rewriter)


def chains_of(module: ModuleOp) -> dict[Operation, list[KernelOp]]:
    """Every block's fusable chains, keyed by each chain's last op."""
    found: dict[Operation, list[KernelOp]] = {}
    for op in module.walk():
        for region in op.regions:
            for block in region.blocks:
                for chain in _chains(block):
                    found[chain[-1]] = chain
    return found


def _loop_fits(loop: scf.ForOp) -> bool:
    if not all(isinstance(v.owner, arith.ConstantOp) and isinstance(v.owner.value, IntegerAttr)
               for v in (loop.lb, loop.ub, loop.step)):
        return False
    found: set[str] = set()
    kernels_inside = 0
    for op in loop.body.block.walk():
        if isinstance(op, scf.ForOp) or (isinstance(op, RegionOp) and op.is_loop()):
            return False
        if isinstance(op, KernelOp):
            if _pin(op) not in LOOP_DEVICES:
                return False
            found.add(_dtype(op))
            kernels_inside += 1
        elif isinstance(op, ConstantOp):
            found.add(_dtype(op))
        elif not isinstance(op, RegionOp | YieldOp | scf.YieldOp):
            return False
    return 0 < kernels_inside <= MOST_OPS and len(found) == 1 and trip_count(loop) > 0


class FuseLoop(RewritePattern):
    """Wraps a whole loop that fits in a region of its own, with copies of its bounds
    inside. A loop already alone in a region is left as it is."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, scf.ForOp) or isinstance(op.parent_op(), RegionOp):
            return
        if not _loop_fits(op):
            return
        copies: list[Operation] = []
        for index, bound in enumerate((op.lb, op.ub, op.step)):
            owner = bound.owner
            assert isinstance(owner, arith.ConstantOp)
            copy = rewriter.insert(owner.clone(), InsertPoint.before(op))
            op.operands[index] = copy.result
            copies.append(copy)
            if not owner.result.uses:
                rewriter.erase(owner)
        rewriter.notify_op_modified(op)
        _wrap([*copies, op], rewriter)


def fuse_regions(module: ModuleOp) -> None:
    """Groups the module's fusable chains, then its whole loops, into regions (in place):
    `FuseChain` and then `FuseLoop`, each applied once by xDSL's rewriter. A loop's
    chains are fused before the loop is wrapped, inner loops before outer ones (an
    outer loop holding a loop does not fit either way)."""
    chains = chains_of(module)
    _apply(FuseChain(chains), list(chains))
    _apply(FuseLoop(), [op for op in module.walk(region_first=True) if isinstance(op, scf.ForOp)])


def _apply(pattern: RewritePattern, ops: list[Operation]) -> None:
    """The pattern, applied by xDSL's rewriter at each of `ops` in turn: the ops it is
    about, found first (a `PatternRewriteWalker` visits every op of the module, 7 ms of
    the 48 a program of 1,000 statements took to fuse)."""
    for op in ops:
        pattern.match_and_rewrite(op, PatternRewriter(op))


@dataclass(frozen=True)
class FuseRegions(ModulePass):
    """Groups fusable chains of kernel ops, and whole loops, into `kernel.region` ops."""

    name = "fuse-regions"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fuse_regions(op)
