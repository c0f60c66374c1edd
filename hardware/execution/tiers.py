"""Tiers: an op or region that starts on what can run now and switches to what is built
beside it.

A `Tier` holds what a step runs now and, once the build beside the run is loaded
(`hardware.execution.beside`, from another thread), what it runs next. The step
takes the new one at its next execution, never during one: that is the safe point,
and the only place where the plan's values are not in use by a kernel. A switch
changes what computes the next results, not the values already computed, so the
results differ from a run without it only as much as the two variants' results
may (each is checked against numpy's reference).

Only steps with a build beside them check their tier; every other step is the
plain one of `hardware.execution.steps`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annc.hardware.devices.device import Device
from annc.hardware.execution.residency import Resident
from annc.hardware.execution.steps import Env, Step
from annc.hardware.variants.registry import Kernel


@dataclass
class Tier:
    """What one op or region runs, and when it switched."""

    kernel: Any
    """What runs now (a built kernel, a region function; None for a region's ops one by
    one)."""
    variant: str
    align: bool = False
    """For a kernel op: whether it reads 64-byte aligned host copies (JAX on the CPU)."""
    target: str = ""
    """The variant building beside the run ("" where none is)."""
    build: str = ""
    """That build's key (`hardware.execution.builds.BuildJob.key`)."""
    label: str = ""
    """That build in words."""
    pending: tuple[Any, bool] | None = None
    """The target's kernel and its `align`, once loaded; taken at the next execution."""
    started_on: str = ""
    """The variant it ran before it switched ("" where it has not switched)."""
    switched_after: int | None = None
    """Executions on the start tier before the switch."""
    switched_at_s: float | None = None
    """Seconds from the start of the run to the switch."""
    run_started: list[float] = field(default_factory=lambda: [0.0])

    def offer(self, align: bool) -> Callable[[Kernel], None]:
        """What the builder calls with the target once it is loaded here."""

        def take(kernel: Kernel) -> None:
            self.pending = (kernel, align)

        return take

    def switch(self, executions: int) -> None:
        """Takes the pending kernel (called by the step, between executions)."""
        assert self.pending is not None
        self.kernel, self.align = self.pending
        self.pending = None
        self.started_on, self.variant = self.variant, self.target
        self.switched_after = executions
        self.switched_at_s = time.perf_counter() - self.run_started[0]


def tiered_kernel_step(tier: Tier, operands: Sequence[int], result: int,
                       shape: tuple[int, ...], dtype: np.dtype, device: Device,
                       devices: Mapping[str, Device], times: list[int],
                       copying: list[int]) -> Step:
    """`steps.kernel_step` for an op whose faster variant builds beside the run, written
    out again: a step that wrapped `kernel_step` (remade at the switch) cost 4–6% more
    per execution on small ops, against 1.00x for this one (`benchmarks/tier_costs.py`)."""
    clock = time.perf_counter_ns
    record = times.append
    slots = tuple(operands)
    name = device.name

    def run(env: Env) -> None:
        if tier.pending is not None:
            tier.switch(len(times))
        start = clock()
        if tier.align:
            handles = [env[s].aligned_host(devices) for s in slots]
        else:
            handles = [env[s].on(device, devices) for s in slots]
        copied = clock()
        value = tier.kernel(*handles)
        end = clock()
        env[result] = Resident(shape, dtype, {name: value})
        record(end - start)
        copying[0] += copied - start

    return run


RegionRunner = Callable[[Env], None]
"""Runs a compiled region on the values of the environment, writing its results."""


def tiered_region_step(tier: Tier, op_by_op: Sequence[Step],
                       compiled: Callable[[Any], RegionRunner], times: list[int]) -> Step:
    """A region that runs its ops one by one (`tier.kernel` None: they time themselves)
    or a compiled variant (timed into `times`, one entry per execution), switching to
    the one built beside the run. `compiled(function)` makes the runner of a region
    function."""
    clock = time.perf_counter_ns
    steps = tuple(op_by_op)
    runner: list[RegionRunner | None] = [None if tier.kernel is None
                                         else compiled(tier.kernel)]
    executions = [0]

    def run(env: Env) -> None:
        if tier.pending is not None:
            tier.switch(executions[0])
            runner[0] = compiled(tier.kernel)
        executions[0] += 1
        current = runner[0]
        if current is None:
            for step in steps:
                step(env)
            return
        start = clock()
        current(env)
        times.append(clock() - start)

    return run
