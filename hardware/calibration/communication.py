"""The communication model of a mesh: what a collective costs, measured and fitted.

A collective's time is modelled as latency + bytes × seconds per byte, one line per
kind of collective (XLA's all-reduce, all-gather, collective-permute, all-to-all),
the bytes being its result on one device. `annc calibrate --communication` measures
each kind on the mesh this process finds, at sizes from 8 bytes to 4 MiB
(`measure_collectives`, each a `jax.shard_map` of the one `jax.lax` collective,
median of repeats after a warm-up, less the same call without it), into the
store's `communication` table; `communication_model` fits the lines from
there. Uncalibrated, a mesh gets
`UNCALIBRATED`, a guess that says so in `explain`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from annc.dsl.errors import StoreError
from annc.hardware.calibration.store import CommunicationRow, MeasurementStore
from annc.hardware.devices.mesh import AXIS, MeshInfo
from annc.hardware.variants.regions.sharding import COLLECTIVES, Collective

Line = tuple[float, float]
"""(latency in seconds, seconds per byte) of one kind of collective."""

UNCALIBRATED: dict[str, Line] = {kind: (20e-6, 1 / 2e9) for kind in COLLECTIVES}
"""Where no collective was measured: 20 µs and 2 GB/s a collective, about what this
project's 2-core machine measured for 8 simulated CPU devices (2026-12-08); a GPU
node's NVLink is some 100x faster per byte, a network between hosts slower."""

SIZES = (8, 8 * 1024, 128 * 1024, 1024 * 1024, 4 * 1024 * 1024)
"""The result bytes on one device that `measure_collectives` measures each kind at."""


@dataclass(frozen=True)
class CommunicationModel:
    lines: dict[str, Line]
    calibrated: bool
    """Whether the lines were fitted to this mesh's measurements."""

    def seconds(self, collectives: tuple[Collective, ...]) -> float:
        """The predicted time of these collectives, one after the other."""
        return sum(self.lines[c.kind][0] + c.bytes * self.lines[c.kind][1]
                   for c in collectives)


def fit(rows: list[CommunicationRow]) -> dict[str, Line]:
    """A non-negative line through each kind's measurements (least squares; the
    uncalibrated guess for a kind with fewer than two sizes)."""
    lines = dict(UNCALIBRATED)
    for kind in COLLECTIVES:
        points = [(r.bytes, r.median_s) for r in rows if r.collective == kind]
        if len({b for b, _ in points}) < 2:
            continue
        x, y = np.array(points, dtype=float).T
        slope, intercept = np.polyfit(x, y, 1)
        if slope <= 0:
            slope = 0.0
            intercept = float(np.mean(y))
        if intercept < 0:
            slope = float(np.dot(x, y) / np.dot(x, x))
            intercept = 0.0
        lines[kind] = (float(intercept), float(slope))
    return lines


def communication_model(database: Path, fingerprint: str, mesh: MeshInfo) -> CommunicationModel:
    """The mesh's model from the store's measurements of a mesh like it (same kind,
    devices, processes and hosts on this fingerprint); uncalibrated without any (or
    without a readable store)."""
    if not database.is_file():
        return CommunicationModel(dict(UNCALIBRATED), False)
    try:
        with MeasurementStore(database) as store:
            rows = store.communication(fingerprint, mesh.device, mesh.size, mesh.processes,
                                       mesh.hosts)
    except StoreError:
        return CommunicationModel(dict(UNCALIBRATED), False)
    if not rows:
        return CommunicationModel(dict(UNCALIBRATED), False)
    return CommunicationModel(fit(rows), True)


def _collective(kind: str, devices: int) -> Callable[[Any], Any]:
    import jax

    if kind == "all-reduce":
        return lambda block: jax.lax.psum(block, AXIS)
    if kind == "all-gather":
        return lambda block: jax.lax.all_gather(block, AXIS, tiled=True)
    if kind == "collective-permute":
        ring = [(i, (i + 1) % devices) for i in range(devices)]
        return lambda block: jax.lax.ppermute(block, AXIS, ring)
    return lambda block: jax.lax.all_to_all(block, AXIS, 0, 0, tiled=True)


def _times(function: Callable[[Any], Any], data: Any, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls, after two warm-up calls; each waited for."""
    import jax

    for _ in range(2):
        jax.block_until_ready(function(data))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(data))
        times.append(time.perf_counter() - start)
    return times


def measure_collectives(mesh: Any, fingerprint: str, info: MeshInfo, repeats: int = 15,
                        progress: Callable[[str], None] | None = None
                        ) -> list[CommunicationRow]:
    """Every kind of collective at every size of `SIZES`, on the mesh: the median of
    `repeats` calls after two warm-up calls, each waited for, less the median of the
    same call without the collective (the call's dispatch, which a collective inside
    a compiled region does not pay)."""
    import jax
    from jax.sharding import PartitionSpec as P

    devices = info.size
    rows = []
    for kind in COLLECTIVES:
        for size in SIZES:
            elements = max(size // 8, 1)
            block = max(elements // devices, 1) if kind == "all-gather" else elements
            if kind == "all-to-all":
                block = max(block // devices, 1) * devices
            result = block * devices if kind == "all-gather" else block
            out = P() if kind in ("all-reduce", "all-gather") else P(AXIS)
            function = jax.jit(jax.shard_map(_collective(kind, devices), mesh=mesh,
                                             in_specs=P(AXIS), out_specs=out, check_vma=False))
            alone = jax.jit(jax.shard_map(lambda block: block + 1.0, mesh=mesh,
                                          in_specs=P(AXIS), out_specs=P(AXIS)))
            whole = np.ones(block * devices)  # put by every process, its devices' rows each
            data = jax.make_array_from_callback(
                whole.shape, jax.sharding.NamedSharding(mesh, P(AXIS)), whole.__getitem__)
            times, baseline = _times(function, data, repeats), _times(alone, data, repeats)
            median = max(statistics.median(times) - statistics.median(baseline), 0.0)
            spread = (max(times) - min(times)) / statistics.median(times)
            rows.append(CommunicationRow(fingerprint, info.device, devices, info.processes,
                                         info.hosts, kind, result * 8, median, spread,
                                         repeats))
            if progress is not None:
                progress(f"{kind} of {result * 8} bytes: {median * 1e6:.1f} µs")
    return rows
