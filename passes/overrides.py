"""`override-variants`: the user's `--variant KERNEL=NAME`, as a rewrite of the IR.

Every op of a named kernel is rewritten to name that variant, and the device that has
it: the op's own device where the variant exists there, else the first device that
has it; every region around it then runs its ops one by one. Its predicted time
becomes the selection plan's prediction for that variant and device, or is dropped
where there is none, so that the printed IR is exactly what runs and says only what
was predicted for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import FloatAttr, ModuleOp, StringAttr, f64
from xdsl.passes import ModulePass

from dsl.dialect import KernelOp, RegionOp
from dsl.errors import RunError
from hardware.variants import KERNELS, load_library, variants_for
from hardware.variants.regions.catalogue import OPS
from passes.candidates import Candidate
from passes.select_variants import Plan

_PREDICTIONS = ("predicted_s", "predicted_low_s", "predicted_high_s")


def check_overrides(variants: Mapping[str, str]) -> None:
    """Rejects an unknown kernel or variant, naming the known ones."""
    load_library()
    for kernel, name in variants.items():
        if kernel not in KERNELS:
            raise RunError(f"--variant {kernel}={name}: unknown kernel {kernel!r}; kernels "
                           f"are {', '.join(KERNELS)}")
        names = sorted({v.name for v in variants_for(kernel)})
        if name not in names:
            raise RunError(f"--variant {kernel}={name}: {kernel} has no variant {name!r}; "
                           f"its variants are {', '.join(names)}")


def _device(kernel: str, name: str, current: str) -> str:
    if any(v.name == name for v in variants_for(kernel, current)):
        return current
    return next((v.device for v in variants_for(kernel) if v.name == name), current)


def _planned(plan: Plan | None) -> dict[int, list[Candidate]]:
    """Every op's candidates by its index, from the plan (empty without one)."""
    return {} if plan is None else {op.site.index: op.candidates for op in plan.ops}


def override_variants(module: ModuleOp, variants: Mapping[str, str],
                      plan: Plan | None = None) -> None:
    """Rewrites every op of each named kernel to run the named variant (in place)."""
    check_overrides(variants)
    candidates = _planned(plan)
    ops = [op for op in module.walk() if isinstance(op, KernelOp)]
    for index, op in enumerate(ops):
        name = variants.get(op.kernel_name())
        if name is None:
            continue
        device = _device(op.kernel_name(), name, op.device.data if op.device else "cpu")
        _run_regions_op_by_op(op)
        op.attributes["variant"] = StringAttr(name)
        op.attributes["device"] = StringAttr(device)
        for attribute in _PREDICTIONS:
            op.attributes.pop(attribute, None)
        planned = next((c for c in candidates.get(index, [])
                        if (c.variant, c.device) == (name, device)), None)
        if planned is None or planned.predicted_s is None:
            continue
        op.attributes["predicted_s"] = FloatAttr(float(planned.predicted_s), f64)
        if planned.low_s is not None and planned.high_s is not None:
            op.attributes["predicted_low_s"] = FloatAttr(float(planned.low_s), f64)
            op.attributes["predicted_high_s"] = FloatAttr(float(planned.high_s), f64)


def _run_regions_op_by_op(op: KernelOp) -> None:
    """Every region around the op runs its ops one by one, so the op runs the variant
    forced on it (a compiled region would run its own code for it)."""
    parent = op.parent_op()
    while parent is not None:
        if isinstance(parent, RegionOp):
            parent.attributes["variant"] = StringAttr(OPS)
            for attribute in ("device", *_PREDICTIONS):
                parent.attributes.pop(attribute, None)
        parent = parent.parent_op()


def parse_overrides(text: str) -> dict[str, str]:
    """`matmul=numpy,add=halide` as {kernel: variant}; a ValueError names a bad item."""
    overrides = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kernel, sep, name = item.partition("=")
        if not sep or not kernel.strip() or not name.strip():
            raise ValueError(f"override-variants: expected KERNEL=NAME, got {item!r}")
        overrides[kernel.strip()] = name.strip()
    return overrides


@dataclass(frozen=True)
class OverrideVariants(ModulePass):
    """Forces variants: `override-variants{variants="matmul=numpy,add=halide"}`."""

    name = "override-variants"

    variants: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        override_variants(op, parse_overrides(self.variants))
