"""What a process pays the first time it uses a back end, beyond the build itself.

Calibration times builds in a worker that has used every back end already, so
neither of these is in any build time it records:

- JAX: annc imports JAX only when a JAX variant is built (where no GPU driver
  shows), so the first JAX build of a process also pays JAX's import and the start
  of its CPU client (0.34 s on the reference machine, numpy already loaded, against
  builds of 10–80 ms);
- Halide: the first compile of a process, just-in-time or ahead of time, starts
  LLVM (0.43 s here, against 0.02 s for the next trivial compile). Loading a kernel
  from the build cache compiles nothing and starts nothing.

`annc train` measures both in fresh interpreters and the model file keeps them
(`ModelSet.backend_start_s`); selection charges a back end's start once to a plan
that would be the first in its process to use it (`passes.select_variants`).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

LAZY_BACKENDS = ("jax", "halide")
"""Back ends whose first use in a process costs a start."""

_PROBES = {
    "jax": (  # numpy is loaded in every annc process before JAX is
        "import time\n"
        "import numpy\n"
        "start = time.perf_counter()\n"
        "from hardware.devices import jax_runtime\n"
        "import jax.numpy as jnp\n"
        "jnp.zeros(1).block_until_ready()\n"
        "print(time.perf_counter() - start)\n"
    ),
    "halide": (
        "import time\n"
        "import halide as hl\n"
        "def compile_one(n):\n"
        "    x = hl.Var('x')\n"
        "    f = hl.Func('f')\n"
        "    f[x] = x * 2 + n\n"
        "    start = time.perf_counter()\n"
        "    f.compile_jit()\n"
        "    return time.perf_counter() - start\n"
        "first = compile_one(1)\n"
        "print(first - compile_one(2))\n"
    ),
}

_STARTED: set[str] = set()


def mark_started(backend: str) -> None:
    """Records that this process has paid the back end's start (a Halide compile)."""
    _STARTED.add(backend)


def started(backend: str) -> bool:
    """Whether this process has started the back end already: JAX once it is imported,
    Halide once it has compiled something."""
    if backend == "jax":
        return "jax" in sys.modules
    return backend in _STARTED


def start_seconds(backend: str, runs: int = 3) -> float:
    """The back end's start, the median over `runs` fresh interpreters; 0 where the
    back end is not installed or the probe fails."""
    times = []
    # the folder that holds the `hardware` package, whether installed or not
    root = str(Path(__file__).resolve().parents[2])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [root, os.environ.get("PYTHONPATH", "")]))}
    for _ in range(runs):
        try:
            done = subprocess.run([sys.executable, "-c", _PROBES[backend]],
                                  capture_output=True, text=True, timeout=120,
                                  env=environment, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        try:
            if done.returncode == 0:
                times.append(max(0.0, float(done.stdout.strip().splitlines()[-1])))
        except (ValueError, IndexError):
            continue
    return statistics.median(times) if times else 0.0


def backend_start_seconds() -> dict[str, float]:
    """The start of every back end in `LAZY_BACKENDS`, for the model file."""
    return {backend: start_seconds(backend) for backend in LAZY_BACKENDS}
