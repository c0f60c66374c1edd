"""What a region computes, as the backends see it: a small data-flow graph of kernels.

Values are numbered: the region's inputs are 0 … n−1, and the result of its i-th
op is n + i. A region runs once, or, with `trips`, is a loop: at every trip the
first `carried` inputs hold the loop-carried values, the ops run, and the values
named by `outputs` become the next trip's carried values (so `len(outputs) ==
carried`); after the last trip the region returns them. The other inputs are
loop-invariant. A loop of 0 trips returns its carried inputs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

from annc.dsl import dtypes, kernels
from annc.dsl.records import Query

Shape = tuple[int, ...]

ELEMENTWISE_COST = {"exp": 10, "sqrt": 4, "div": 4}
"""Vector instructions per element of an element-wise kernel (1 where unnamed): an
exponential is a polynomial of about ten multiply-adds, a square root or a division
is a few times the throughput cost of a multiply. Fused, a chain is bound by this
work, not by memory, so a region's complexity counts it."""


@dataclass(frozen=True)
class RegionOp:
    """One kernel call: its kernel's name and the numbers of its operand values."""

    kernel: str
    operands: tuple[int, ...]


@dataclass(frozen=True)
class RegionSpec:
    inputs: tuple[Shape, ...]
    dtype: str
    """`f32` or `f64`: every value of a region has this dtype."""
    ops: tuple[RegionOp, ...]
    outputs: tuple[int, ...]
    trips: int | None = None
    """None: the ops run once; else a loop of this many trips."""
    carried: int = 0
    """For a loop: how many leading inputs are loop-carried."""
    constants: tuple[tuple[int, tuple[float, ...]], ...] = ()
    """Inputs whose values are known when the region is compiled (the program's small
    constants: a stencil, a coefficient), as (input number, values in C order). The
    region is still called with them; a builder may fold them into its code."""

    def __post_init__(self) -> None:
        if self.dtype not in dtypes.DTYPES:
            raise ValueError(f"a region's dtype is f32 or f64, not {self.dtype!r}")
        for index, op in enumerate(self.ops):
            if any(not 0 <= v < len(self.inputs) + index for v in op.operands):
                raise ValueError(f"{op.kernel} reads a value not defined before it")
        shapes = self._value_shapes
        for number, values in self.constants:
            if not self.carried <= number < len(self.inputs) or len(values) != math.prod(
                    self.inputs[number]):
                raise ValueError("a constant must be a loop-invariant input, all its values")
        if any(not 0 <= v < len(shapes) for v in self.outputs):
            raise ValueError("an output names a value the region does not define")
        if self.trips is not None:
            if self.trips < 0:
                raise ValueError("a loop runs a non-negative number of trips")
            if len(self.outputs) != self.carried:
                raise ValueError("a loop yields one value per carried input")
            if any(shapes[o] != self.inputs[i] for i, o in enumerate(self.outputs)):
                raise ValueError("a loop yields values of its carried inputs' shapes")

    @property
    def is_loop(self) -> bool:
        return self.trips is not None

    @functools.cached_property
    def _value_shapes(self) -> tuple[Shape, ...]:
        """The shape of every value, by number, worked out once."""
        shapes = list(self.inputs)
        for op in self.ops:
            shapes.append(kernels.result_shape(op.kernel, tuple(shapes[v] for v in op.operands)))
        return tuple(shapes)

    def shapes(self) -> list[Shape]:
        """The shape of every value, by number."""
        return list(self._value_shapes)

    def operand_shapes(self, index: int) -> tuple[Shape, ...]:
        """The operand shapes of op `index`."""
        return tuple(self._value_shapes[v] for v in self.ops[index].operands)

    def output_shapes(self) -> tuple[Shape, ...]:
        return tuple(self._value_shapes[v] for v in self.outputs)

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON values, for another process or a cache key; `from_json`
        gives back an equal spec. A constant's values are JSON numbers, which Python
        writes in the shortest form that reads back to the same float (−0.0 included);
        non-finite ones, which strict JSON has no number for, are the strings "nan",
        "inf" and "-inf"."""
        return {"inputs": [list(shape) for shape in self.inputs], "dtype": self.dtype,
                "ops": [[op.kernel, list(op.operands)] for op in self.ops],
                "outputs": list(self.outputs), "trips": self.trips, "carried": self.carried,
                "constants": [[number, [_json_float(v) for v in values]]
                              for number, values in self.constants]}

    @staticmethod
    def from_json(data: Any) -> RegionSpec:
        """The spec `to_json` wrote; ValueError where `data` is not one (the spec's own
        checks included)."""
        try:
            trips = data["trips"]
            return RegionSpec(
                inputs=tuple(tuple(_integer(d) for d in shape) for shape in data["inputs"]),
                dtype=str(data["dtype"]),
                ops=tuple(RegionOp(str(kernel), tuple(_integer(v) for v in operands))
                          for kernel, operands in data["ops"]),
                outputs=tuple(_integer(v) for v in data["outputs"]),
                trips=None if trips is None else _integer(trips),
                carried=_integer(data["carried"]),
                constants=tuple((_integer(number), tuple(float(v) for v in values))
                                for number, values in data["constants"]))
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a region spec: {error!r}") from None


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _integer(value: Any) -> int:
    """An int of the JSON form (not a bool, a float or a string that looks like one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a region spec: {value!r} is not an integer")
    return value


LOOP_KEY_TRIPS = 0
"""The trips of every loop's `compiled_form`."""
MAX_CALL_TRIPS = 2**31 - 1
"""The most trips one call of a compiled loop runs: its compiled function takes its trip
count as a 32-bit integer (`jax_region.TRIPS_DTYPE`). A plan runs a loop of more trips
(up to 2⁶³ − 1, the language's limit) as several calls."""


def compiled_form(spec: RegionSpec) -> RegionSpec:
    """The spec a build is made and kept for. A whole loop's compiled function takes its
    trip count when it is called (`jax_region.build_jax`), so loops that differ only in
    their trips share one build: theirs is replaced by `LOOP_KEY_TRIPS`. That is sound
    because a loop's checks read its trips only for their sign: the replaced spec is
    valid exactly when the spec is, and still a loop. A fused chain is its own form."""
    if not spec.is_loop:
        return spec
    return dataclasses.replace(spec, trips=LOOP_KEY_TRIPS)


@dataclass(frozen=True)
class Summary:
    """What the region models see of a region (one trip of a loop): its largest value's
    element count, its op count, the bytes its inputs and outputs occupy (what a fused
    version moves once), the bytes every op reads and writes (what the op-by-op
    version moves; an input no op reads is not moved), the sum of its ops' textbook
    complexities (element-wise ones weighted by `ELEMENTWISE_COST`; a stencil, a known
    constant kernel of at most `STENCIL_TAPS` taps, counted by its nonzero taps, the
    work JAX's shifted sum does with it; a larger kernel runs as an FFT or a direct sum
    over every tap), and a loop's trips."""

    elements: int
    ops: int
    bytes_once: int
    bytes_per_op: int
    complexity: int
    trips: int | None = None
    """A loop's trips (its per-trip time includes a share of the call's fixed cost)."""

    def as_shapes(self) -> tuple[tuple[int, ...]]:
        """The summary as the one "shape" a measurement row of a region stores (a loop's
        ends with its trips)."""
        fields = (self.elements, self.ops, self.bytes_once, self.bytes_per_op, self.complexity)
        return (fields if self.trips is None else (*fields, self.trips),)

    @staticmethod
    def from_shapes(shapes: tuple[tuple[int, ...], ...]) -> Summary:
        return Summary(*shapes[0])

    def query(self, kind: str, dtype: str) -> Query:
        """What a region model (`kind`: `region.<class>` or `loop.<class>`) is asked about a
        region of this summary: the summary as its shapes, its summed complexity as the
        augmentation. The one place a region's query is built."""
        return Query(kind, self.as_shapes(), dtype, float(self.complexity))


def summary(spec: RegionSpec) -> Summary:
    shapes = spec.shapes()
    item = dtypes.itemsize(spec.dtype)
    size = [math.prod(s) for s in shapes]
    read = {v for op in spec.ops for v in op.operands} | set(spec.outputs)
    bytes_once = item * (sum(size[v] for v in range(len(spec.inputs)) if v in read)
                         + sum(size[v] for v in set(spec.outputs)))
    per_op = 0
    complexity = 0
    known = dict(spec.constants)
    for index, op in enumerate(spec.ops):
        operands = tuple(shapes[v] for v in op.operands)
        per_op += item * (sum(size[v] for v in op.operands) + size[len(spec.inputs) + index])
        weight = ELEMENTWISE_COST.get(op.kernel, 1)
        work = int(kernels.kernel(op.kernel).complexity(operands))
        if (op.kernel == "conv2d" and op.operands[1] in known
                and len(known[op.operands[1]]) <= STENCIL_TAPS):  # a folded stencil's taps
            taps = sum(1 for value in known[op.operands[1]] if value != 0.0)
            work = math.prod(operands[0]) * max(taps, 1)
        complexity += weight * work
    return Summary(max(size), len(spec.ops), bytes_once, per_op, max(complexity, 1),
                   spec.trips)


HEAVY_ORDER = ("matmul", "conv2d", "stencil", "matvec", "transpose", "reduction")
"""The classes of region, heaviest first: the work that dominates a region's time."""

STENCIL_TAPS = 49
"""A convolution kernel of at most this many taps (7×7) is a stencil: compiled regions
run it as a sum of shifted slices, a larger one as an FFT (`jax_region`)."""


def region_class(spec: RegionSpec) -> str:
    """The heaviest kind of op in the region: `matmul`, `conv2d` (a kernel larger than
    a stencil), `stencil`, `matvec`, `transpose`, `reduction` (dot, sum, norm) or, with
    none of those, `elementwise`. Regions of one class are alike enough for one model;
    across classes the time per complexity differs by orders of magnitude, or the
    algorithm does (a stencil's shifted sums against a large kernel's FFT)."""
    present = set()
    shapes = spec.shapes()
    for op in spec.ops:
        kind = kernels.kernel(op.kernel).kind
        if op.kernel == "conv2d":
            taps = math.prod(shapes[op.operands[1]])
            present.add("stencil" if taps <= STENCIL_TAPS else "conv2d")
        else:
            present.add("reduction" if kind == "reduction" else op.kernel)
    return next((name for name in HEAVY_ORDER if name in present), "elementwise")
