"""Which regions a Halide pipeline compiles: decided from the spec alone, so that
selection asks it of every region without importing the builder (`halide_region`),
which only a build needs."""

from __future__ import annotations

from annc.dsl import kernels
from annc.hardware.variants.regions.spec import RegionSpec

HEAVY = ("conv2d", "matmul", "matvec", "transpose", "dot", "sum", "norm")
"""The non-element-wise kernels a Halide region takes (at most one of them)."""


def halide_supports(spec: RegionSpec) -> str | None:
    """None if `build_halide` compiles this region, else why not."""
    if spec.is_loop:
        return "a loop region is not compiled by Halide (its loop is over whole buffers)"
    heavy = [op.kernel for op in spec.ops if kernels.kernel(op.kernel).kind != "elementwise"]
    unknown = [k for k in heavy if k not in HEAVY]
    if unknown:
        return f"Halide regions do not take {', '.join(unknown)}"
    if len(heavy) > 1:
        return f"a Halide region has at most one non-element-wise op, not {', '.join(heavy)}"
    if not spec.outputs:
        return "a region without outputs computes nothing"
    return None
