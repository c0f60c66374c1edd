"""annc: compile physics workloads and run each kernel's fastest variant.

    import annc
    module = annc.compile_file("examples/heat.ann", params={"N": 64})
    result = annc.run_file("examples/heat.ann", params={"N": 64}, seed=0)
    result.outputs["T"], result.report
    result = annc.run_source(text, filename="heat.ann", params={"N": 64})  # program text
    module = annc.parse_ir(open("heat.mlir").read(), "heat.mlir")  # IR, at any stage
    result = annc.run_module(module, seed=0)  # as it stands: select it first if need be

Every user error is an `AnncError` (from `dsl.errors`, re-exported here):
`CompileError` (a program breaks a rule; located), `RunError` (it cannot run as asked
here), `DataError` (input or output data; `MissingInputsError` where inputs were given
but not all of them), `OutOfMemoryError`, `ModelError` (no usable model set),
`StoreError` (the measurement database), `HomeError` (`$ANNC_HOME`).

The API is imported on first use, so that `import annc` (and the `annc` command's
start, where Ctrl-C must already be handled) does not pay for JAX and xDSL.
"""

import typing as _typing
from importlib import import_module as _import_module

from annc.dsl.errors import (
    AnncError,
    CompileError,
    DataError,
    HomeError,
    MissingInputsError,
    ModelError,
    OutOfMemoryError,
    RunError,
    StoreError,
)

if _typing.TYPE_CHECKING:
    from annc.compiler import Compilation, compile_file, compile_program, compile_source
    from annc.ir_input import parse_ir
    from annc.running import RunResult, run_file, run_module, run_source

__all__ = [
    "AnncError",
    "Compilation",
    "CompileError",
    "DataError",
    "HomeError",
    "MissingInputsError",
    "ModelError",
    "OutOfMemoryError",
    "RunError",
    "RunResult",
    "StoreError",
    "compile_file",
    "compile_program",
    "compile_source",
    "parse_ir",
    "run_file",
    "run_module",
    "run_source",
]

__version__ = "0.1.0"

_LAZY = {"Compilation": "annc.compiler", "compile_file": "annc.compiler",
         "compile_program": "annc.compiler", "compile_source": "annc.compiler",
         "RunResult": "annc.running", "run_file": "annc.running", "run_module": "annc.running",
         "run_source": "annc.running", "parse_ir": "annc.ir_input"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(_import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'annc' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (`__all__`) and the module's dunders (`__version__`, `__doc__`,
    ...): not its private helpers, nor the submodules that `import annc.cli` and the
    like bind here."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
