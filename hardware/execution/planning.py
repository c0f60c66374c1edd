"""Making an executable plan from selected IR: every op resolved once, before anything runs.

Each `kernel` op becomes a step bound to the variant it names (`variant` and
`device` attributes, set by selection, or by `passes.overrides` where the user
forced one; an op that names none runs `numpy.reference` on the CPU), built for
its operand shapes and dtype, and to the slots of its operands and result.
`kernel.constant` becomes a step that makes its value; `scf.for` a Python loop
over its body's steps; `arith.constant` bounds are read while planning and
`func.return` names the output slots. A `kernel.region` either plans its body
in place (variant `ops`) or becomes one step running its compiled variant. An op
of any other kind cannot be planned and is an error, never interpreted instead.
The body of a loop that runs no trip is not planned (nor its variants built), as
it never runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from xdsl.dialects import arith, func, scf
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, ModuleOp, StringAttr, TensorType
from xdsl.ir import Block, Operation, SSAValue

from dsl import dtypes
from dsl.dialect import ConstantOp, KernelOp, RegionOp, YieldOp
from dsl.errors import RunError
from dsl.lowering import FUNCTION_NAME, OUTPUTS_ATTRIBUTE
from hardware.devices.allocator import aligned
from hardware.devices.device import Device
from hardware.execution.plan import ExecutablePlan, PlannedOp, PlannedRegion
from hardware.execution.steps import Step, constant_step, kernel_step, loop_step, region_step
from hardware.variants import Variant, load_library, load_variant, variants_for
from hardware.variants.compiled import compiled
from hardware.variants.reference import REFERENCE
from hardware.variants.regions import catalogue
from hardware.variants.regions.from_ir import lower_region


def output_names(module: ModuleOp) -> list[str]:
    attr = module.attributes[OUTPUTS_ATTRIBUTE]
    assert isinstance(attr, ArrayAttr)
    return [s.data for s in attr.data if isinstance(s, StringAttr)]


def variant_for(op: KernelOp, devices: Mapping[str, Device]) -> Variant:
    """The variant the op names, on its device; a RunError where there is none."""
    kernel = op.kernel_name()
    device = op.device.data if op.device else "cpu"
    name = op.variant.data if op.variant else REFERENCE
    if device not in devices:
        where = f"{op.loc.data}: error: " if op.loc else ""
        raise RunError(f"{where}{kernel} is pinned to @{device}, but this machine has no "
                       f"{device} device (found: {', '.join(devices)})")
    try:
        return load_variant(kernel, name, device)  # imports only the backend it needs
    except LookupError:
        load_library()
        known = ", ".join(v.name for v in variants_for(kernel, device))
        raise RunError(f"{kernel} has no variant {name!r} on {device}; "
                       f"known: {known}") from None


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def _dtype(value: SSAValue) -> np.dtype:
    return dtypes.to_numpy(dtypes.of_tensor(value.type))


class _Planner:
    def __init__(self, module: ModuleOp, devices: Mapping[str, Device]) -> None:
        self.devices = devices
        self.slots: dict[SSAValue, int] = {}
        self.integers: dict[SSAValue, int] = {}
        self.ops: list[PlannedOp] = []
        self.regions: list[PlannedRegion] = []
        self.notes: list[str] = []
        self.copying = [0]
        kernel_ops = [op for op in module.walk() if isinstance(op, KernelOp)]
        self.index = {op: i for i, op in enumerate(kernel_ops)}  # positions in the printed IR
        regions = [op for op in module.walk() if isinstance(op, RegionOp)]
        self.region_index = {op: i for i, op in enumerate(regions)}

    def slot(self, value: SSAValue) -> int:
        return self.slots.setdefault(value, len(self.slots))

    def block(self, block: Block) -> tuple[list[Step], list[int]]:
        """The steps of a block, and the slots of what its terminator returns or yields."""
        steps: list[Step] = []
        for op in block.ops:
            if isinstance(op, func.ReturnOp | scf.YieldOp | YieldOp):
                return steps, [self.slot(v) for v in op.operands]
            if isinstance(op, RegionOp):
                steps += self.region(op)
                continue
            step = self.op(op)
            if step is not None:
                steps.append(step)
        raise RunError("annc cannot execute a block without a terminator")

    def op(self, op: Operation) -> Step | None:
        if isinstance(op, KernelOp):
            return self.kernel(op)
        if isinstance(op, ConstantOp):
            values = np.array(op.value.get_values(), dtype=_dtype(op.result))
            return constant_step(aligned(values.reshape(op.value.get_shape())),
                                 self.slot(op.result))
        if isinstance(op, arith.ConstantOp) and isinstance(op.value, IntegerAttr):
            self.integers[op.result] = op.value.value.data
            return None
        if isinstance(op, scf.ForOp):
            return self.loop(op)
        raise RunError(f"annc cannot execute {op.name} (only kernel ops, kernel.region, "
                       "kernel.constant, integer arith.constant and scf.for are planned)")

    def region(self, op: RegionOp) -> list[Step]:
        """A region's steps: its body's, op by op (variant `ops`, or none chosen), or one
        step running its compiled variant."""
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
        try:
            function = catalogue.built(lowered.spec, name)
        except Exception as error:  # a build that fails (an auto-scheduler gives up)
            where = f"{op.loc.data}: " if op.loc else ""
            self.notes.append(f"note: {where}region variant {name} could not be built "
                              f"({type(error).__name__}: {error}); its ops run one by one")
            return self.region_op_by_op(op)
        sources = [self.slot(op.inputs[s]) if isinstance(s, int) else aligned(s)
                   for s in lowered.sources]
        kernels = [o.kernel for o in lowered.spec.ops]
        planned = PlannedRegion(
            index=self.region_index[op], kind=catalogue.kind(lowered.spec), variant=name,
            device=variant.device, ops=[self.index[k] for k in op.walk()
                                        if isinstance(k, KernelOp)],
            kernels=kernels, loc=op.loc.data if op.loc else "",
            predicted_s=op.predicted_s.value.data if op.predicted_s else None)
        self.regions.append(planned)
        shapes = lowered.spec.output_shapes()
        results = [(self.slot(r), lowered.results[i], shapes[lowered.results[i]])
                   for i, r in enumerate(op.outputs)]
        return [region_step(function, sources, results,
                            dtypes.to_numpy(lowered.spec.dtype), self.devices,
                            planned.times_ns)]

    def kernel(self, op: KernelOp) -> Step:
        variant = variant_for(op, self.devices)
        shapes = tuple(_shape(v) for v in op.operands)
        dtype = _dtype(op.operands[0])
        if not variant.applies(shapes, dtype):
            raise RunError(f"variant {variant.name} of {variant.kernel} does not apply to "
                           f"shapes {list(map(list, shapes))} ({dtype})")
        built = compiled(variant, shapes, dtype).kernel
        device = self.devices[variant.device]
        planned = PlannedOp(
            index=self.index[op], kernel=variant.kernel, variant=variant.name,
            device=variant.device, shapes=[list(s) for s in shapes],
            loc=op.loc.data if op.loc else "",
            predicted_s=op.predicted_s.value.data if op.predicted_s else None)
        self.ops.append(planned)
        align = variant.backend == "jax" and device.name == "cpu"
        return kernel_step(built, [self.slot(v) for v in op.operands],
                           self.slot(op.results[0]), _shape(op.results[0]), dtype, device,
                           self.devices, align, planned.times_ns, self.copying)

    def region_op_by_op(self, op: RegionOp) -> list[Step]:
        """The region's body planned in place: its arguments and results are the slots
        of its inputs and of what it yields."""
        for argument, value in zip(op.block.args, op.inputs, strict=True):
            self.slots[argument] = self.slot(value)
        steps, yielded = self.block(op.block)
        for result, slot in zip(op.outputs, yielded, strict=True):
            self.slots[result] = slot
        return steps

    def bound(self, value: SSAValue) -> int:
        if value not in self.integers:
            raise RunError("annc cannot execute a loop whose bounds are not integer constants")
        return self.integers[value]

    def loop(self, op: scf.ForOp) -> Step:
        trips = range(self.bound(op.lb), self.bound(op.ub), self.bound(op.step))
        index, *arguments = op.body.block.args
        body, yielded = self.block(op.body.block) if trips else ([], [])
        return loop_step(trips, self.slot(index), [self.slot(a) for a in arguments],
                         [self.slot(v) for v in op.iter_args], body, yielded,
                         [self.slot(r) for r in op.results])


def compile_plan(module: ModuleOp, devices: Mapping[str, Device]) -> ExecutablePlan:
    """The module's `main` as an executable plan on these devices (building its variants)."""
    function = next(op for op in module.ops
                    if isinstance(op, func.FuncOp) and op.sym_name.data == FUNCTION_NAME)
    planner = _Planner(module, devices)
    inputs = [planner.slot(a) for a in function.body.block.args]
    steps, returned = planner.block(function.body.block)
    names = output_names(module)
    if len(names) != len(returned):
        raise RunError(f"the module names {len(names)} outputs but returns {len(returned)}")
    return ExecutablePlan(steps, len(planner.slots), inputs,
                          dict(zip(names, returned, strict=True)), planner.ops, devices,
                          planner.copying, regions=planner.regions, notes=planner.notes)
