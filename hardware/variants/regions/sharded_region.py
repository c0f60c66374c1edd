"""A region split over the mesh of this program's devices: `jax.sharded`.

The region's JAX function (`jax_region.region_function`, the same formulation the
one-device `jax` variant compiles) is jitted with `NamedSharding`s: the inputs that
`sharding.layout` splits go by rows over the mesh's axis, the others are replicated,
and XLA's SPMD partitioner inserts the collectives. One op gets help: `conv2d` of a
split field runs under `jax.shard_map`, each device trading its edge rows with its
neighbours by `ppermute` and convolving its block with that halo; left to itself the
partitioner moved 7,986 elements a step for the 512 of a 3×3 stencil's two halo rows
(heat, 256², 8 devices, jax 0.10.2). The devices at the ends receive zeros, which is
the zero boundary of annc's conv2d.

It runs in one process with several devices, or across the processes of a
`jax.distributed` run, where every process calls it alike. Called with whole numpy
inputs it returns whole numpy outputs (gathered into every process). A plan calls
`keep` instead: its outputs stay split over the mesh (`ShardedValue`), and its inputs
may be values kept so (passed on as they are where their split is the one wanted,
else re-split on the devices) or inputs that give their rows on demand (each process
materialises its own devices' rows only), so that values between sharded regions,
and a sharded loop's values from one call to the next, never leave the mesh whole.

`jax.sharded.grid` is the same region over the mesh's devices arranged as a 2-D grid
(`grid.grid_layout`): its large matrices split into blocks, `P("rows", "cols")`, and
the partitioner left to place the products' collectives.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from annc.hardware.devices.mesh import AXIS, process_mesh
from annc.hardware.variants.jax_functions import FUNCTIONS, JaxFunction
from annc.hardware.variants.regions.grid import (
    ALONG_COLS,
    ALONG_ROWS,
    AXES,
    GRID,
    GRID_T,
    grid_layout,
)
from annc.hardware.variants.regions.jax_region import (
    MAX_TRIPS,
    TRIPS_DTYPE,
    conv2d_shifted,
    op_functions,
    region_function,
    variant_name,
)
from annc.hardware.variants.regions.reference import check_inputs, numpy_dtype
from annc.hardware.variants.regions.sharding import (
    COLUMNS,
    ROWS,
    WHOLE,
    Layout,
    layout,
    why_not_halo,
)
from annc.hardware.variants.regions.spec import RegionSpec, Shape


def halo_conv2d(shapes: Sequence[Shape], devices: int, mesh: Any) -> JaxFunction:
    """conv2d of a field split by rows over the mesh: every device receives the r rows
    above and below its block from its neighbours (zeros at the field's edges) and
    convolves the extended block, keeping its own rows."""
    (h, w), (p, q) = shapes
    r = (p - 1) // 2
    block = h // devices
    extended = ((block + 2 * r, w), (p, q))
    name = variant_name("conv2d", extended)
    local = conv2d_shifted(extended) if name == "shifted" else FUNCTIONS[("conv2d", name)](
        extended)
    down = [(i, i + 1) for i in range(devices - 1)]  # device i's last rows go to i + 1
    up = [(i + 1, i) for i in range(devices - 1)]

    def per_device(image: jax.Array, weights: Any) -> jax.Array:
        if r == 0:
            return local(image, weights)
        above = jax.lax.ppermute(image[-r:], AXIS, down)
        below = jax.lax.ppermute(image[:r], AXIS, up)
        return local(jnp.concatenate([above, image, below]), weights)[r : r + block]

    def conv(image: jax.Array, weights: Any) -> jax.Array:
        if isinstance(weights, np.ndarray):  # a known stencil stays a constant
            return jax.shard_map(lambda x: per_device(x, weights), mesh=mesh,
                                 in_specs=P(AXIS), out_specs=P(AXIS))(image)
        return jax.shard_map(per_device, mesh=mesh, in_specs=(P(AXIS), P()),
                             out_specs=P(AXIS))(image, weights)

    return conv


def _functions(spec: RegionSpec, split: Layout, mesh: Any,
               shardings: dict[str, NamedSharding]) -> list[JaxFunction]:
    """Every op's JAX function over the mesh. On a grid every op's result is held to
    the layout's split (`with_sharding_constraint`): left free, the partitioner
    carried a result's split back to its operands (CG's first residual, f − K·0,
    gathered the 16 KB vector it had split), and the layout's bytes are then what
    runs."""
    functions = op_functions(spec)
    for index, op in enumerate(spec.ops):
        if op.kernel == "conv2d" and split.values[op.operands[0]] == ROWS:
            functions[index] = halo_conv2d(spec.operand_shapes(index), split.devices, mesh)
        elif split.grid is not None:
            functions[index] = _held(functions[index], shardings[
                split.values[len(spec.inputs) + index]])
    return functions


def _held(function: JaxFunction, sharding: NamedSharding) -> JaxFunction:
    return lambda *operands: jax.lax.with_sharding_constraint(function(*operands), sharding)


class ByRows(Protocol):
    """An input that gives the part a device holds without the rest
    (`hardware.execution.shard_inputs.RowSource`)."""

    shape: tuple[int, ...]
    placed: dict[Any, Any]
    """Its arrays on the mesh, by sharding, once made."""

    def block(self, index: tuple[slice, ...]) -> np.ndarray: ...

    def whole(self) -> np.ndarray: ...


class ShardedValue:
    """A sharded region's output left on the mesh: its global `jax.Array`, whole on the
    host only when asked (`whole`, gathered into every process)."""

    def __init__(self, array: jax.Array) -> None:
        self.array = array
        self.shape: tuple[int, ...] = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)

    def whole(self) -> np.ndarray:
        return gathered(self.array)

    def describe(self) -> str:
        """Its split, as JAX writes it: `P('devices',)` by rows, `P()` whole on every
        device."""
        return str(getattr(self.array.sharding, "spec", self.array.sharding))

    def rows_by_process(self) -> dict[int, tuple[int, int]] | None:
        """The rows each process holds, where every process holds one block of rows
        and the blocks are disjoint (a value split by rows); else None."""
        if not self.shape:
            return None
        found: dict[int, set[tuple[int, int]]] = {}
        for device, index in self.array.sharding.devices_indices_map(self.shape).items():
            start, stop, _ = index[0].indices(self.shape[0])
            if any(part != slice(None) for part in index[1:]):
                return None
            process: int = getattr(device, "process_index", 0)
            found.setdefault(process, set()).add((start, stop))
        rows = {}
        for process, blocks in found.items():
            ordered = sorted(blocks)
            if any(a[1] != b[0] for a, b in itertools.pairwise(ordered)):
                return None
            rows[process] = (ordered[0][0], ordered[-1][1])
        spans = sorted(rows.values())
        if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
            return None
        return rows

    def local_rows(self) -> np.ndarray:
        """This process's rows (`rows_by_process`), from its own devices' shards."""
        rows = self.rows_by_process()
        assert rows is not None
        start, _ = rows[jax.process_index()]
        shards = {s.index[0].indices(self.shape[0])[0]: s.data
                  for s in self.array.addressable_shards}
        return np.concatenate([np.asarray(shards[k]) for k in sorted(shards)]) if len(
            shards) > 1 else np.asarray(shards[start])


@functools.cache
def _resharding(sharding: NamedSharding) -> Any:
    return jax.jit(lambda x: x, out_shardings=sharding)


def resharded(array: jax.Array, sharding: NamedSharding) -> jax.Array:
    """A value kept on the mesh, moved onto another split by the devices themselves
    (XLA's collectives), never through one host whole."""
    return _resharding(sharding)(array)


class ShardedRegion:
    """The region compiled over the mesh. Called with numpy inputs (whole, the same in
    every process) it returns whole numpy outputs; `keep` leaves them on the mesh;
    `arrays` returns the sharded JAX arrays themselves."""

    def __init__(self, spec: RegionSpec, mesh: Any, grid: bool = False) -> None:
        split = (grid_layout if grid else layout)(spec, int(mesh.devices.size))
        if isinstance(split, str):
            raise ValueError(split)
        halo = why_not_halo(spec, split)
        if halo is not None:
            raise ValueError(halo)
        if split.grid is not None:
            mesh = jax.sharding.Mesh(mesh.devices.reshape(split.grid), AXES)
        self.spec, self.mesh, self.layout = spec, mesh, split
        self.dtype = numpy_dtype(spec)
        whole = NamedSharding(mesh, P())
        named = ({ROWS: P(AXIS), COLUMNS: P(None, AXIS)} if split.grid is None
                 else {GRID: P(*AXES), GRID_T: P(*reversed(AXES)), ALONG_ROWS: P(AXES[0]),
                       ALONG_COLS: P(AXES[1])})
        shardings = {v: NamedSharding(mesh, spec_) for v, spec_ in named.items()}
        shardings[WHOLE] = whole
        self.in_shardings = [shardings[v] for v in split.inputs(spec)]
        self.out_shardings = tuple(shardings[v] for v in split.outputs(spec))
        self.whole = whole
        function = region_function(spec, _functions(spec, split, mesh, shardings))
        in_shardings = ([whole] if spec.is_loop else []) + self.in_shardings
        jitted = jax.jit(function, in_shardings=tuple(in_shardings),
                         out_shardings=self.out_shardings)
        arguments = [jax.ShapeDtypeStruct(shape, self.dtype, sharding=s)
                     for shape, s in zip(spec.inputs, self.in_shardings, strict=True)]
        if spec.is_loop:
            arguments.insert(0, jax.ShapeDtypeStruct((), TRIPS_DTYPE, sharding=whole))
        self.compiled = jitted.lower(*arguments).compile()
        self.processes = jax.process_count()

    def _put(self, value: Any, sharding: NamedSharding) -> jax.Array:
        """An input on the mesh with `sharding`: a kept value as it is (or re-split), an
        input by rows from this process's rows (or whole, where it is replicated), a
        numpy array from the rows of this process's devices."""
        if isinstance(value, ShardedValue):
            if value.array.sharding.is_equivalent_to(sharding, len(value.shape)):
                return value.array
            return resharded(value.array, sharding)
        if hasattr(value, "block"):
            source: ByRows = value
            if sharding not in source.placed:
                source.placed[sharding] = (
                    self._put(np.asarray(source.whole(), self.dtype), sharding)
                    if sharding.is_fully_replicated else jax.make_array_from_callback(
                        source.shape, sharding,
                        lambda index: source.block(tuple(index or (slice(None),)))))
            return source.placed[sharding]
        return self._place(np.asarray(value, self.dtype), sharding)

    def _place(self, array: np.ndarray, sharding: NamedSharding) -> jax.Array:
        if self.processes == 1:
            return jax.device_put(array, sharding)
        return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])

    def keep(self, *inputs: Any, trips: int | None = None) -> list[Any]:
        """Runs the region on numpy arrays, kept values or inputs by rows; its outputs
        stay on the mesh (`ShardedValue`). A loop of no trip returns its carried inputs."""
        if self.spec.is_loop and trips == 0:
            return list(inputs[: self.spec.carried])
        return [ShardedValue(a) for a in self.arrays(*inputs, trips=trips)]

    def arrays(self, *inputs: Any, trips: int | None = None) -> list[jax.Array]:
        """Runs the region; its outputs as sharded JAX arrays."""
        check_inputs(self.spec, list(inputs))
        values = [self._put(a, s) for a, s in zip(inputs, self.in_shardings, strict=True)]
        if self.spec.is_loop:
            count = int(self.spec.trips or 0) if trips is None else int(trips)
            if not 0 <= count <= MAX_TRIPS:
                raise ValueError(f"a loop runs 0 to {MAX_TRIPS} trips, not {count}")
            values.insert(0, self._place(np.asarray(count, TRIPS_DTYPE), self.whole))
        return list(jax.block_until_ready(self.compiled(*values)))

    def __call__(self, *inputs: np.ndarray, trips: int | None = None) -> list[np.ndarray]:
        if self.spec.is_loop and trips == 0:
            return [np.array(a, self.dtype) for a in inputs[: self.spec.carried]]
        return [gathered(a) for a in self.arrays(*inputs, trips=trips)]


def gathered(array: jax.Array) -> np.ndarray:
    """The whole value of a sharded array, in every process. A value split by rows
    into one equal block per process is gathered onto one device of each process:
    JAX's `process_allgather` would put a whole copy on every device of every process
    (4 copies of the field in a process of 4 CPU devices, all in its memory)."""
    if array.is_fully_addressable:
        return np.asarray(array)
    if array.is_fully_replicated:
        return np.asarray(array.addressable_data(0))
    value = ShardedValue(array)
    rows = value.rows_by_process()
    blocks = [rows[p] for p in sorted(rows)] if rows else []
    if not blocks or len({stop - start for start, stop in blocks}) != 1 or any(
            a[1] != b[0] for a, b in itertools.pairwise(blocks)) or blocks[0][0] != 0:
        return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    firsts: dict[int, Any] = {}
    for device in sorted(array.sharding.device_set, key=lambda d: int(getattr(d, "id", 0))):
        firsts.setdefault(getattr(device, "process_index", 0), device)
    mesh = jax.sharding.Mesh(np.array([firsts[p] for p in sorted(firsts)]), ("processes",))
    mine = jax.device_put(value.local_rows(), firsts[jax.process_index()])
    split = jax.make_array_from_single_device_arrays(
        array.shape, NamedSharding(mesh, P("processes")), [mine])
    return np.asarray(resharded(split, NamedSharding(mesh, P())).addressable_data(0))


def build_sharded(spec: RegionSpec, grid: bool = False) -> ShardedRegion:
    """The region compiled over this program's mesh (its devices as a grid, with
    `grid`); ValueError without one, or where the region has no such split
    (`sharding.layout`, `grid.grid_layout`)."""
    mesh = process_mesh()
    if mesh is None:
        raise ValueError("a sharded region needs a mesh of at least 2 devices")
    return ShardedRegion(spec, mesh, grid)


_COLLECTIVE = re.compile(
    r"=\s*(?P<type>\(?[^=]*?\)?)\s+(?P<kind>all-reduce|all-gather|collective-permute|all-to-all)"
    r"(?P<start>-start)?\(")
_ARRAY = re.compile(r"(?P<dtype>[a-z]+\d*)\[(?P<dims>[\d,]*)\]")
_BYTES = {"f64": 8, "f32": 4, "s32": 4, "u32": 4, "pred": 1, "s64": 8, "u64": 8, "f16": 2,
          "bf16": 2}


def hlo_collectives(text: str) -> list[tuple[str, int, bool]]:
    """The collectives in a compiled module's HLO text: (kind, bytes of its result on
    one device, whether it is inside a loop's body). An asynchronous pair counts once,
    at its `-start`, whose result tuple's last array is what it delivers; a combined
    collective (XLA merges an all-reduce of partial products with a reduction's scalar
    into one of a tuple) counts every array of its result."""
    bodies = set(re.findall(r"body=%([\w.\-]+)", text))
    found = []
    inside = False
    for line in text.splitlines():
        if line and not line.startswith(" "):
            name = line.split(" ", 1)[0].lstrip("%")
            inside = name in bodies
            continue
        match = _COLLECTIVE.search(line)
        if match is None:
            continue
        arrays = _ARRAY.findall(match["type"])
        if not arrays:
            continue
        delivered = arrays[-1:] if match["start"] else arrays
        size = sum(_BYTES.get(dtype, 8) * int(np.prod([int(d) for d in dims.split(",") if d]))
                   for dtype, dims in delivered)
        found.append((match["kind"], size, inside))
    return found
