"""Getting a fresh process ready for its first execution while annc is still compiling.

The first execution in a process pays for memory the operating system has not yet
handed over (a page fault for every 4 KiB, or 2 MiB where numpy asks for huge pages,
the first time each is written: on this machine kind, a virtual machine, a fault
can also wait for the host to back the page) and for BLAS's first call (its
packing buffers, mapped and written on first use). Measured on the reference machine
(2026-12-07): a 1000×1200 @ 1200×1100 f64 product with its scaling and update took
27–107 ms as the first execution of `annc run`, of which 2,300–3,400 page faults and
up to 55 ms of system time, against 23–24 ms once the memory was reused; the same
numpy expression's first call in a fresh Python process took 25–51 ms.

`WarmUp.start(module)` is called as soon as the program's IR exists, before
selection: it allocates (in the calling thread) a block as large as the results
the program holds (`memory.estimate`, its inputs left out, at most `LIMIT_BYTES`)
and has a thread call BLAS once per dtype the program uses, write the block, then
import the modules a plan needs (`PLAN_MODULES`),
while the main thread goes on with selection on the other core. Each is done once
per process: BLAS once per dtype, memory up to the largest block written so far
(a process that ran the program before has its memory). BLAS's threads spin for
a while after a call, and a later run's short compilation left them spinning into
an XLA loop, which then took 1.7x as long. `WarmUp.finish()`, called
just before the execution, waits for that thread (usually long done) and frees the
block: annc's allocator keeps freed memory in the process
(`hardware.devices.allocator.keep_freed_memory`), so the execution's results are
carved out of pages that are already the process's own.
"""

from __future__ import annotations

import importlib
import math
import threading
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TensorType

from annc.dsl import dtypes
from annc.hardware.devices.allocator import available_bytes, keep_freed_memory
from annc.hardware.execution.memory import estimate
from annc.hardware.execution.rundata import input_specs

LIMIT_BYTES = 2 << 30
"""The most memory a warm-up writes (and at most a quarter of what is available)."""
PLAN_MODULES = ("annc.hardware.variants.cpu_numpy", "annc.hardware.variants.algorithms",
                "annc.hardware.variants.regions.numpy_region", "annc.hardware.execution.loops")
"""Modules nearly every plan imports when it is made (numpy's variants, numpy's region),
imported by the warm-up beside selection: 0.8 ms of a residual's 1.5 ms plan where a
kept plan had skipped the variant library."""
BLAS_SIZE = 384
"""The side of the product BLAS is warmed with: large enough for its packing buffers
and its threads, 3 ms in f64 here."""


def result_bytes(module: ModuleOp) -> int:
    """Bytes of every tensor the program holds, less its inputs (already allocated)."""
    inputs = sum(math.prod(spec.shape) * spec.dtype.itemsize for spec in input_specs(module))
    return max(estimate(module).total_bytes - inputs, 0)


def _dtypes(module: ModuleOp) -> list[np.dtype]:
    found = {dtypes.of_tensor(value.type) for op in module.walk() for value in op.results
             if isinstance(value.type, TensorType)}
    return [dtypes.to_numpy(name) for name in sorted(found)]


@dataclass
class _Warmed:
    """What this process has made ready already: memory it kept, BLAS per dtype."""

    bytes: int = 0
    dtypes: set[str] = field(default_factory=set)


_WARMED = _Warmed()


class WarmUp:
    """Memory and BLAS made ready beside compilation (see the module)."""

    def __init__(self) -> None:
        self._block: np.ndarray | None = None
        self._thread: threading.Thread | None = None

    def start(self, module: ModuleOp) -> None:
        if self._thread is not None or not keep_freed_memory():
            return  # without glibc's kept memory, freed pages would go back to the system
        nbytes = min(result_bytes(module), LIMIT_BYTES, available_bytes() // 4)
        kinds = [d for d in _dtypes(module) if d.name not in _WARMED.dtypes]
        if nbytes <= _WARMED.bytes and not kinds:
            return
        _WARMED.dtypes.update(d.name for d in kinds)
        if nbytes > _WARMED.bytes:
            _WARMED.bytes = nbytes
            self._block = np.empty(nbytes, np.uint8)
        self._thread = threading.Thread(target=_warm, args=(self._block, kinds),
                                        name="annc-warm-up", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        """Waits for the warm-up and hands its memory back to the allocator."""
        if self._thread is not None:
            self._thread.join()
        self._block = None


def _warm(block: np.ndarray | None, kinds: list[np.dtype]) -> None:
    """BLAS and the memory first (numpy lets go of Python's lock for both, so selection
    goes on), the imports last: selection imports much itself, and the two would take
    turns on Python's import lock."""
    for dtype in kinds:
        square = np.ones((BLAS_SIZE, BLAS_SIZE), dtype)
        square @ square
    if block is not None:
        block.fill(0)
    for name in PLAN_MODULES:
        importlib.import_module(name)
