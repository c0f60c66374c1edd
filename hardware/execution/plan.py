"""An executable plan: the selected IR resolved once into steps, run as often as wanted.

`ExecutablePlan.run` puts the inputs in their slots, runs the steps in order under
`np.errstate(all="ignore")` — NaN or infinity in the inputs, a division by zero
or an overflow give the IEEE results numpy gives (NaN, ±inf), without
RuntimeWarnings: a physicist checks the outputs, not warnings — and copies the
outputs back to the host. Every kernel op's executions are timed, so a run can
report the measured time of each op summed over all the times it executed.
Making a plan from IR is `hardware.execution.planning`'s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import cast

import numpy as np

from annc.hardware.devices.allocator import keep_freed_memory
from annc.hardware.devices.device import Device
from annc.hardware.execution.progress import RunProgress
from annc.hardware.execution.residency import SHARDS, Partial, Resident
from annc.hardware.execution.steps import Step
from annc.hardware.execution.tiers import Tier


@dataclass
class PlannedKernel:
    """Which kernel op, run how: what a plan fixes for it and a record of it repeats."""

    index: int
    """The op's position among the kernel ops of the printed IR."""
    kernel: str
    variant: str
    device: str
    shapes: list[list[int]]
    loc: str
    predicted_s: float | None


@dataclass
class OpRun(PlannedKernel):
    """What one kernel op did during a run: every execution's seconds, for the run's
    report. Not an `annc.dsl.records.Record`: recording turns a steady one into a `run`
    record (`annc.recording.run_observations`)."""

    measured_s: float = 0.0
    executions: int = 0
    times: list[float] = field(default_factory=list)
    """Seconds of each execution, in order."""


@dataclass
class PlannedOp(PlannedKernel):
    """A kernel op as the plan runs it, and the nanoseconds of each of its executions."""

    times_ns: list[int] = field(default_factory=list)
    tier: Tier | None = None
    """Where its chosen variant builds beside the run: what it runs and when it switched."""

    def record(self) -> OpRun:
        """What it did, under the variant it ran last."""
        times = [t * 1e-9 for t in self.times_ns]
        which = {f.name: getattr(self, f.name) for f in fields(PlannedKernel)}
        if self.tier is not None:
            which["variant"] = self.tier.variant
        return OpRun(**which, measured_s=sum(self.times_ns) * 1e-9,
                        executions=len(times), times=times)

    def tier_records(self) -> list[OpRun]:
        """What it did on each variant it ran (two where it switched), for learning."""
        tier = self.tier
        if tier is None or tier.switched_after is None:
            return [self.record()]
        records = []
        cut = tier.switched_after
        for variant, part in ((tier.started_on, self.times_ns[:cut]),
                              (tier.variant, self.times_ns[cut:])):
            if part:
                which = {f.name: getattr(self, f.name) for f in fields(PlannedKernel)}
                which["variant"] = variant
                times = [t * 1e-9 for t in part]
                records.append(OpRun(**which, measured_s=sum(part) * 1e-9,
                                        executions=len(part), times=times))
        return records


@dataclass
class PlannedRegion:
    """A region run as one compiled function, and the nanoseconds of each execution."""

    index: int
    """The region's position among the regions of the printed IR."""
    kind: str
    """`region.<class>` (a fused chain) or `loop.<class>` (a whole loop), the class being
    its heaviest kind of op (`hardware.variants.regions.spec.region_class`)."""
    variant: str
    device: str
    ops: list[int]
    """The indices of the kernel ops it runs."""
    kernels: list[str]
    loc: str
    predicted_s: float | None
    times_ns: list[int] = field(default_factory=list)
    tier: Tier | None = None
    """Where it builds beside the run: what it ran first and when it switched."""

    @property
    def measured_s(self) -> float:
        """Seconds of all its executions in the last run."""
        return sum(self.times_ns) * 1e-9

    @property
    def predicted_total_s(self) -> float | None:
        """Its predicted seconds, times its executions in the last run."""
        return None if self.predicted_s is None else self.predicted_s * len(self.times_ns)

    def report(self) -> dict[str, object]:
        """The region as `run --report json` lists it under `regions`."""
        return {
            "index": self.index, "kind": self.kind, "variant": self.variant,
            "device": self.device, "ops": self.ops, "kernels": self.kernels, "loc": self.loc,
            "predicted_s": self.predicted_total_s, "measured_s": self.measured_s,
            "executions": len(self.times_ns),
        }


@dataclass
class ExecutablePlan:
    """`main`'s steps, its input and output slots and its kernel ops (what selection
    decides is another plan, `passes.select_variants.Plan`)."""

    steps: list[Step]
    slots: int
    """How many values the environment holds."""
    inputs: list[int]
    outputs: dict[str, int]
    """Output names and their slots, in the order the function returns them."""
    ops: list[PlannedOp]
    devices: Mapping[str, Device]
    copying_ns: list[int] = field(default_factory=lambda: [0])
    """Nanoseconds spent copying operands to devices, summed by the steps."""
    regions: list[PlannedRegion] = field(default_factory=list)
    """The regions run compiled, each as one step."""
    notes: list[str] = field(default_factory=list)
    """What planning has to say (a region whose compiled variant could not be built
    runs its ops one by one)."""
    transfer_s: float = 0.0
    """Seconds the last run spent copying: operands to devices (included in the ops'
    measured times) and outputs back to the host."""
    tiers: list[tuple[str, Tier]] = field(default_factory=list)
    """The ops (`#3`) and regions (`region 1`) whose chosen variant builds beside the
    run, with their tiers."""
    run_started: list[float] = field(default_factory=lambda: [0.0])
    """When the last run started (`time.perf_counter()`), shared with the tiers."""
    progress: RunProgress | None = None

    def run(self, inputs: Sequence[np.ndarray | Partial]) -> dict[str, np.ndarray]:
        """Runs the plan on the inputs, in declaration order (numpy arrays, or inputs by
        rows: `shard_inputs.RowSource`); returns the outputs by name, whole on the host.
        Each op's times and the copying time are those of this run."""
        return {name: cast(np.ndarray, value)
                for name, value in self._started(inputs, True).items()}

    def run_kept(self, inputs: Sequence[np.ndarray | Partial]) -> dict[str, object]:
        """`run`, but an output that a sharded region left on the mesh is returned as it
        is held there (`residency.Partial`), not gathered whole."""
        return self._started(inputs, False)

    def _started(self, inputs: Sequence[np.ndarray | Partial], whole: bool
                 ) -> dict[str, object]:
        self.run_started[0] = time.perf_counter()
        try:
            return self._run(inputs, whole)
        finally:
            if self.progress is not None:
                self.progress.close()

    def _run(self, inputs: Sequence[np.ndarray | Partial], whole: bool) -> dict[str, object]:
        keep_freed_memory()  # as when the kernels were calibrated
        for op in self.ops:
            op.times_ns.clear()
        for region in self.regions:
            region.times_ns.clear()
        self.copying_ns[0] = 0
        env: list[object] = [None] * self.slots
        for slot, array in zip(self.inputs, inputs, strict=True):
            env[slot] = Resident.of(array)
        with np.errstate(all="ignore"):  # NaN and inf are results, as in numpy, not errors
            for step in self.steps:
                step(env)
        start = time.perf_counter_ns()
        outputs = {name: self._host(env[slot], whole) for name, slot in self.outputs.items()}
        self.transfer_s = (self.copying_ns[0] + time.perf_counter_ns() - start) * 1e-9
        return outputs

    def _host(self, value: object, whole: bool) -> object:
        assert isinstance(value, Resident)
        held = value.copies.get(SHARDS)
        if not whole and held is not None and "cpu" not in value.copies:
            return held
        return value.host(self.devices)

    def records(self) -> list[OpRun]:
        """What every op that ran in the last run did, in index order."""
        return [op.record() for op in sorted(self.ops, key=lambda o: o.index)
                if op.times_ns]

    def tier_records(self) -> list[OpRun]:
        """`records`, split where an op switched variants (what learning reads)."""
        return [record for op in sorted(self.ops, key=lambda o: o.index) if op.times_ns
                for record in op.tier_records()]
