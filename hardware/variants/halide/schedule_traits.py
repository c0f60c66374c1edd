"""What Mullapudi2016 decided for one shape, as a feature of its performance model.

Halide's Mullapudi2016 auto-scheduler writes a schedule per shape. For about a quarter
of the calibration's matrix products and convolutions it fuses the computation into
its consumer (`compute_at` in the schedule's source) and runs fewer loops in
parallel, and the run time switches with that decision: a smooth function of the
sizes cannot follow it. The schedule takes milliseconds to make and is kept in the
build cache, where the variant's build finds it again, so the decision is cheap to
know before choosing a variant.

The decision depends on the machine (its core count and the compile target), so
the calibration rows of one machine carry the decisions made there
(`hardware.calibration.reference_data` ships the reference machine's beside its
rows); everything else asks this machine's auto-scheduler.
"""

from __future__ import annotations

from collections.abc import Callable

from annc.dsl import dtypes
from annc.hardware.variants.halide.pipeline import result_shape
from annc.hardware.variants.halide.scheduling import compiled_shapes, scheduled
from annc.hardware.variants.registry import Shapes, Traits

FUSED = "fused"
"""1 where the schedule computes a stage inside its consumer's loops, else 0."""

TRAITED = {("matmul", "halide.auto.mullapudi2016"), ("conv2d", "halide.auto.mullapudi2016")}
"""The variants whose models get the trait: Mullapudi2016's products and convolutions
fuse for some shapes and not others. Its matrix–vector products never fuse, and Li2018
never does; Adams2019's search takes seconds per shape, too slow to run before
choosing (docs/results.md, "Mullapudi2016's fusion as a feature")."""


def fused(source: str) -> bool:
    """Whether a schedule's printed source computes a stage inside another's loops."""
    return "compute_at(" in source


def schedule_traits(kernel: str, name: str, shapes: Shapes, dtype: str) -> Traits:
    """The variant's traits for these shapes on this machine (f32 or f64).

    Generates the schedule where the build cache does not hold it yet, and keeps it
    there for the build."""
    operands = compiled_shapes(kernel, shapes)
    _, _, schedule = scheduled(kernel, operands, result_shape(kernel, operands),
                               dtypes.to_numpy(dtype), name)
    if schedule is None:
        raise ValueError(f"{name} has no auto-scheduled schedule to read traits from")
    return ((FUSED, float(fused(schedule.source))),)


def traits_function(kernel: str, name: str) -> Callable[[Shapes, str], Traits] | None:
    """The variant's traits as a function of shapes and dtype, or None where it has none."""
    if (kernel, name) not in TRAITED:
        return None
    return lambda shapes, dtype: schedule_traits(kernel, name, shapes, dtype)
