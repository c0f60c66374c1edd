"""A variant pin, written into the IR: the op names the pinned variant and the device
that has it, and every region around it runs its ops one by one.

A pin is the user's: `kernel.pin_variant` set by hand in the IR, or by `--variant`
(`passes.overrides`). Selection keeps it as it keeps a device pin: `select-variants`
offers only the pinned variant where it applies, and writes it here even where no
model predicts it. The op's predicted time is the plan's prediction for that variant
and device, or none, so that the printed IR says only what was predicted for it.

`PinVariants` is the rewrite as an xDSL `RewritePattern`, applied by the rewriter
(`pin_variants`): `--variant` overrides go through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from xdsl.dialects.builtin import FloatAttr, ModuleOp, StringAttr, f64
from xdsl.ir import Operation
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

from annc.dsl.dialect import KernelOp, RegionOp
from annc.hardware.variants import variants_for
from annc.hardware.variants.regions.catalogue import OPS
from annc.passes.candidates import Candidate


def pinned_device(kernel: str, name: str, current: str) -> str:
    """The device the pinned variant runs on: the op's own where the variant exists
    there, else the first device that has it."""
    if any(v.name == name for v in variants_for(kernel, current)):
        return current
    return next((v.device for v in variants_for(kernel) if v.name == name), current)


def write_pin(op: KernelOp, name: str, candidates: list[Candidate]) -> None:
    """Rewrites the op to run variant `name`, pinned; `candidates` are the op's
    candidates in the selection plan (their predictions), or none."""
    current = op.device or op.pin_device
    device = pinned_device(op.kernel_name(), name, current.data if current else "cpu")
    _run_regions_op_by_op(op)
    op.pin_variant = op.variant = StringAttr(name)
    op.device = StringAttr(device)
    op.start_variant = None
    op.predicted_s = op.predicted_low_s = op.predicted_high_s = None
    planned = next((c for c in candidates if (c.variant, c.device) == (name, device)), None)
    if planned is None or planned.predicted_s is None:
        return
    op.predicted_s = FloatAttr(float(planned.predicted_s), f64)
    if planned.low_s is not None and planned.high_s is not None:
        op.predicted_low_s = FloatAttr(float(planned.low_s), f64)
        op.predicted_high_s = FloatAttr(float(planned.high_s), f64)


@dataclass
class PinVariants(RewritePattern):
    """Pins every op of each kernel in `variants` (kernel -> variant name) to that
    variant; `candidates` are each op's candidates in a selection plan, if any."""

    variants: Mapping[str, str]
    candidates: Mapping[Operation, list[Candidate]] = field(default_factory=dict)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, KernelOp):
            return
        name = self.variants.get(op.kernel_name())
        if name is None:
            return
        write_pin(op, name, self.candidates.get(op, []))
        notify_modified(rewriter, op)


def notify_modified(rewriter: PatternRewriter, op: KernelOp) -> None:
    """Tells the rewriter of the op and of every region around it, which the rewrite
    changed in place."""
    rewriter.notify_op_modified(op)
    parent = op.parent_op()
    while parent is not None:
        if isinstance(parent, RegionOp):
            rewriter.notify_op_modified(parent)
        parent = parent.parent_op()


def pin_variants(module: ModuleOp, variants: Mapping[str, str],
                 candidates: Mapping[Operation, list[Candidate]] | None = None) -> None:
    """Applies `PinVariants` to every op of the module, once."""
    pattern = PinVariants(variants, candidates or {})
    PatternRewriteWalker(pattern, apply_recursively=False).rewrite_module(module)


def _run_regions_op_by_op(op: KernelOp) -> None:
    """Every region around the op runs its ops one by one, so the op runs the variant
    pinned on it (a compiled region would run its own code for it)."""
    parent = op.parent_op()
    while parent is not None:
        if isinstance(parent, RegionOp):
            parent.variant = StringAttr(OPS)
            parent.device = parent.start_variant = parent.predicted_s = None
            parent.predicted_low_s = parent.predicted_high_s = None
        parent = parent.parent_op()
