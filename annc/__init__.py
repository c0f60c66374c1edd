"""annc: compile physics workloads and run each kernel's fastest variant.

    import annc
    module = annc.compile_file("examples/heat.ann", params={"N": 64})
    result = annc.run_file("examples/heat.ann", params={"N": 64}, seed=0)
    result.outputs["T"], result.report
"""

from annc.compiler import compile_file, compile_source
from annc.running import RunResult, run_file, run_module
from dsl.errors import AnncError, CompileError

__all__ = [
    "AnncError",
    "CompileError",
    "RunResult",
    "compile_file",
    "compile_source",
    "run_file",
    "run_module",
]

__version__ = "0.1.0"
