"""annc's dialect and passes, discovered by `xdsl-opt` through the `xdsl.universe` entry point."""

from xdsl.ir import Dialect
from xdsl.universe import Universe


def _kernel_dialect() -> Dialect:
    from dsl.dialect import Kernel

    return Kernel


ANNC_UNIVERSE = Universe(all_dialects={"kernel": _kernel_dialect})
