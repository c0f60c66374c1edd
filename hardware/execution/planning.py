"""Making an executable plan from selected IR: every op resolved once, before anything runs.

Each `kernel` op becomes a step bound to the variant it names (`kernel.variant` and
`kernel.device` attributes, set by selection, or by `passes.overrides` where the user
forced one; an op that names none runs `numpy.reference` on its pinned device, else
the CPU), built for
its operand shapes and dtype, and to the slots of its operands and result.
`kernel.constant` becomes a step that makes its value; `scf.for` a Python loop
over its body's steps; `arith.constant` bounds are read while planning and
`func.return` names the output slots. A `kernel.region` either plans its body
in place (variant `ops`) or becomes one step running its compiled variant. An op
of any other kind cannot be planned and is an error, never interpreted instead.
The body of a loop that runs no trip is not planned (nor its variants built), as
it never runs.

Tiers: where selection named a `kernel.start_variant` beside the variant it chose (the
chosen one needs a build that is not kept), `builds` decides: `first` builds it
before the run (what a plan without tiers does; a build that searches for a schedule
in a child process, so that Ctrl-C answers: `hardware.execution.foreground`), `never`
runs the start variant only, and `beside` runs the start variant and builds the
chosen one beside the run (`hardware.execution.beside`), switching to it when it is
loaded (`hardware.execution.tiers`). A chosen variant that is built already or kept
in the persistent caches runs from the start. A compiled whole loop runs in chunks
(`hardware.execution.loops`); one that starts op by op switches between two trips.
A step predicted to take over half a second runs in a helper thread, so that Ctrl-C
is answered meanwhile (`hardware.execution.interruptible`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import arith, func, scf
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, ModuleOp, StringAttr, TensorType
from xdsl.ir import Block, Operation, SSAValue

from annc.dsl import dtypes
from annc.dsl.dialect import ConstantOp, KernelOp, RegionOp, YieldOp, where
from annc.dsl.errors import RunError
from annc.dsl.lowering import FUNCTION_NAME, OUTPUTS_ATTRIBUTE
from annc.hardware.devices.allocator import aligned
from annc.hardware.devices.device import Device
from annc.hardware.execution.beside import Beside
from annc.hardware.execution.builds import BuildJob, kernel_job, region_job
from annc.hardware.execution.foreground import build_now
from annc.hardware.execution.interruptible import interruptible, is_long
from annc.hardware.execution.loops import ChunkSizer, compiled_loop_runner, switching_loop_step
from annc.hardware.execution.on_mesh import mesh_region_runner
from annc.hardware.execution.plan import ExecutablePlan, PlannedOp, PlannedRegion
from annc.hardware.execution.progress import RunProgress
from annc.hardware.execution.steps import (
    Env,
    Step,
    constant_step,
    kernel_step,
    loop_step,
    region_runner,
    timed_step,
)
from annc.hardware.execution.tiers import Tier, tiered_kernel_step, tiered_region_step
from annc.hardware.variants import Variant, load_library, load_variant, variants_for
from annc.hardware.variants.compiled import compiled
from annc.hardware.variants.reference import REFERENCE
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.from_ir import Lowered, lower_region
from annc.hardware.variants.registry import Kernel

BUILDS = ("beside", "first", "never")
"""What a run does about a chosen variant whose build is not kept (see the module)."""


@dataclass
class Builds:
    """How a plan treats builds: `mode` (one of `BUILDS`) and, for `beside`, the helper
    that builds beside the run."""

    mode: str = "first"
    beside: Beside | None = None
    jobs: list[BuildJob] = field(default_factory=list)
    """What the plan built beside the run or left unbuilt (`never`), in order."""


def output_names(module: ModuleOp) -> list[str]:
    attr = module.attributes[OUTPUTS_ATTRIBUTE]
    assert isinstance(attr, ArrayAttr)
    return [s.data for s in attr.data if isinstance(s, StringAttr)]


def variant_for(op: KernelOp, devices: Mapping[str, Device]) -> Variant:
    """The variant the op names, on its device; a RunError where there is none."""
    kernel = op.kernel_name()
    chosen = op.device or op.pin_device
    device = chosen.data if chosen else "cpu"
    name = op.variant.data if op.variant else REFERENCE
    if device not in devices:
        place = f"{where(op)}: error: " if where(op) else ""
        raise RunError(f"{place}{kernel} is pinned to @{device}, but this machine has no "
                       f"{device} device (found: {', '.join(devices)})")
    try:
        return load_variant(kernel, name, device)  # imports only the backend it needs
    except LookupError:
        load_library()
        known = ", ".join(v.name for v in variants_for(kernel, device))
        raise RunError(f"{kernel} has no variant {name!r} on {device}; "
                       f"known: {known}") from None


def start_variant_for(op: KernelOp, target: Variant) -> Variant | None:
    """The variant the op starts on while `target` builds: its `start_variant`, where it
    names another registered variant on the same device."""
    if op.start_variant is None or op.start_variant.data == target.name:
        return None
    try:
        start = load_variant(target.kernel, op.start_variant.data, target.device)
    except LookupError:
        return None
    return start


def _aligned_inputs(variant: Variant) -> bool:
    """Whether the variant reads 64-byte aligned host copies (JAX on the CPU)."""
    return variant.backend == "jax" and variant.device == "cpu"


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def _dtype(value: SSAValue) -> np.dtype:
    return dtypes.to_numpy(dtypes.of_tensor(value.type))


class _Planner:
    def __init__(self, module: ModuleOp, devices: Mapping[str, Device], builds: Builds,
                 progress: RunProgress) -> None:
        self.devices = devices
        self.builds = builds
        self.progress = progress
        self.slots: dict[SSAValue, int] = {}
        self.integers: dict[SSAValue, int] = {}
        self.ops: list[PlannedOp] = []
        self.regions: list[PlannedRegion] = []
        self.tiers: list[tuple[str, Tier]] = []
        """Every tier with a build beside the run, and the op or region it is (`#3`,
        `region 1`)."""
        self.notes: list[str] = []
        self.copying = [0]
        self.run_started = [0.0]
        self.depth = 0
        """How many loops hold what is being planned (the outermost show progress)."""
        kernel_ops = [op for op in module.walk() if isinstance(op, KernelOp)]
        self.index = {op: i for i, op in enumerate(kernel_ops)}  # positions in the printed IR
        regions = [op for op in module.walk() if isinstance(op, RegionOp)]
        self.region_index = {op: i for i, op in enumerate(regions)}

    def slot(self, value: SSAValue) -> int:
        return self.slots.setdefault(value, len(self.slots))

    def block(self, block: Block, loop_tier: tuple[Tier, Lowered, RegionOp] | None = None
              ) -> tuple[list[Step], list[int]]:
        """The steps of a block, and the slots of what its terminator returns or yields.
        `loop_tier`: the block is a whole-loop region's, run op by op while its
        compiled form builds (its loop switches to it)."""
        steps: list[Step] = []
        for op in block.ops:
            if isinstance(op, func.ReturnOp | scf.YieldOp | YieldOp):
                return steps, [self.slot(v) for v in op.operands]
            if isinstance(op, RegionOp):
                steps += self.region(op)
                continue
            if isinstance(op, scf.ForOp) and loop_tier is not None:
                steps.append(self.loop(op, loop_tier))
                continue
            step = self.op(op)
            if step is not None:
                steps.append(step)
        raise RunError("annc cannot execute a block without a terminator")

    def op(self, op: Operation) -> Step | None:
        if isinstance(op, KernelOp):
            return self.kernel(op)
        if isinstance(op, ConstantOp):
            return constant_step(aligned(op.array()), self.slot(op.result))
        if isinstance(op, arith.ConstantOp) and isinstance(op.value, IntegerAttr):
            self.integers[op.result] = op.value.value.data
            return None
        if isinstance(op, scf.ForOp):
            return self.loop(op)
        raise RunError(f"annc cannot execute {op.name} (only kernel ops, kernel.region, "
                       "kernel.constant, integer arith.constant and scf.for are planned)")

    def beside(self, job: BuildJob, tier: Tier, align: bool, where: str) -> None:
        """Has the job built beside the run, the tier switching to it when loaded."""
        assert self.builds.beside is not None
        tier.run_started = self.run_started
        tier.build, tier.label = job.key, job.label
        self.builds.jobs.append(job)
        self.tiers.append((where, tier))
        self.builds.beside.submit(job, tier.offer(align))

    def tiered(self, job: BuildJob, has_start: bool) -> str:
        """How the plan runs a chosen build: `now` (built or loaded here before the run),
        `start` (the start tier only) or `beside` (the start tier, then the build)."""
        if not has_start or self.builds.mode == "first" or job.ready():
            return "now"
        if self.builds.mode == "never" or self.builds.beside is None:
            self.builds.jobs.append(job)
            return "start"
        return "beside"

    def region(self, op: RegionOp) -> list[Step]:
        """A region's steps: its body's, op by op (variant `ops`, or none chosen), or one
        step running its compiled variant, or, where that builds beside the run, a step
        that starts on its `start_variant` and switches."""
        name = op.variant.data if op.variant else catalogue.OPS
        if name == catalogue.OPS:
            return self.region_op_by_op(op)
        try:
            variant = catalogue.region_variant(name)
        except LookupError as error:
            raise RunError(str(error)) from None
        lowered = lower_region(op)
        why_not = variant.why_not(lowered.spec)
        if why_not is not None:
            raise RunError(f"region variant {name} cannot run this region: {why_not}")
        if variant.device not in self.devices:
            raise RunError(f"region variant {name} runs on {variant.device}, which this "
                           "machine does not have")
        start = self.region_start(op, lowered, name)
        job = region_job(lowered.spec, name)
        how = self.tiered(job, start is not None)
        if how == "start":
            assert start is not None
            return self.region_on(op, lowered, start)
        if how == "beside":
            assert start is not None
            return self.region_tiered(op, lowered, name, start, job)
        try:
            function = build_now(job)
        except Exception as error:  # a build that fails (an auto-scheduler gives up)
            place = f"{where(op)}: " if where(op) else ""
            self.notes.append(f"note: {place}region variant {name} could not be built "
                              f"({type(error).__name__}: {error}); its ops run one by one")
            return self.region_op_by_op(op)
        return self.compiled_region(op, lowered, name, function)

    def compiled_region(self, op: RegionOp, lowered: Lowered, name: str,
                        function: Kernel) -> list[Step]:
        """The one step that runs the region's compiled variant `name`, timed."""
        planned = self.planned_region(op, lowered, name)
        runner = self.region_runner(op, lowered, function, self.region_advance(lowered))
        return [_answering(timed_step(runner, planned.times_ns),
                           None if lowered.spec.is_loop else planned.predicted_s)]

    def region_advance(self, lowered: Lowered) -> Callable[[int], None] | None:
        """Where a compiled whole loop reports its trips (see `advance`)."""
        return self.advance(lowered.spec.trips or 0) if lowered.spec.is_loop else None

    def region_start(self, op: RegionOp, lowered: Lowered, target: str) -> str | None:
        """The region's `start_variant`: `ops`, or a compiled variant that can run it."""
        if op.start_variant is None or op.start_variant.data == target:
            return None
        start = op.start_variant.data
        if start == catalogue.OPS:
            return start
        try:
            variant = catalogue.region_variant(start)
        except LookupError:
            return None
        fits = variant.why_not(lowered.spec) is None and variant.device in self.devices
        return start if fits else None

    def region_on(self, op: RegionOp, lowered: Lowered, name: str) -> list[Step]:
        """The region on one variant, `ops` included, with no build beside it."""
        if name == catalogue.OPS:
            return self.region_op_by_op(op)
        return self.compiled_region(op, lowered, name, catalogue.built(lowered.spec, name))

    def region_tiered(self, op: RegionOp, lowered: Lowered, name: str, start: str,
                      job: BuildJob) -> list[Step]:
        """The region on its start variant while `name` builds beside the run."""
        planned = self.planned_region(op, lowered, name)
        where = f"region {planned.index}"
        if lowered.spec.is_loop and start == catalogue.OPS:
            tier = Tier(None, start, target=name)
            self.beside(job, tier, False, where)
            planned.tier = tier
            return self.region_op_by_op(op, (tier, lowered, op))
        op_by_op = self.region_op_by_op(op) if start == catalogue.OPS else []
        first = None if start == catalogue.OPS else catalogue.built(lowered.spec, start)
        tier = Tier(first, start, target=name)
        self.beside(job, tier, False, where)
        planned.tier = tier
        advance = self.region_advance(lowered)
        return [_answering(tiered_region_step(
            tier, op_by_op, lambda function: self.region_runner(op, lowered, function, advance),
            planned.times_ns), None if lowered.spec.is_loop else planned.predicted_s)]

    def planned_region(self, op: RegionOp, lowered: Lowered, name: str) -> PlannedRegion:
        planned = PlannedRegion(
            index=self.region_index[op], kind=catalogue.kind(lowered.spec), variant=name,
            device=catalogue.region_variant(name).device,
            ops=[self.index[k] for k in op.walk() if isinstance(k, KernelOp)],
            kernels=[o.kernel for o in lowered.spec.ops], loc=where(op),
            predicted_s=op.predicted_s.value.data if op.predicted_s else None)
        self.regions.append(planned)
        return planned

    def region_runner(self, op: RegionOp, lowered: Lowered, function: Kernel,
                      advance: Callable[[int], None] | None) -> Callable[[Env], None]:
        """Runs the compiled region on the environment's values (a loop in chunks, each
        told to `advance`)."""
        sources = [self.slot(op.inputs[s]) if isinstance(s, int) else aligned(s)
                   for s in lowered.sources]
        shapes = lowered.spec.output_shapes()
        results = [(self.slot(r), lowered.results[i], shapes[lowered.results[i]])
                   for i, r in enumerate(op.outputs)]
        dtype = dtypes.to_numpy(lowered.spec.dtype)
        spec = lowered.spec
        if op.variant is not None and catalogue.is_sharded(op.variant.data):
            return mesh_region_runner(function, sources, spec.carried if spec.is_loop
                                      else None, spec.trips or 0, results, self.devices,
                                      advance)
        if not spec.is_loop:
            return region_runner(function, sources, results, dtype, self.devices)
        return compiled_loop_runner(function, sources, spec.carried, spec.trips or 0,
                                    results, dtype, self.devices,
                                    ChunkSizer(_per_trip(op, spec.trips)), advance)

    def advance(self, trips: int) -> Callable[[int], None] | None:
        """Where a loop of `trips` trips reports them: the progress of the run for an
        outermost loop, nothing inside another loop."""
        if self.depth:
            return None
        self.progress.total += trips
        return self.progress.advance

    def kernel(self, op: KernelOp) -> Step:
        variant = variant_for(op, self.devices)
        shapes = tuple(_shape(v) for v in op.operands)
        dtype = _dtype(op.operands[0])
        if not variant.applies(shapes, dtype):
            raise RunError(f"variant {variant.name} of {variant.kernel} does not apply to "
                           f"shapes {list(map(list, shapes))} ({dtype})")
        start = start_variant_for(op, variant)
        if start is not None and not start.applies(shapes, dtype):
            start = None
        job = kernel_job(variant, shapes, dtype)
        how = self.tiered(job, start is not None)
        runs = variant if how == "now" else start
        assert runs is not None
        built = build_now(job) if how == "now" else compiled(runs, shapes, dtype).kernel
        device = self.devices[variant.device]
        planned = PlannedOp(
            index=self.index[op], kernel=variant.kernel, variant=runs.name,
            device=variant.device, shapes=[list(s) for s in shapes],
            loc=where(op),
            predicted_s=op.predicted_s.value.data if op.predicted_s else None)
        self.ops.append(planned)
        operands = [self.slot(v) for v in op.operands]
        result = self.slot(op.results[0])
        if how != "beside":
            return _answering(kernel_step(
                built, operands, result, _shape(op.results[0]), dtype, device, self.devices,
                _aligned_inputs(runs), planned.times_ns, self.copying), planned.predicted_s)
        tier = Tier(built, runs.name, align=_aligned_inputs(runs), target=variant.name)
        planned.tier = tier
        self.beside(job, tier, _aligned_inputs(variant), f"#{planned.index}")
        return _answering(tiered_kernel_step(
            tier, operands, result, _shape(op.results[0]), dtype, device, self.devices,
            planned.times_ns, self.copying), planned.predicted_s)

    def region_op_by_op(self, op: RegionOp,
                        loop_tier: tuple[Tier, Lowered, RegionOp] | None = None
                        ) -> list[Step]:
        """The region's body planned in place: its arguments and results are the slots
        of its inputs and of what it yields."""
        for argument, value in zip(op.block.args, op.inputs, strict=True):
            self.slots[argument] = self.slot(value)
        steps, yielded = self.block(op.block, loop_tier)
        for result, slot in zip(op.outputs, yielded, strict=True):
            self.slots[result] = slot
        return steps

    def bound(self, value: SSAValue) -> int:
        if value not in self.integers:
            raise RunError("annc cannot execute a loop whose bounds are not integer constants")
        return self.integers[value]

    def loop(self, op: scf.ForOp, tier: tuple[Tier, Lowered, RegionOp] | None = None
             ) -> Step:
        trips = range(self.bound(op.lb), self.bound(op.ub), self.bound(op.step))
        index, *arguments = op.body.block.args
        advance = self.advance(len(trips))
        self.depth += 1
        body, yielded = self.block(op.body.block) if trips else ([], [])
        self.depth -= 1
        initial = [self.slot(v) for v in op.iter_args]
        results = [self.slot(r) for r in op.results]
        if tier is None:
            return loop_step(trips, self.slot(index), [self.slot(a) for a in arguments],
                             initial, body, yielded, results, advance)
        loop_tier, lowered, region = tier
        spec = lowered.spec
        invariants = [self.slot(region.inputs[s]) if isinstance(s, int) else aligned(s)
                      for s in lowered.sources[spec.carried:]]
        return switching_loop_step(
            trips, self.slot(index), [self.slot(a) for a in arguments], initial, body,
            yielded, results, loop_tier, invariants, list(spec.inputs[:spec.carried]),
            dtypes.to_numpy(spec.dtype), self.devices,
            ChunkSizer(_per_trip(region, spec.trips)), advance)


def _per_trip(op: RegionOp, trips: int | None) -> float | None:
    """The predicted seconds of one trip of a whole-loop region, where it has a prediction."""
    if op.predicted_s is None or not trips:
        return None
    return op.predicted_s.value.data / trips


def _answering(step: Step, predicted_s: float | None) -> Step:
    """The step, run in a helper thread where one execution is predicted to be long, so
    that Ctrl-C is answered meanwhile (`hardware.execution.interruptible`; a compiled
    loop sees to its own chunks)."""
    return interruptible(step) if is_long(predicted_s) else step


def compile_plan(module: ModuleOp, devices: Mapping[str, Device],
                 builds: Builds | None = None, progress: RunProgress | None = None
                 ) -> ExecutablePlan:
    """The module's `main` as an executable plan on these devices (building its variants,
    or having them built beside the run: see `Builds`). The plan's outermost loops tell
    `progress` their trips."""
    function = next(op for op in module.ops
                    if isinstance(op, func.FuncOp) and op.sym_name.data == FUNCTION_NAME)
    builds = builds if builds is not None else Builds()
    if builds.mode not in BUILDS:
        raise RunError(f"builds: expected one of {', '.join(BUILDS)}, got {builds.mode!r}")
    progress = progress if progress is not None else RunProgress(0, show=False)
    planner = _Planner(module, devices, builds, progress)
    inputs = [planner.slot(a) for a in function.body.block.args]
    steps, returned = planner.block(function.body.block)
    names = output_names(module)
    if len(names) != len(returned):
        raise RunError(f"the module names {len(names)} outputs but returns {len(returned)}")
    return ExecutablePlan(steps, len(planner.slots), inputs,
                          dict(zip(names, returned, strict=True)), planner.ops, devices,
                          planner.copying, regions=planner.regions, notes=planner.notes,
                          tiers=planner.tiers, run_started=planner.run_started,
                          progress=progress)
