"""annc's own CPU schedules for the Halide algorithms, one named function per schedule.

Every schedule is made for the exact shapes being compiled, so tile sizes never exceed
an extent: a tile is the wanted size rounded down to a whole number of vector lanes, or
the whole extent when that is smaller than one vector. Output Funcs split with
`ShiftInwards` (valid whenever the factor is at most the extent); reductions split
with `GuardWithIf`. Work too small to pay for a thread hand-off stays serial.
"""

from __future__ import annotations

import math
import os

import halide as hl

from annc.hardware.variants.halide.algorithms import Definition

Shape = tuple[int, ...]

SHIFT = hl.TailStrategy.ShiftInwards
GUARD = hl.TailStrategy.GuardWithIf
PARALLEL_MIN_WORK = 1 << 15
"""Below this many multiply-adds (or elements) a kernel runs on one thread."""


def lanes(definition: Definition, target: hl.Target) -> int:
    """The natural vector width of the kernel's element type on the target."""
    return target.natural_vector_size(definition.inputs[0].type())


def tile(extent: int, wanted: int, lane: int) -> int:
    """A tile size ≤ extent: `wanted` rounded down to whole lanes, or all of a short extent."""
    if extent <= lane:
        return extent
    return max(lane, min(wanted, extent) // lane * lane)


def matmul_tiled(definition: Definition, shapes: tuple[Shape, ...], target: hl.Target) -> None:
    """Register-blocked tiles of the output, each accumulated in a vectorised update.

    The output is cut into tiles of two vectors by about 32 rows, fused and spread over
    the cores; within a tile, strips of rows are accumulated by the `product` update
    (computed at the strip), whose reduction over k is split by two and unrolled. The
    strip is as tall as the vector registers allow: 2×8 accumulators with AVX-512's 32
    registers, 2×6 with AVX2's 16.
    """
    (m, k), (_, n) = shapes
    x, y = definition.vars
    out, product = definition.output, definition.stages["product"]
    reduce = definition.reduction
    assert reduce is not None
    vec = min(lanes(definition, target), n)
    strip = 8 if target.has_feature(hl.TargetFeature.AVX512) else 6
    tx, rows = tile(n, 2 * vec, vec), min(strip, m)
    ty = tile(m, 32, rows)
    xo, yo, xi, yi, yii, tiles = (hl.Var(name) for name in ("xo", "yo", "xi", "yi", "yii", "t"))
    out.tile(x, y, xo, yo, xi, yi, tx, ty, SHIFT).split(yi, yi, yii, rows, SHIFT)
    out.vectorize(xi, vec, SHIFT).unroll(yii)
    if m * n * k >= PARALLEL_MIN_WORK:
        out.fuse(xo, yo, tiles).parallel(tiles)
    ko, ki = hl.RVar("ko"), hl.RVar("ki")
    product.compute_at(out, yi).vectorize(x, vec, GUARD).unroll(y)
    (
        product.update()
        .reorder(x, y, reduce.x)
        .vectorize(x, vec, GUARD)
        .unroll(x)
        .unroll(y)
        .split(reduce.x, ko, ki, min(2, k), GUARD)
        .unroll(ki)
    )


def matvec_tiled(definition: Definition, shapes: tuple[Shape, ...], target: hl.Target) -> None:
    """Rows in parallel blocks; each row's dot product in four vectors of partial sums.

    The reduction over a row is split into lanes and `rfactor`ed, so the lanes
    accumulate side by side in vector registers and are added once at the end.
    """
    (m, n), _ = shapes
    (x,) = definition.vars
    out, product = definition.output, definition.stages["product"]
    reduce = definition.reduction
    assert reduce is not None
    width = min(4 * lanes(definition, target), n)
    ko, ki, u = hl.RVar("ko"), hl.RVar("ki"), hl.Var("u")
    product.update().split(reduce.x, ko, ki, width, GUARD)
    partial = product.update().rfactor(ki, u)
    if m * n >= PARALLEL_MIN_WORK:
        xo, xi = hl.Var("xo"), hl.Var("xi")
        out.split(x, xo, xi, tile(m, 16, 1), SHIFT).parallel(xo)
        product.compute_at(out, xi)
    else:
        product.compute_at(out, x)
    partial.compute_at(product, x).vectorize(u).update().vectorize(u)


def conv2d_direct(definition: Definition, shapes: tuple[Shape, ...], target: hl.Target) -> None:
    """Direct convolution in register tiles, rows of tiles in parallel.

    The zero-padded image is materialised per strip of rows, so the inner loop loads
    without bounds checks; each tile of two vectors by four rows is accumulated over
    all taps with its accumulators in registers.
    """
    (h, w), (p, q) = shapes
    x, y = definition.vars
    out, conv, padded = (definition.output, definition.stages["product"],
                         definition.stages["padded"])
    taps = definition.reduction
    assert taps is not None
    vec = min(lanes(definition, target), w)
    tx, rows = tile(w, 2 * vec, vec), min(4, h)
    strip = tile(h, 16, rows)
    xo, yo, xi, yi, yii = (hl.Var(name) for name in ("xo", "yo", "xi", "yi", "yii"))
    out.split(y, yo, yi, strip, SHIFT).split(x, xo, xi, tx, SHIFT)
    out.split(yi, yi, yii, rows, SHIFT).reorder(xi, yii, yi, xo, yo)
    out.vectorize(xi, vec, SHIFT).unroll(yii)
    if h * w * p * q >= PARALLEL_MIN_WORK:
        out.parallel(yo)
    padded.compute_at(out, yo).vectorize(padded.args()[0], vec)
    conv.compute_at(out, yi).vectorize(x, vec, GUARD).unroll(y)
    (
        conv.update()
        .reorder(x, y, taps.x, taps.y)
        .vectorize(x, vec, GUARD)
        .unroll(x)
        .unroll(y)
    )


def transpose_tiled(definition: Definition, shapes: tuple[Shape, ...], target: hl.Target) -> None:
    """Cache-sized blocks in parallel, each written as square vector-by-vector tiles."""
    ((m, n),) = shapes
    x, y = definition.vars
    out = definition.output
    vec = lanes(definition, target)
    bx, by = tile(m, vec, vec), tile(n, vec, vec)
    xo, yo, xi, yi, blocks = (hl.Var(name) for name in ("xo", "yo", "xi", "yi", "b"))
    out.tile(x, y, xo, yo, xi, yi, tile(m, 64, bx), tile(n, 64, by), SHIFT)
    xii, yii = hl.Var("xii"), hl.Var("yii")
    out.tile(xi, yi, xii, yii, bx, by, SHIFT).vectorize(xii).unroll(yii)
    if m * n >= PARALLEL_MIN_WORK:
        out.fuse(xo, yo, blocks).parallel(blocks)


def reduction_vectorised(
    definition: Definition, shapes: tuple[Shape, ...], target: hl.Target
) -> None:
    """Partial sums in four vectors of lanes; large inputs first cut into parallel chunks."""
    n = math.prod(shapes[0])
    total = definition.stages["total"]
    reduce = definition.reduction
    assert reduce is not None
    width = max(1, min(4 * lanes(definition, target), n))
    u = hl.Var("u")
    if n >= 4 * PARALLEL_MIN_WORK:
        chunks = 4 * (os.cpu_count() or 1)
        size = math.ceil(n / chunks / width) * width
        co, ci, c = hl.RVar("co"), hl.RVar("ci"), hl.Var("c")
        total.update().split(reduce.x, co, ci, size, GUARD)
        per_chunk = total.update().rfactor(co, c)
        per_chunk.compute_root().update().parallel(c)
        cio, cii = hl.RVar("cio"), hl.RVar("cii")
        per_chunk.update().split(ci, cio, cii, width, GUARD)
        per_lane = per_chunk.update().rfactor(cii, u)
        per_lane.compute_at(per_chunk, c).vectorize(u).update().vectorize(u)
        return
    io, ii = hl.RVar("io"), hl.RVar("ii")
    total.update().split(reduce.x, io, ii, width, GUARD)
    per_lane = total.update().rfactor(ii, u)
    per_lane.compute_root().vectorize(u).update().vectorize(u)


def elementwise_vectorised(
    definition: Definition, shapes: tuple[Shape, ...], target: hl.Target
) -> None:
    """Flat (1-D) element-wise kernels: whole vectors, in parallel blocks when large."""
    if not definition.vars:
        return
    (x,) = definition.vars
    n = max(math.prod(shape) for shape in shapes)
    vec = lanes(definition, target)
    if n >= 4 * PARALLEL_MIN_WORK:
        xo, xi = hl.Var("xo"), hl.Var("xi")
        block = tile(n, math.ceil(n / (8 * (os.cpu_count() or 1))), vec)
        definition.output.split(x, xo, xi, block, SHIFT).parallel(xo)
        x = xi
    if n >= vec:
        definition.output.vectorize(x, vec, SHIFT)
