"""An xDSL context that knows every dialect annc IR uses."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.arith import Arith
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func
from xdsl.dialects.scf import Scf

from annc.dsl.dialect import Kernel


def annc_context() -> Context:
    context = Context()
    for dialect in (Builtin, Func, Scf, Arith, Kernel):
        context.load_dialect(dialect)
    return context
