"""annc's dialect and passes, discovered by `xdsl-opt` through the `xdsl.universe` entry point."""

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe


def _kernel_dialect() -> Dialect:
    from annc.dsl.dialect import Kernel

    return Kernel


def _fuse_regions() -> type[ModulePass]:
    from annc.passes.fusion import FuseRegions

    return FuseRegions


def _select_variants() -> type[ModulePass]:
    from annc.passes.select_variants import SelectVariants

    return SelectVariants


def _canonicalize_kernel() -> type[ModulePass]:
    from annc.dsl.canonicalization import CanonicalizeKernel

    return CanonicalizeKernel


def _verify_selection() -> type[ModulePass]:
    from annc.passes.verify_selection import VerifySelection

    return VerifySelection


def _override_variants() -> type[ModulePass]:
    from annc.passes.overrides import OverrideVariants

    return OverrideVariants


ANNC_UNIVERSE = Universe(
    all_dialects={"kernel": _kernel_dialect},
    all_passes={"canonicalize-kernel": _canonicalize_kernel,
                "fuse-regions": _fuse_regions,
                "select-variants": _select_variants,
                "override-variants": _override_variants,
                "verify-selection": _verify_selection},
)
