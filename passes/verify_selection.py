"""`verify-selection`: the variant names in the IR are ones the variant library knows.

The dialect's verifier checks what the dialect knows alone (types, shapes, devices);
it cannot check a variant name, since the variant library lives in `hardware/`, above
`dsl/`. This pass checks the rest: every kernel op's `kernel.variant`,
`kernel.pin_variant` and `kernel.start_variant` name a registered variant of its
kernel (on its device, where one is set), and every region's names a region variant.
annc runs it on IR it is given (`annc run x.mlir`), and `xdsl-opt -p verify-selection`
runs it through annc's `xdsl.universe` entry point.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import VerifyException

from annc.dsl.dialect import KernelOp, RegionOp
from annc.hardware.variants import load_library, variants_for
from annc.hardware.variants.regions import catalogue


def _kernel_problems(op: KernelOp) -> list[str]:
    kernel = op.kernel_name()
    known = {v.name for v in variants_for(kernel)}
    problems = []
    for attribute, name in (("variant", op.variant), ("pin_variant", op.pin_variant),
                            ("start_variant", op.start_variant)):
        if name is None:
            continue
        if name.data not in known:
            problems.append(f"{op.name}: kernel.{attribute} {name.data!r} is no variant of "
                            f"{kernel}; its variants are {', '.join(sorted(known))}")
        elif op.device is not None and attribute == "variant" and not any(
                v.name == name.data for v in variants_for(kernel, op.device.data)):
            problems.append(f"{op.name}: {kernel} has no variant {name.data!r} on "
                            f"{op.device.data}")
    return problems


def _region_problems(op: RegionOp) -> list[str]:
    known = [catalogue.OPS, *(v.name for v in catalogue.VARIANTS)]
    return [f"kernel.region: kernel.{attribute} {name.data!r} is no region variant; "
            f"region variants are {', '.join(known)}"
            for attribute, name in (("variant", op.variant), ("start_variant", op.start_variant))
            if isinstance(name, StringAttr) and name.data not in known]


def selection_problems(module: ModuleOp) -> list[tuple[Operation, str]]:
    """Every op whose variant names are unknown, with what is wrong, in IR order."""
    load_library()
    found: list[tuple[Operation, str]] = []
    for op in module.walk():
        if isinstance(op, KernelOp):
            found += [(op, problem) for problem in _kernel_problems(op)]
        elif isinstance(op, RegionOp):
            found += [(op, problem) for problem in _region_problems(op)]
    return found


@dataclass(frozen=True)
class VerifySelection(ModulePass):
    """Fails on the first variant name the library does not know."""

    name = "verify-selection"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        problems = selection_problems(op)
        if problems:
            raise VerifyException(problems[0][1])
