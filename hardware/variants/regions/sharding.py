"""How a region splits over a mesh of devices, and what the split communicates.

A sharded region (`jax.sharded`, `sharded_region`) splits its large values by rows over
a one-axis mesh of `devices` devices and keeps its small ones whole (replicated on
every device). This module decides the split without JAX, from the spec alone, and
counts what XLA's SPMD partitioner must move for it, one execution (one trip of a
loop) at a time:

- an element-wise op, a dot, a sum or a norm of split operands moves nothing but the
  reduction's scalar (an all-reduce);
- `conv2d` of a split field with a whole stencil exchanges a halo: r rows up and r rows
  down for a (2r+1)-row kernel (two collective-permutes of r·w elements);
- `matvec`/`matmul` of a split matrix by a split vector or matrix gathers the second
  operand whole (an all-gather); by a whole one moves nothing; a whole matrix by a
  split operand sums partial products (an all-reduce of the result);
- `transpose` of a split value is split by columns (free); a product of such a matrix
  by a split operand sums partial products (an all-reduce of the result), anything
  else gathers it whole;
- a loop whose carried value comes back whole where it went in split re-splits it
  (a slice: free), and split where it went in whole gathers it (an all-gather).

These are the collectives the partitioner inserts for such programs; the bytes are
each collective's result on one device. `benchmarks/sharding.py` compares them with
the collectives in XLA's compiled HLO.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from annc.dsl import dtypes, kernels
from annc.hardware.variants.regions.spec import RegionSpec, Shape, Summary, summary

ROWS, COLUMNS, WHOLE = "rows", "columns", "whole"
"""A value split by its first axis over the mesh, by its second (a transposed split
value), or replicated on every device."""

MIN_SHARD_ELEMENTS = 128
"""An input is split only where every device gets at least this many elements: smaller
values cost more to split (a collective's latency) than to replicate."""

COLLECTIVES = ("all-reduce", "all-gather", "collective-permute", "all-to-all")
"""The collectives a sharded region's communication is made of (XLA's names)."""


@dataclass(frozen=True)
class Collective:
    """One collective of one execution: its kind, its bytes on one device, why."""

    kind: str
    bytes: int
    why: str


@dataclass(frozen=True)
class Layout:
    """A region's split over `devices` devices: every value's, and the collectives."""

    devices: int
    values: tuple[str, ...]
    """How every value of the spec is split, by number: ROWS, COLUMNS or WHOLE (on
    a grid, `grid.GRID`, `grid.GRID_T` or WHOLE)."""
    collectives: tuple[Collective, ...]
    grid: tuple[int, int] | None = None
    """The r × c grid the devices form (`grid.grid_layout`); None: one axis, by rows."""

    def describe(self) -> str:
        return "by rows" if self.grid is None else f"as a {self.grid[0]}×{self.grid[1]} grid"

    def inputs(self, spec: RegionSpec) -> tuple[str, ...]:
        return self.values[: len(spec.inputs)]

    def outputs(self, spec: RegionSpec) -> tuple[str, ...]:
        if spec.is_loop:  # a loop's outputs keep their carried inputs' split
            return self.values[: spec.carried]
        return tuple(self.values[v] for v in spec.outputs)

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.collectives)

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """(count, bytes) of every kind of collective in one execution."""
        totals: dict[str, tuple[int, int]] = {}
        for c in self.collectives:
            count, size = totals.get(c.kind, (0, 0))
            totals[c.kind] = (count + 1, size + c.bytes)
        return totals


def _splittable(shape: Shape, devices: int) -> bool:
    return (len(shape) >= 1 and shape[0] % devices == 0
            and math.prod(shape) >= MIN_SHARD_ELEMENTS * devices)


def layout(spec: RegionSpec, devices: int) -> Layout | str:
    """The region's split over `devices` devices, or why it has none worth running: no
    value large enough to split, or a kernel without a rule here."""
    if devices < 2:
        return "a sharded region needs a mesh of at least 2 devices"
    shapes = spec.shapes()
    item = dtypes.itemsize(spec.dtype)
    known = {number for number, _ in spec.constants}
    values = [ROWS if number not in known and _splittable(shape, devices) else WHOLE
              for number, shape in enumerate(spec.inputs)]
    if ROWS not in values:
        return (f"no input splits into {devices} equal row blocks of at least "
                f"{MIN_SHARD_ELEMENTS} elements")
    moved: list[Collective] = []
    for index, op in enumerate(spec.ops):
        operands = [values[v] for v in op.operands]
        columns = op.kernel not in ("matvec", "matmul")
        for position, v in enumerate(op.operands):
            if values[v] == COLUMNS and (columns or position > 0):
                moved.append(Collective("all-gather", item * math.prod(shapes[v]),
                                        f"{op.kernel} gathers a transposed split value"))
                operands[position] = WHOLE
        result = _op(op.kernel, operands,
                     spec.operand_shapes(index), shapes[len(spec.inputs) + index],
                     devices, item, moved)
        if result is None:
            return f"{op.kernel} has no sharding rule"
        values.append(result)
    if spec.is_loop:
        for number, value in enumerate(spec.outputs):
            if values[number] != values[value] and values[value] != WHOLE:
                moved.append(Collective("all-gather", item * math.prod(shapes[value]),
                                        "a carried value gathered for the next trip"))
    return Layout(devices, tuple(values), tuple(moved))


def _op(kernel: str, split: list[str], shapes: tuple[Shape, ...], result: Shape,
        devices: int, item: int, moved: list[Collective]) -> str | None:
    """The split of one op's result; appends the collectives it needs."""
    size = math.prod(result)
    kind = kernels.kernel(kernel).kind
    if kind == "elementwise":
        for s, shape in zip(split, shapes, strict=True):
            if s == ROWS and shape != result:  # broadcast against a larger value
                moved.append(Collective("all-gather", item * math.prod(shape),
                                        f"{kernel} broadcasts a split operand"))
        same = any(s == ROWS and shape == result for s, shape in zip(split, shapes, strict=True))
        return ROWS if same else WHOLE
    if kind == "reduction":
        if ROWS in split:
            moved.append(Collective("all-reduce", item * max(size, 1),
                                    f"{kernel} sums the devices' partial results"))
        return WHOLE
    if kernel == "conv2d":
        image, weights = split
        if weights == ROWS:
            return None
        if image == WHOLE:
            return WHOLE
        halo = (shapes[1][0] - 1) // 2
        for direction in ("up", "down"):
            if halo:
                moved.append(Collective("collective-permute", item * halo * shapes[0][1],
                                        f"conv2d's halo of {halo} row(s) {direction}"))
        return ROWS
    if kernel in ("matvec", "matmul"):
        matrix, other = split
        if matrix == ROWS:
            if other == ROWS:
                moved.append(Collective("all-gather", item * math.prod(shapes[1]),
                                        f"{kernel} gathers its split right operand"))
            if _splittable(result, devices):
                return ROWS
            moved.append(Collective("all-gather", item * size,
                                    f"{kernel} gathers its result, too small to split"))
            return WHOLE
        if other == ROWS:  # a whole or column-split matrix: partial products
            moved.append(Collective("all-reduce", item * size,
                                    f"{kernel} sums partial products"))
        return WHOLE
    if kernel == "transpose":
        return COLUMNS if split[0] == ROWS else WHOLE
    return None


def shard_summary(spec: RegionSpec, split: Layout) -> Summary:
    """What the region models see of the region one device runs: the spec with its
    split inputs cut to one device's rows, where that is a consistent region; else
    (a split value meets a whole one of the same full shape, which each device
    slices) the whole region's summary with its sizes and work divided by the devices.
    A region with a matrix product has the divided summary whatever its split: a
    device's block of a product reads whole block rows or columns, which no cut of
    the inputs describes, and its work is one device's share in every layout."""
    devices = split.devices
    cut = tuple((s[0] // devices, *s[1:]) if v == ROWS else s
                for s, v in zip(spec.inputs, split.inputs(spec), strict=True))
    if not any(op.kernel in ("matmul", "matvec") for op in spec.ops):
        try:
            return summary(dataclasses.replace(spec, inputs=cut))
        except (kernels.ShapeMismatch, ValueError):
            pass
    whole = summary(spec)
    return dataclasses.replace(
        whole, elements=max(whole.elements // devices, 1),
        bytes_once=whole.bytes_once // devices, bytes_per_op=whole.bytes_per_op // devices,
        complexity=max(whole.complexity // devices, 1))


def why_not_halo(spec: RegionSpec, split: Layout) -> str | None:
    """Why the halo exchange cannot run a split conv2d: a kernel taller than a block."""
    for index, op in enumerate(spec.ops):
        if op.kernel == "conv2d" and split.values[op.operands[0]] == ROWS:
            (h, _), (p, _) = spec.operand_shapes(index)
            if (p - 1) // 2 > h // split.devices:
                return (f"conv2d's halo of {(p - 1) // 2} rows is taller than a device's "
                        f"{h // split.devices}")
    return None
