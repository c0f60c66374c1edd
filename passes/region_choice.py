"""Choosing how every region runs: op by op, or compiled whole, by predicted cost.

Once every kernel op has its variant and device, each region (innermost first)
compares its candidates:

- `ops`: its ops one by one, as chosen — the sum of their costs (and of the
  choices of the regions inside it). Always a candidate.
- every compiled region variant that can run it (`hardware.variants.regions`):
  predicted by the model of (`region` or `loop`, variant, device) from the
  region's summary, augmented with its summed complexity, like any kernel. A
  loop's model predicts one trip. Its cost is the region's executions × the
  prediction + its build (as for a kernel: nothing where it is built already, its
  load where a persistent cache holds it).

A compiled variant runs on its own device only, so it is a candidate only where
every op of the region was placed there; the cheapest candidate wins, `ops` on a
tie. A candidate without a model is never chosen. Where the program has a mesh of
devices, a region also gets a sharded candidate (`passes.sharding_choice`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects.builtin import FloatAttr, ModuleOp, StringAttr, f64
from xdsl.ir import Operation

from annc.dsl.dialect import KernelOp, RegionOp, where
from annc.dsl.records import Combination, Query
from annc.hardware.devices.mesh import MeshInfo, mesh_info
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.from_ir import Lowered, lower_region
from annc.hardware.variants.regions.spec import summary
from annc.passes.candidates import Candidate
from annc.passes.sharding_choice import Sharded, offer_sharded, price_sharded
from annc.passes.sites import trips_of
from annc.passes.tiers import charge_builds, is_tie, needs_compile, ranked, start_candidate
from annc.predictor.cost_model import CostModel, Prediction


@dataclass
class RegionPlan:
    index: int
    """The region's position among the regions of the printed IR."""
    op: RegionOp
    kind: str
    lowered: Lowered
    sites: list[int]
    """The indices of its kernel ops."""
    executions: int
    """How many times the region runs (the trips of the loops around it)."""
    candidates: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None
    sites_cost: float = 0.0
    """The summed costs of all its kernel ops, as chosen one by one."""
    outermost: bool = True
    """Whether no other region holds it."""
    start: Candidate | None = None
    """Where `chosen` needs a compile: what the region starts on while it builds beside."""

    @property
    def loc(self) -> str:
        return where(self.op)

    @property
    def kernels(self) -> list[str]:
        return [op.kernel for op in self.lowered.spec.ops]


def _enclosing_region(op: Operation) -> RegionOp | None:
    """The nearest region around `op`, if any."""
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, RegionOp):
        parent = parent.parent_op()
    return parent


def _ops_cost(region: RegionOp, costs: dict[KernelOp, float],
              chosen: dict[RegionOp, Candidate]) -> float:
    """The cost of running the region's body as chosen: its own ops', and the choices of
    the regions directly inside it."""
    total = 0.0
    for op in region.block.walk():
        if _enclosing_region(op) is not region:
            continue
        if isinstance(op, KernelOp):
            total += costs[op]
        elif isinstance(op, RegionOp):
            total += chosen[op].cost_s
    return total


def fused_regions(plans: list[RegionPlan]) -> list[RegionPlan]:
    """The regions that run as one compiled step: chosen, not `ops`, and inside no region
    that runs so itself (whose step takes in their ops and the regions inside them)."""
    fused = {p.op: p for p in plans if p.chosen is not None and p.chosen.variant != catalogue.OPS}

    def inside_fused(op: Operation) -> bool:
        parent = _enclosing_region(op)
        while parent is not None and parent not in fused:
            parent = _enclosing_region(parent)
        return parent is not None

    return [p for op, p in fused.items() if not inside_fused(op)]


RegionQuery = tuple[Combination, Query]
"""What a region model is asked: (`region` or `loop`, variant, device), and the region's
summary as its configuration."""


def _per_execution(plan: RegionPlan, p: Prediction,
                   cost: CostModel) -> tuple[float, float | None, float | None]:
    """Seconds of one execution of the region (every trip of a loop), with its interval;
    NaN without a model."""
    spec = plan.lowered.spec
    per = spec.trips if spec.trips is not None else 1
    if math.isnan(p.seconds):
        return math.nan, None, None
    step = cost.step_overhead_s  # one plan step runs the whole region
    return p.seconds * per + step, p.low_s * per + step, p.high_s * per + step


def _build_cost(plan: RegionPlan, variant: str, device: str,
                cost: CostModel) -> tuple[float, str]:
    """What building the region variant costs in this process, and why
    (`CostModel.build_cost`)."""
    spec = plan.lowered.spec
    return cost.build_cost(Combination(plan.kind, variant, device),
                           catalogue.is_built(spec, variant), variant not in NO_BUILD_VARIANTS,
                           lambda: catalogue.load_seconds(variant)
                           if catalogue.cached(spec, variant) else None)


NO_BUILD_VARIANTS = frozenset({catalogue.OPS, "numpy"})
"""Region variants that need no build worth the name."""


def choose_regions(module: ModuleOp, sites_of: dict[KernelOp, int],
                   site_costs: list[float], site_devices: list[str | None],
                   models: CostModel, left_out: dict[str, str] | None = None,
                   runs: int = 1, horizon_s: float = 0.0) -> list[RegionPlan]:
    """Every region's candidates and choice, innermost first; the module is unchanged.

    A region variant that would compile with a back end in `left_out` (one not to
    start) gets its reason and is not chosen. Every region's compiled candidates are
    predicted in one batched call. Builds are charged as `passes.tiers` says, over
    `runs` runs and a run of `horizon_s` seconds."""
    regions = [op for op in module.walk() if isinstance(op, RegionOp)]
    plans = [_region_plan(index, region, sites_of, site_costs)
             for index, region in enumerate(regions)]
    mesh = mesh_info() if plans else None
    asked: list[tuple[RegionPlan, Candidate, RegionQuery]] = []
    sharded: list[tuple[RegionPlan, Sharded, RegionQuery]] = []
    for plan in plans:
        placed = {site_devices[i] for i in plan.sites}
        offered = _offer(plan, placed, left_out or {})
        if offered:
            spec = plan.lowered.spec
            configuration = summary(spec).query(plan.kind, spec.dtype)
            asked += [(plan, c, (Combination(plan.kind, c.variant, c.device), configuration))
                      for c in offered]
        if mesh is not None:
            offer = offer_sharded(plan.kind, plan.lowered.spec, placed, mesh,
                                  (left_out or {}).get("jax"))
            plan.candidates.append(offer.candidate)
            if offer.configuration is not None:
                sharded.append((plan, offer, (Combination(plan.kind, "jax", mesh.device),
                                              offer.configuration)))
    _predict_regions(asked, models, sharded, mesh)
    costs = {op: site_costs[i] for op, i in sites_of.items()}
    chosen: dict[RegionOp, Candidate] = {}
    for plan in reversed(plans):  # innermost first: a region's ops cost what those inside chose
        plan.candidates[0].cost_s = _ops_cost(plan.op, costs, chosen)
        charge_builds(plan.candidates, plan.executions, runs, horizon_s)
        _choose(plan)
        assert plan.chosen is not None
        chosen[plan.op] = plan.chosen
    return plans


def _region_plan(index: int, region: RegionOp, sites_of: dict[KernelOp, int],
                 site_costs: list[float]) -> RegionPlan:
    """The region lowered, with its kernel ops and what they cost one by one."""
    lowered = lower_region(region)
    members = [sites_of[op] for op in region.walk() if isinstance(op, KernelOp)]
    plan = RegionPlan(index, region, catalogue.kind(lowered.spec), lowered, members,
                      trips_of(region))
    plan.sites_cost = sum(site_costs[i] for i in members)
    plan.outermost = _enclosing_region(region) is None
    return plan


def _offer(plan: RegionPlan, placed: set[str | None],
           left_out: dict[str, str]) -> list[Candidate]:
    """Gives the region its candidates: `ops` (its cost is set once the regions inside
    it have chosen), then every compiled variant, with the reason where one cannot run
    it. Returns the compiled candidates left to predict."""
    plan.candidates.append(Candidate(catalogue.OPS, "/".join(sorted(d or "?" for d in placed)),
                                     None, 0.0, math.inf, build="built"))
    to_predict = []
    pinned = any(isinstance(op, KernelOp) and op.pin_variant for op in plan.op.walk())
    for variant, refused in catalogue.variants_for(plan.lowered.spec, "cpu"):
        candidate = Candidate(variant.name, variant.device, None, 0.0, math.inf)
        plan.candidates.append(candidate)
        why_not = refused or ("an op inside is pinned to a variant" if pinned else "")
        backend = variant.name.split(".")[0]
        if not why_not and backend in left_out and not catalogue.is_built(
                plan.lowered.spec, variant.name):
            why_not = left_out[backend]
        if not why_not and placed != {variant.device}:
            why_not = (f"its ops were placed on {', '.join(sorted(map(str, placed)))}"
                       f", not {variant.device}")
        candidate.why_not = why_not
        if not why_not:
            to_predict.append(candidate)
    return to_predict


def _predict_regions(asked: list[tuple[RegionPlan, Candidate, RegionQuery]],
                     models: CostModel,
                     sharded: list[tuple[RegionPlan, Sharded, RegionQuery]],
                     mesh: MeshInfo | None) -> None:
    """The compiled candidates' predictions and build costs, the sharded ones' included;
    each distinct query is asked once, in one batch (a program repeats its regions)."""
    unique = list(dict.fromkeys([query for _, _, query in asked]
                                + [query for _, _, query in sharded]))
    predictions = dict(zip(unique, models.predict(unique), strict=True))
    for plan, offer, query in sharded:
        assert mesh is not None
        candidate = offer.candidate
        price_sharded(offer, plan.lowered.spec.trips, predictions[query], models, mesh,
                      models.machine)
        if candidate.predicted_s is None:
            continue
        candidate.compile_s, candidate.build = models.build_cost(
            query[0], catalogue.is_built(plan.lowered.spec, candidate.variant), True,
            lambda: None)  # a sharded build is made in the run: never cached
        candidate.set_time(candidate.predicted_s, candidate.low_s, candidate.high_s,
                           plan.executions)
    for plan, candidate, query in asked:
        seconds, low, high = _per_execution(plan, predictions[query], models)
        if math.isnan(seconds):
            candidate.why_not = "no model for this region variant on this machine"
            continue
        candidate.compile_s, candidate.build = _build_cost(
            plan, candidate.variant, candidate.device, models)
        candidate.set_time(seconds, low, high, plan.executions)


def _choose(plan: RegionPlan) -> None:
    """The cheapest way to run the region (ties: `ops`, then the fixed rule of
    `passes.tiers`) and, where it needs a compile, what the region starts on."""
    order = ranked((c for c in plan.candidates if not c.why_not), prefer=catalogue.OPS)
    plan.chosen = best = order[0] if order else plan.candidates[0]
    if needs_compile(best) and not catalogue.is_sharded(best.variant):  # built in the run
        start = start_candidate(plan.candidates, best.device)
        ops = plan.candidates[0]
        plan.start = start if start is not None and start is not best else ops
    for c in plan.candidates:
        if c is best or c.why_not:
            continue
        if is_tie(c, best):
            c.why_not = f"tied with {best.variant} (within 3%)"
        elif best.cost_s == 0:
            c.why_not = f"{best.variant} costs nothing here"
        else:
            c.why_not = f"{c.cost_s / best.cost_s:.2f}x the predicted cost of {best.variant}"


def apply_regions(plans: list[RegionPlan]) -> None:
    """Writes every region's choice into the IR: its variant, device and prediction."""
    for plan in plans:
        best = plan.chosen
        if best is None:
            continue
        region = plan.op
        region.variant = StringAttr(best.variant)
        region.start_variant = (StringAttr(plan.start.variant) if plan.start is not None
                                else None)
        if best.variant == catalogue.OPS:
            region.device = region.predicted_s = None
            region.predicted_low_s = region.predicted_high_s = None
            continue
        region.device = StringAttr(best.device)
        region.predicted_s = FloatAttr(float(best.predicted_s or 0.0), f64)
        if best.low_s is not None and best.high_s is not None:
            region.predicted_low_s = FloatAttr(float(best.low_s), f64)
            region.predicted_high_s = FloatAttr(float(best.high_s), f64)


def kept_regions(module: ModuleOp, kept: list[dict[str, Any]]) -> list[RegionPlan]:
    """The region choices of a kept plan (`annc.plans`), each with its one candidate;
    a ValueError where they do not fit the module."""
    regions = [op for op in module.walk() if isinstance(op, RegionOp)]
    if len(kept) != len(regions):
        raise ValueError("the kept plan's regions are not this module's")
    plans: list[RegionPlan] = []
    for entry, region in zip(kept, regions, strict=True):
        lowered = lower_region(region)
        if entry["index"] != len(plans) or entry["kind"] != catalogue.kind(lowered.spec):
            raise ValueError("the kept plan's regions are not this module's")
        chosen = Candidate(
            str(entry["variant"]), str(entry["device"]),
            _number(entry["predicted_s"]), 0.0, float(entry["cost_s"]),
            low_s=_number(entry["low_s"]), high_s=_number(entry["high_s"]))
        plan = RegionPlan(len(plans), region, str(entry["kind"]), lowered,
                          [], trips_of(region), [chosen], chosen)
        if entry.get("start") is not None:
            plan.start = Candidate(str(entry["start"]), str(entry["device"]), None, 0.0,
                                   math.inf)
        plans.append(plan)
    return plans


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
