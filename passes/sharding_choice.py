"""The sharded candidate of a region: its split, its prediction, and why.

Where this program has a mesh (several devices of one kind, `hardware.devices.mesh`),
a region whose large values can be split by rows (`sharding.layout`) gets a
`jax.sharded` candidate beside its one-device ones. Its one execution (every trip of a
loop) is predicted as

    trips × (the one-device `jax` model at one device's shard of the region
             + the communication model's time for the trip's collectives)
    + one plan step,

the compute by the same model of (`region` or `loop`, `jax`, device) that predicts
the unsharded `jax` variant, asked about the region each device runs
(`sharding.shard_summary`). The CPU devices of one process share its cores (a host's
simulated devices, `JAX_NUM_CPU_DEVICES`, or a `--distributed` process of several), and
the one-device model already counts them all: there a shard's compute is multiplied by
the devices of a process, so splitting within one host never looks faster than it
can be; GPUs are each their own. The collectives by the mesh's communication model
(`hardware.calibration.communication`, calibrated by `annc calibrate
--communication`). Without a mesh nothing here runs: no candidate, no query.

A region with a matrix product may also split over the mesh's devices arranged as a
2-D grid (`grid.grid_layout`): its candidate is then priced in both layouts, at the
same compute (one device's share of the work is the same in both) and each layout's
collectives, and becomes `jax.sharded.grid` where the grid is predicted cheaper; its
`communication` line gives the other layout's figure.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from xdsl.dialects.builtin import ModuleOp, StringAttr

from annc.dsl.records import Query
from annc.hardware.calibration.communication import CommunicationModel, communication_model
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.devices.home import default_database
from annc.hardware.devices.mesh import MeshInfo
from annc.hardware.variants.regions.catalogue import (
    OPS,
    SHARDED,
    SHARDED_GRID,
    why_not_sharded,
)
from annc.hardware.variants.regions.grid import grid_layout
from annc.hardware.variants.regions.sharding import Layout, layout, shard_summary, why_not_halo
from annc.hardware.variants.regions.spec import RegionSpec
from annc.passes.candidates import Candidate
from annc.predictor.cost_model import CostModel, Prediction


@dataclass
class Sharded:
    """A sharded candidate waiting for its prediction."""

    candidate: Candidate
    split: Layout
    """The layout offered (by rows, or the grid where rows has none); once priced,
    the cheaper of the two."""
    configuration: Query | None
    """What the one-device model is asked: the region one device runs; None where the
    candidate cannot run (nothing to ask)."""
    layouts: list[Layout] = field(default_factory=list)
    """Every layout the region has on the mesh: by rows, as a grid, or both."""


@functools.cache
def _model(mesh: MeshInfo, machine: str) -> CommunicationModel:
    return communication_model(default_database(), machine or fingerprint().id, mesh)


def offer_sharded(kind: str, spec: RegionSpec, placed: set[str | None], mesh: MeshInfo,
                  refused: str | None = None) -> Sharded:
    """The region's sharded candidate on the mesh, with the reason where it cannot run
    (`refused`: a reason found by the caller, such as a back end left out)."""
    candidate = Candidate(SHARDED, mesh.device, None, 0.0, math.inf)
    split = layout(spec, mesh.size)
    grid = grid_layout(spec, mesh.size)
    layouts = [s for s in (split, grid) if not isinstance(s, str)]
    none = split if isinstance(split, str) else ""
    why = refused or (none if not layouts else why_not_halo(spec, layouts[0]))
    if not why and placed != {mesh.device}:
        why = f"its ops were placed on {', '.join(sorted(map(str, placed)))}, not {mesh.device}"
    candidate.why_not = why or ""
    if not layouts or why:
        return Sharded(candidate, Layout(mesh.size, (), ()), None)
    if isinstance(split, str):
        candidate.variant = SHARDED_GRID
    return Sharded(candidate, layouts[0], shard_summary(spec, layouts[0]).query(kind, spec.dtype),
                   layouts)


def price_sharded(offer: Sharded, trips: int | None, p: Prediction, models: CostModel,
                  mesh: MeshInfo, machine: str,
                  communication: CommunicationModel | None = None) -> None:
    """The candidate's prediction of one execution: compute and communication (by the
    mesh's calibrated model, or `communication` where given: another machine's)."""
    candidate = offer.candidate
    if math.isnan(p.seconds):
        candidate.why_not = "no model of the jax region variant on this machine"
        return
    per = trips if trips is not None else 1
    comm = communication if communication is not None else _model(mesh, machine)
    talks = [(comm.seconds(s.collectives), s) for s in offer.layouts or [offer.split]]
    talk, offer.split = min(talks, key=lambda pair: pair[0])
    candidate.variant = SHARDED if offer.split.grid is None else SHARDED_GRID
    step = models.step_overhead_s
    share = mesh.local if mesh.device == "cpu" else 1
    compute, low, high = p.seconds * share, p.low_s * share, p.high_s * share
    candidate.compute_s = compute * per
    candidate.communication_s = talk * per
    candidate.predicted_s = (compute + talk) * per + step
    candidate.low_s = (low + talk) * per + step
    candidate.high_s = (high + talk) * per + step
    kinds = offer.split.by_kind()
    moved = ", ".join(f"{count} {kind} ({_bytes(size)})" for kind, (count, size) in
                      kinds.items()) or "nothing"
    other = "".join(f"; {s.describe()} {_seconds(t)} communication" for t, s in talks
                    if s is not offer.split)
    state = "calibrated" if comm.calibrated else "uncalibrated (annc calibrate --communication)"
    candidate.communication = (f"{mesh.describe()} {offer.split.describe()}: per trip "
                               f"{moved}{other}; communication model {state}")


def _seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-6:.3g} µs"


def _bytes(size: int) -> str:
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


def force_sharded(module: ModuleOp, grid: bool = False) -> int:
    """Has every region that can be split over the mesh run as `jax.sharded`, whatever
    its prediction (outermost first; a region inside a forced one runs inside it), and
    every other region op by op; returns how many were forced. For measuring the
    sharded path against the models (`annc run --distributed --shard-regions`). With
    `grid`, a region that splits over a grid runs as `jax.sharded.grid`."""
    from annc.dsl.dialect import RegionOp
    from annc.hardware.variants.regions.from_ir import lower_region

    forced: list[RegionOp] = []
    for region in [op for op in module.walk() if isinstance(op, RegionOp)]:
        parent = region.parent_op()
        while parent is not None and parent not in forced:
            parent = parent.parent_op()
        if parent is not None:
            continue
        spec = lower_region(region).spec
        on_grid = grid and why_not_sharded(spec, grid=True) is None
        sharded = on_grid or why_not_sharded(spec) is None
        region.variant = StringAttr(SHARDED_GRID if on_grid else SHARDED if sharded else OPS)
        region.start_variant = None
        if sharded:
            region.device = StringAttr(mesh_info_device())
            forced.append(region)
    return len(forced)


def mesh_info_device() -> str:
    from annc.hardware.devices.mesh import mesh_info

    mesh = mesh_info()
    return mesh.device if mesh is not None else "cpu"
