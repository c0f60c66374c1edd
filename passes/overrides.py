"""`override-variants`: the user's `--variant KERNEL=NAME`, as a rewrite of the IR.

Every op of a named kernel is pinned to that variant (`kernel.pin_variant`, so that
selecting the IR again keeps it) and rewritten to run it, as `passes.pins` writes a pin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass

from annc.dsl.errors import RunError
from annc.hardware.variants import KERNELS, load_library, variants_for
from annc.passes.candidates import Candidate
from annc.passes.pins import pin_variants
from annc.passes.select_variants import Plan


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


def _planned(plan: Plan | None) -> dict[Operation, list[Candidate]]:
    """Every op's candidates, from the plan (empty without one)."""
    return {} if plan is None else {op.site.op: op.candidates for op in plan.ops}


def override_variants(module: ModuleOp, variants: Mapping[str, str],
                      plan: Plan | None = None) -> None:
    """Rewrites every op of each named kernel to run the named variant (in place), with
    `passes.pins.PinVariants` applied by xDSL's rewriter."""
    check_overrides(variants)
    pin_variants(module, variants, _planned(plan))


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
