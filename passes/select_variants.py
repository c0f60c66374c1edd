"""`select-variants`: choose every kernel op's variant and device from predicted times.

For each kernel op the candidates are the variants of its kernel on the devices
it may use (the module's targets that this machine has, narrowed by a pin) that
apply to its shapes and dtype. Every candidate of the whole module is predicted
in one batched call. An op's cost on a device is that of its best variant
there: trip count × predicted time + compile time (paid once, so amortised over
the trips). A build counts what it costs in this process: nothing where this
process built it already, the load time (`hardware.variants.LOAD_S`, by back end)
where a persistent cache holds it, else the model's median build time. A candidate without a model
is never chosen.

Predictions come from the cost model (`predictor.cost_model`: the trained models
corrected for this machine), each with a 90% interval; a candidate whose time was
measured on these exact shapes before (wisdom) uses that time instead. Its query is
the variant's own (`Variant.query`). Where
the best candidates' intervals overlap and enough time is at stake, the
`measure` option may measure them first (`passes.measuring`). Devices are then
placed over the whole function (`passes.placement`), counting the copies
between them, and each op is rewritten to name its variant, device, predicted
time per execution and its interval. A plan that would be the first in its process
to use JAX or to compile with Halide also pays that back end's start
(`ModelSet.backend_start_s`, 0.34 s and 0.43 s on the reference machine; see
`hardware.devices.backend_start`): the plan is then made again without each subset
of the back ends not yet started, and the cheapest, starts counted, is kept.

    %c = kernel.matmul %a, %b {variant = "numpy", device = "cpu", predicted_s = 1.2e-03,
                               predicted_low_s = 1.0e-03, predicted_high_s = 1.5e-03}
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import FloatAttr, ModuleOp, StringAttr, f64
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from annc.dsl import dtypes
from annc.dsl.lowering import module_targets
from annc.dsl.records import Combination, Query, Record
from annc.hardware.devices.available import available_devices
from annc.hardware.devices.backend_start import started
from annc.hardware.execution.beside import DELAY_S
from annc.hardware.variants import (
    LOAD_S,
    Shapes,
    Variant,
    get_variant,
    load_library,
    variants_for,
)
from annc.hardware.variants.compiled import is_built
from annc.passes.candidates import Candidate, OpPlan
from annc.passes.measuring import MEASURE_MODES, measure_close_candidates, set_measured
from annc.passes.models import load_models
from annc.passes.pins import notify_modified, write_pin
from annc.passes.placement import copy_seconds, place
from annc.passes.region_choice import (
    RegionPlan,
    apply_regions,
    choose_regions,
    fused_regions,
)
from annc.passes.sites import DataFlow, Site, data_flow
from annc.passes.tiers import (
    HELPER_START_S,
    NO_BUILD_BACKENDS,
    TierStep,
    charge_builds,
    is_tie,
    needs_compile,
    ranked,
    run_seconds,
    start_candidate,
    tier_plan,
    waiting_is_sooner,
)
from annc.predictor.cost_model import CostModel, Prediction


@dataclass
class Plan:
    ops: list[OpPlan]
    models: str
    devices: list[str]
    notes: list[str] = field(default_factory=list)
    transfer_s: float = 0.0
    measured: list[Record] = field(default_factory=list)
    """What the `measure` step measured, for the caller to keep as wisdom."""
    measure_s: float = 0.0
    """Seconds the `measure` step spent."""
    chosen_models: CostModel | None = None
    """The cost model (with this machine's corrections and wisdom) the plan was made with."""
    regions: list[RegionPlan] = field(default_factory=list)
    """Every region's candidates and choice (`passes.region_choice`)."""
    start_s: float = 0.0
    """Seconds of starting back ends that the plan is the first in its process to use."""
    runs: int = 1
    """The runs a build is expected to serve (this one and the program's past ones)."""
    horizon_s: float = 0.0
    """How long the run would last on candidates that need no compile."""

    @property
    def total_predicted_s(self) -> float:
        """The ops that run one by one, the regions that run compiled (each once, not the
        ops inside it), the copies and the back ends' starts."""
        compiled = fused_regions(self.regions)
        inside = {site for region in compiled for site in region.sites}
        ops = sum(op.chosen.cost_s for op in self.ops
                  if op.chosen and op.site.index not in inside)
        regions = sum(r.chosen.cost_s for r in compiled if r.chosen is not None)
        return ops + regions + self.transfer_s + self.start_s

    def tiers(self) -> list[TierStep]:
        """What starts where a choice builds beside the run, in the order the run meets
        them, and when each build is expected to take over (`passes.tiers`)."""
        steps: list[tuple[int, str, Candidate, Candidate, float, str]] = []
        for op in self.ops:
            if op.start is not None and op.chosen is not None:
                backend = get_variant(op.site.kernel, op.chosen.variant,
                                      op.chosen.device).backend
                steps.append((op.site.index, f"#{op.site.index}", op.start, op.chosen,
                              run_seconds(op.start) - run_seconds(op.chosen), backend))
        for region in self.regions:
            if region.start is not None and region.chosen is not None:
                steps.append((min(region.sites, default=0), f"region {region.index}",
                              region.start, region.chosen,
                              run_seconds(region.start) - run_seconds(region.chosen),
                              region.chosen.variant.split(".")[0]))
        steps.sort(key=lambda step: (step[0], not step[1].startswith("region")))
        starts = self.chosen_models.backend_start_s if self.chosen_models else {}
        return tier_plan([step[1:] for step in steps], self.runs, starts, DELAY_S,
                         _loads_here(starts))


def allowed_devices(module: ModuleOp, present: list[str], notes: list[str]) -> list[str]:
    listed = module_targets(module)
    if listed is None:
        return present
    for name in listed:
        if name not in present:
            notes.append(f"note: target {name} is not on this machine; skipping it")
    return [d for d in listed if d in present]


def build_cost(variant: Variant, shapes: Shapes, dtype: np.dtype,
               cost: CostModel) -> tuple[float, str]:
    """What building the variant costs in this process, and why (`CostModel.build_cost`)."""
    return cost.build_cost(variant.key, is_built(variant, shapes, dtype),
                           variant.backend not in NO_BUILD_BACKENDS,
                           lambda: LOAD_S[variant.backend] if variant.cached(shapes, dtype)
                           else None)


Applicable = list[tuple[Variant, float, str]]
"""The variants of a kernel that apply to some shapes, dtype and device, each with its
build cost (`build_cost`)."""


@dataclass
class _Catalogue:
    """The applicable variants and their build costs, found once per (kernel, shapes, dtype,
    device) for one plan: a program repeats its shapes, and asking the build cache whether
    it holds a kernel is a file system call."""

    cost: CostModel
    found: dict[tuple[str, Shapes, str, str], Applicable] = field(default_factory=dict)

    def applicable(self, site: Site, device: str) -> Applicable:
        key = (site.kernel, site.shapes, site.dtype, device)
        if key not in self.found:
            dtype = dtypes.to_numpy(site.dtype)
            self.found[key] = [(variant, *build_cost(variant, site.shapes, dtype, self.cost))
                               for variant in variants_for(site.kernel, device)
                               if variant.applies(site.shapes, dtype)]
        return self.found[key]


def _candidates(site: Site, devices: list[str], catalogue: _Catalogue,
                left_out: dict[str, str]) -> list[Candidate]:
    """The op's candidates; those that would compile with a back end in `left_out`
    carry its reason and are never chosen."""
    options = [site.pin] if site.pin else devices
    found = []
    for device in options:
        for variant, compile_s, build in catalogue.applicable(site, device):
            if site.pin_variant is not None and variant.name != site.pin_variant:
                continue
            starts = build == "compile" or variant.backend == "jax"
            why_not = left_out.get(variant.backend, "") if starts else ""
            found.append(Candidate(variant.name, device, None, compile_s, math.inf,
                                   why_not=why_not, build=build))
    return found


def plan_selection(module: ModuleOp, chosen: CostModel | None = None,
                   measure: str = "never", runs: int = 1) -> Plan:
    """Every op's candidates with predicted times, and the choice; the module is unchanged.

    `measure` is `never`, `auto` or `always` (see `passes.measuring`); `runs` is how many
    runs a build is expected to serve (`passes.tiers`)."""
    if measure not in MEASURE_MODES:
        raise ValueError(f"measure must be one of {MEASURE_MODES}, not {measure!r}")
    load_library()
    notes: list[str] = []
    chosen = chosen or load_models(notes)
    notes += chosen.notes
    devices = allowed_devices(module, list(available_devices()), notes)
    flow = data_flow(module)  # the same for every plan made below
    plan = _plan(module, flow, chosen, devices, notes, measure, {}, runs)
    starts = {backend: seconds for backend, seconds in chosen.backend_start_s.items()
              if seconds > 0 and not started(backend)}
    plan.start_s = _start_seconds(plan, starts)
    if not plan.start_s:
        return plan
    best = plan
    for left_out in _subsets(sorted(starts)):
        reasons = {backend: f"starting {_NAMES.get(backend, backend)} in this process "
                   f"({starts[backend]:.2f} s) costs more than its variants save here"
                   for backend in left_out}
        other = _plan(module, flow, chosen, devices, notes, "never", reasons, runs)
        other.start_s = _start_seconds(other, starts)
        if other.total_predicted_s < best.total_predicted_s:
            best = other
    best.measured, best.measure_s = plan.measured, plan.measure_s
    return best


_NAMES = {"jax": "JAX", "halide": "Halide"}


def _subsets(backends: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of the back ends, smallest first."""
    return [subset for size in range(1, len(backends) + 1)
            for subset in itertools.combinations(backends, size)]


def _start_seconds(plan: Plan, starts: dict[str, float]) -> float:
    """The starts the plan pays: those of the back ends it builds something of."""
    return sum(seconds for backend, seconds in starts.items() if _uses(plan, backend))


def _plan(module: ModuleOp, flow: DataFlow, chosen: CostModel, devices: list[str],
          notes: list[str], measure: str, left_out: dict[str, str], runs: int) -> Plan:
    """The plan over these devices, without the back ends in `left_out`."""
    catalogue = _Catalogue(chosen)
    ops = [OpPlan(site, _candidates(site, devices, catalogue, left_out))
           for site in flow.sites]
    _predict(ops, chosen)
    plan = Plan(ops, chosen.description, devices, notes, chosen_models=chosen, runs=runs)
    if measure != "never":
        plan.measured, plan.measure_s = measure_close_candidates(ops, measure)
    _add_step_overhead(ops, chosen.step_overhead_s)
    plan.horizon_s = _horizon(ops)
    for op in ops:
        charge_builds(op.candidates, op.site.trips, runs, plan.horizon_s)
    placed = place(flow, [_device_costs(op) for op in ops], chosen.transfer_seconds)
    for op, device in zip(ops, placed, strict=True):
        _choose(op, device)
    plan.transfer_s = copy_seconds(flow, placed, chosen.transfer_seconds)
    plan.regions = choose_regions(
        module, {op.site.op: op.site.index for op in ops},
        [op.chosen.cost_s if op.chosen else math.inf for op in ops],
        [op.chosen.device if op.chosen else None for op in ops], chosen, left_out,
        runs, plan.horizon_s)
    _start_inside_compiled_regions(plan)
    _wait_where_sooner(plan, chosen.backend_start_s)
    return plan


def _wait_where_sooner(plan: Plan, starts: dict[str, float]) -> None:
    """A build beside the run is ready only after the helper's delay and start, its back
    end's start there and the build (and, for JAX, JAX's start here to load it): where
    the run would end sooner waiting for the build, it waits (no start variant)."""

    loads = _loads_here(starts)

    def decide(start: Candidate, target: Candidate, backend: str) -> bool:
        ready = (DELAY_S + HELPER_START_S + starts.get(backend, 0.0) + target.compile_s
                 + loads.get(backend, loads["halide"]))
        if not waiting_is_sooner(start, target,
                                 _start_here(backend, starts) + target.compile_s, ready):
            return False
        target.beside = False
        start.why_not = (f"waiting {target.compile_s * 1e3:.3g} ms for {target.variant}'s "
                         "build ends this run sooner than starting on this")
        return True

    for op in plan.ops:
        if op.start is not None and op.chosen is not None and decide(
                op.start, op.chosen, get_variant(op.site.kernel, op.chosen.variant,
                                                 op.chosen.device).backend):
            op.start = None
    for region in plan.regions:
        if region.start is not None and region.chosen is not None and decide(
                region.start, region.chosen, region.chosen.variant.split(".")[0]):
            region.start = None


def _start_here(backend: str, starts: dict[str, float]) -> float:
    """What starting the back end costs this process: nothing where it has started."""
    return 0.0 if started(backend) else starts.get(backend, 0.0)


def _loads_here(starts: dict[str, float]) -> dict[str, float]:
    """What loading a build made beside the run costs this process, by back end: JAX's
    includes its start here, where it has not started; Halide's loads without one."""
    return {"jax": _start_here("jax", starts) + LOAD_S["jax"], "halide": LOAD_S["halide"]}


def _horizon(ops: list[OpPlan]) -> float:
    """How long the run would take on the candidates that need no compile."""
    total = 0.0
    for op in ops:
        ready = [op.site.trips * c.predicted_s for c in op.candidates
                 if not needs_compile(c) and c.predicted_s is not None and not c.why_not
                 and math.isfinite(c.cost_s)]
        total += min(ready, default=0.0)
    return total


def _start_inside_compiled_regions(plan: Plan) -> None:
    """Inside a region that starts op by op while its compiled form builds beside the
    run, every op and region runs on its start candidate: building its own choice as
    well would only delay the outer region's build, after which it never runs."""
    compiling = [r for r in fused_regions(plan.regions)
                 if r.chosen is not None and r.start is not None]
    inside = {site: region.index for region in compiling for site in region.sites}
    for op in plan.ops:
        if op.site.index in inside and op.start is not None and op.chosen is not None:
            op.chosen = _demote(op.chosen, op.start, inside[op.site.index])
            op.start = None
    for region in plan.regions:
        sites = set(region.sites)
        outer = next((r.index for r in compiling if r is not region
                      and sites <= set(r.sites)), None)
        if region.start is not None and region.chosen is not None and outer is not None:
            region.chosen = _demote(region.chosen, region.start, outer)
            region.start = None


def _demote(chosen: Candidate, start: Candidate, region: int) -> Candidate:
    """`start` runs instead of `chosen`, inside region `region` (see above)."""
    chosen.why_not = (f"not built: region {region} around it builds beside the run, and "
                      f"until then this runs {start.variant}, which needs no build")
    start.why_not = ""
    return start


def _starts_here(candidate: Candidate, backend: str) -> bool:
    """Whether the plan starts the candidate's back end in this process by choosing it.
    JAX, always: what XLA compiles runs in this process, which imports JAX to load it
    (from its cache) or to compile it, in this run and in every later one, a build
    beside the run included. Halide, only for a compile the run waits for: a kept
    Halide build loads without its compiler, and one made beside the run starts the
    compiler in the helper process."""
    if backend == "jax":
        return True
    return candidate.build == "compile" and not candidate.beside


def _uses(plan: Plan, backend: str) -> bool:
    """Whether the plan starts that back end in this process (`_starts_here`), for what an
    op or region starts on or switches to. The ops and regions inside a region that
    runs compiled never run."""
    regions = fused_regions(plan.regions)
    inside = {site for region in regions for site in region.sites}
    for op in plan.ops:
        if op.site.index in inside:
            continue
        for candidate in (op.start, op.chosen):
            if candidate is not None and get_variant(
                    op.site.kernel, candidate.variant, candidate.device).backend == backend \
                    and _starts_here(candidate, backend):
                return True
    return any(c is not None and c.variant.split(".")[0] == backend
               and _starts_here(c, backend) for r in regions for c in (r.start, r.chosen))


Asked = tuple[Combination, Shapes, str]
"""A candidate's prediction is a function of its combination, shapes and dtype alone."""


def _predict(ops: list[OpPlan], chosen: CostModel) -> None:
    """Every candidate's prediction (or its wisdom), each distinct query asked once, in
    one batched call: a program of a thousand ops has a few dozen distinct queries."""
    asked: list[tuple[OpPlan, Candidate, Asked]] = []
    queries: dict[Asked, tuple[Combination, Query]] = {}
    failed: dict[Asked, RuntimeError] = {}
    for op in ops:
        for c in op.candidates:
            if c.why_not:  # left out before predicting
                continue
            key = (Combination(op.site.kernel, c.variant, c.device), op.site.shapes, op.site.dtype)
            if key not in queries and key not in failed:
                try:
                    queries[key] = (key[0], _variant_query(*key, chosen.takes_traits(key[0])))
                except RuntimeError as error:  # the auto-scheduler failed: so would the build
                    failed[key] = error
            if key in failed:
                c.why_not = f"its schedule could not be made for these shapes: {failed[key]}"
                continue
            asked.append((op, c, key))
    predictions = dict(zip(queries, chosen.predict(list(queries.values())), strict=True))
    for op, candidate, key in asked:
        _set_prediction(op, candidate, predictions[key])


@functools.lru_cache(maxsize=65536)
def _variant_query(combo: Combination, shapes: Shapes, dtype: str, traits: bool) -> Query:
    """The variant's query (`Variant.query`), with its traits only where its model takes
    them (Mullapudi2016's fusion: its schedule is made here, or found in the build
    cache, where its build finds it too); kept, as a program repeats its shapes."""
    return get_variant(*combo).query(shapes, dtype, None if traits else ())


def _set_prediction(op: OpPlan, candidate: Candidate, p: Prediction) -> None:
    """The candidate's time: the time measured before on these shapes (wisdom) where
    there is one, else the prediction."""
    if math.isnan(p.seconds):
        candidate.why_not = "no model for this variant on this machine"
        return
    candidate.base_s = p.base_s
    if p.measured_s is not None:
        set_measured(op, candidate, p.measured_s, "wisdom")
    else:
        candidate.set_time(p.seconds, p.low_s, p.high_s, op.site.trips)


def _add_step_overhead(ops: list[OpPlan], seconds: float) -> None:
    """Adds what a running plan spends on each op beyond its kernel (`ModelSet.
    step_overhead_s`) to every candidate's time: models and measurements time kernels
    alone. The same for every candidate of an op, it changes no op's choice, but it
    makes a run's predicted times those the run measures, and a chain of small ops
    costs its steps when a compiled region competes with it."""
    if not seconds:
        return
    for op in ops:
        for c in op.candidates:
            if c.predicted_s is None or not math.isfinite(c.cost_s):
                continue
            c.predicted_s += seconds
            c.low_s = None if c.low_s is None else c.low_s + seconds
            c.high_s = None if c.high_s is None else c.high_s + seconds
            c.cost_s += op.site.trips * seconds


def _device_costs(op: OpPlan) -> dict[str, float]:
    costs: dict[str, float] = {}
    for c in op.candidates:
        costs[c.device] = min(costs.get(c.device, math.inf), c.cost_s)
    return costs or {op.site.pin or "cpu": math.inf}


def _choose(op: OpPlan, device: str) -> None:
    """The op's cheapest candidate on its device (ties by the fixed rule of
    `passes.tiers`) and, where it needs a compile, the candidate it starts on."""
    order = ranked(c for c in op.candidates if c.device == device and not c.why_not)
    if not order:
        return
    op.chosen = best = order[0]
    if needs_compile(best):
        start = start_candidate(op.candidates, device)
        op.start = start if start is not None and start is not best else None
    for c in op.candidates:
        if c is best or c.why_not:
            continue
        if c.device != device:
            c.why_not = f"{c.device} lost in placement (copies and times over the whole function)"
        elif is_tie(c, best):
            c.why_not = (f"tied with {best.variant} (within 3%); chosen by the fixed rule: "
                         "no build first, then by name")
        elif best.cost_s == 0:  # built already, in an op that never runs
            c.why_not = f"{best.variant} costs nothing here (built already; the op never runs)"
        else:
            c.why_not = f"{c.cost_s / best.cost_s:.2f}x the predicted cost of {best.variant}"
    if op.start is not None:
        saved = run_seconds(op.start) - run_seconds(best)
        op.start.why_not = (f"runs while {best.variant} builds beside the run "
                            f"({best.compile_s * 1e3:.3g} ms), which saves "
                            f"{saved * 1e3:.3g} ms a run")


@dataclass
class WriteSelection(RewritePattern):
    """Writes a plan's choice into each op and region it chose for, in the dialect's
    declared attributes; an op pinned to a variant runs it, even where no model
    predicted it (`passes.pins`). Regions come before the ops inside them (the walk
    visits an op before its body), so that a pin inside makes its regions run op by op."""

    ops: dict[Operation, OpPlan]
    regions: dict[Operation, RegionPlan]

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        region = self.regions.get(op)
        if region is not None:
            apply_regions([region])
            rewriter.notify_op_modified(op)
            return
        planned = self.ops.get(op)
        if planned is None:
            return
        if planned.site.pin_variant is not None:
            write_pin(planned.site.op, planned.site.pin_variant, planned.candidates)
            notify_modified(rewriter, planned.site.op)
        elif planned.chosen is not None:
            _write_choice(planned)
            rewriter.notify_op_modified(op)


def apply_plan(plan: Plan) -> None:
    """Writes the plan's choices into the IR: `WriteSelection`, applied once to every op
    by xDSL's rewriter."""
    ops: dict[Operation, OpPlan] = {op.site.op: op for op in plan.ops}
    regions: dict[Operation, RegionPlan] = {region.op: region for region in plan.regions}
    pattern = WriteSelection(ops, regions)
    root = next(iter(ops), None) or next(iter(regions), None)
    module = root.get_toplevel_object() if root is not None else None
    if isinstance(module, ModuleOp):
        PatternRewriteWalker(pattern, apply_recursively=False).rewrite_module(module)


def _write_choice(op: OpPlan) -> None:
    """The chosen variant, device and prediction, in the op's declared attributes."""
    assert op.chosen is not None
    kernel_op = op.site.op
    kernel_op.variant = _string(op.chosen.variant)
    kernel_op.start_variant = (_string(op.start.variant) if op.start is not None
                               else None)
    kernel_op.device = _string(op.chosen.device)
    kernel_op.predicted_s = _seconds(float(op.chosen.predicted_s or 0.0))
    if op.chosen.low_s is not None and op.chosen.high_s is not None:
        kernel_op.predicted_low_s = _seconds(float(op.chosen.low_s))
        kernel_op.predicted_high_s = _seconds(float(op.chosen.high_s))


@functools.lru_cache(maxsize=1024)
def _string(value: str) -> StringAttr:
    """The attribute of this text: attributes are immutable, so ops share them (a program
    repeats its choices, and making an attribute verifies it)."""
    return StringAttr(value)


@functools.lru_cache(maxsize=4096)
def _seconds(value: float) -> FloatAttr:
    """The f64 attribute of these seconds, shared like `_string`'s."""
    return FloatAttr(value, f64)


@dataclass(frozen=True)
class SelectVariants(ModulePass):
    """Rewrites every kernel op to name its variant, device and predicted time.

    Its options are its fields: `measure` (never, auto, always) lets the pass measure
    close candidates first; through `xdsl-opt` it never does unless asked
    (`select-variants{measure=auto}`). The compiler calls `plan` to keep the plan
    (candidates, predictions, notes) beside the rewritten IR."""

    name = "select-variants"

    measure: str = "never"
    runs: int = 1
    """How many runs a build is expected to serve (`passes.tiers`)."""

    def __post_init__(self) -> None:
        if self.measure not in MEASURE_MODES:
            raise ValueError(f"select-variants: measure must be one of "
                             f"{', '.join(MEASURE_MODES)}, not {self.measure!r}")

    def plan(self, module: ModuleOp, models: CostModel | None = None) -> Plan:
        """The plan for this module (the module is unchanged); `models` replaces the
        cost model the pass would load."""
        return plan_selection(module, models, self.measure, self.runs)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_plan(self.plan(op))
