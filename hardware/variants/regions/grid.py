"""How a region's matrices split over a 2-D grid of devices, and what that moves.

Beside the split by rows (`sharding.layout`), a region whose large inputs are matrices
and whose work is a matrix product or a matrix–vector product has a second layout: the
mesh's devices as an r × c grid (`grid_shape`, axes `rows` and `cols`), every large
matrix split into r × c blocks (`P("rows", "cols")`), vectors and scalars whole. One
execution (one trip of a loop) then moves, as XLA's SPMD partitioner does it (jax
0.10.2, read from the compiled HLO by `benchmarks/sharding.py`):

- `matmul` of two grid matrices gathers A's block row along `cols` (m·k/r elements)
  and B's block column along `rows` (k·n/c), and keeps C split the same way: for
  square n × n matrices n²(1/r + 1/c) a device, against n² by rows (the SUMMA-like
  layout; it pays where 1/r + 1/c < 1 and the bytes outweigh one more latency);
- `matmul` of a grid matrix by a transposed one (`X Xᵀ`) gathers the second along
  `rows` (k·n/c) and sums partial products of m/r × n along `cols` (an all-reduce);
- `matvec` of a grid matrix by a whole vector sums partial products along `cols` (an
  all-reduce of m/r) and leaves the result split along `rows` (`P("rows")`; of a
  transposed one, m/c and `P("cols")`); by such a split vector it first gathers the
  vector whole (an all-gather of n), as a loop does with a carried vector;
- a sum, norm or dot of a grid matrix sums over each axis in turn (two all-reduces),
  of a vector split along one axis over that axis (one);
- element-wise work on values of one split moves nothing; `transpose` swaps the axes.

Anything else (a stencil, a broadcast of a split value, a product of transposed
operands) has no grid rule, and the region keeps the split by rows alone.
"""

from __future__ import annotations

import math

from annc.dsl import dtypes, kernels
from annc.hardware.variants.regions.sharding import (
    MIN_SHARD_ELEMENTS,
    WHOLE,
    Collective,
    Layout,
)
from annc.hardware.variants.regions.spec import RegionSpec, Shape

GRID, GRID_T = "grid", "grid-transposed"
"""A matrix split into the grid's blocks (`P("rows", "cols")`), and the transpose of
one (`P("cols", "rows")`)."""
ALONG_ROWS, ALONG_COLS = "along-rows", "along-cols"
"""A vector split along one axis of the grid, whole along the other (`P("rows")`,
`P("cols")`): a matrix–vector product's result."""

AXES = ("rows", "cols")


def grid_shape(devices: int) -> tuple[int, int] | None:
    """The grid of `devices` devices: r × c with r ≥ c ≥ 2, as square as it divides
    (8 → 4 × 2, 16 → 4 × 4); None where there is none (fewer than 4, or a prime)."""
    for c in range(math.isqrt(devices), 1, -1):
        if devices % c == 0:
            return devices // c, c
    return None


def _splittable(shape: Shape, grid: tuple[int, int]) -> bool:
    r, c = grid
    return (len(shape) == 2 and shape[0] % r == 0 and shape[1] % c == 0
            and math.prod(shape) >= MIN_SHARD_ELEMENTS * r * c)


def grid_layout(spec: RegionSpec, devices: int) -> Layout | str:
    """The region's grid split over `devices` devices, or why it has none."""
    grid = grid_shape(devices)
    if grid is None:
        return f"{devices} devices make no grid of at least 2 × 2"
    if not any(op.kernel in ("matmul", "matvec") for op in spec.ops):
        return "no matrix product to split over a grid"
    item = dtypes.itemsize(spec.dtype)
    known = {number for number, _ in spec.constants}
    values = [GRID if number not in known and _splittable(shape, grid) else WHOLE
              for number, shape in enumerate(spec.inputs)]
    if GRID not in values:
        return f"no input matrix splits into {grid[0]} × {grid[1]} equal blocks"
    trip = _trip(spec, values, grid, item)
    # A loop keeps a carried value in the split it comes back in (XLA gives the
    # loop's state that split), so a trip starts from what the last one left: the
    # splits settle within a few trips (a value only ever goes from whole to split).
    for _ in range(spec.carried + 1):
        if isinstance(trip, str) or not spec.is_loop:
            return trip
        carried = [trip.values[v] for v in spec.outputs]
        if carried == values[: spec.carried]:
            return trip
        for number, split in enumerate(carried):
            if values[number] != WHOLE and split != values[number]:
                return "a carried matrix comes back in another split"
            values[number] = split if split != WHOLE else values[number]
        trip = _trip(spec, values, grid, item)
    return "a carried value changes its split from trip to trip"


def _trip(spec: RegionSpec, inputs: list[str], grid: tuple[int, int],
          item: int) -> Layout | str:
    """Every value's split and the collectives of one trip, from the inputs' splits."""
    shapes = spec.shapes()
    values = list(inputs)
    moved: list[Collective] = []
    for index, op in enumerate(spec.ops):
        operands = [values[v] for v in op.operands]
        result = _op(op.kernel, operands, spec.operand_shapes(index),
                     shapes[len(spec.inputs) + index], grid, item, moved)
        if result is None:
            return f"{op.kernel} of these operands has no grid rule"
        values.append(result)
    return Layout(grid[0] * grid[1], tuple(values), tuple(moved), grid)


def _op(kernel: str, split: list[str], shapes: tuple[Shape, ...], result: Shape,
        grid: tuple[int, int], item: int, moved: list[Collective]) -> str | None:
    """The split of one op's result on the grid; appends the collectives it needs."""
    r, c = grid
    kind = kernels.kernel(kernel).kind
    if kind == "elementwise":
        splits = {s for s, shape in zip(split, shapes, strict=True) if s != WHOLE}
        if not splits:
            return WHOLE
        if len(splits) > 1 or any(s != WHOLE and shape != result
                                  for s, shape in zip(split, shapes, strict=True)):
            return None
        return splits.pop()
    if kind == "reduction":
        axes = (AXES if GRID in split or GRID_T in split else
                ("rows",) if ALONG_ROWS in split else ("cols",) if ALONG_COLS in split else ())
        for axis in axes:
            moved.append(Collective("all-reduce", item * max(math.prod(result), 1),
                                    f"{kernel} sums the partial results along {axis}"))
        return WHOLE
    if kernel == "transpose":
        return {GRID: GRID_T, GRID_T: GRID, WHOLE: WHOLE}.get(split[0])
    if kernel == "matmul":
        (m, k), (_, n) = shapes
        if split == [GRID, GRID]:
            moved.append(Collective("all-gather", item * m * k // r,
                                    "matmul gathers its left operand's block row"))
            moved.append(Collective("all-gather", item * k * n // c,
                                    "matmul gathers its right operand's block column"))
            return GRID
        if split == [GRID, GRID_T]:
            moved.append(Collective("all-gather", item * k * n // c,
                                    "matmul gathers its transposed right operand"))
            moved.append(Collective("all-reduce", item * m * n // r,
                                    "matmul sums partial products"))
            return GRID
        return None if GRID in split or GRID_T in split else WHOLE
    if kernel == "matvec":
        matrix, vector = split
        if matrix not in (GRID, GRID_T):
            return None if vector != WHOLE else WHOLE
        (m, n) = shapes[0]
        if vector != WHOLE:
            moved.append(Collective("all-gather", item * n, "matvec gathers its vector"))
        moved.append(Collective("all-reduce", item * m // (r if matrix == GRID else c),
                                "matvec sums partial products"))
        return ALONG_ROWS if matrix == GRID else ALONG_COLS
    return None
