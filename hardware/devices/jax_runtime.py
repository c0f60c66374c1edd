"""JAX, configured once for annc, and the devices it sees.

Importing this module turns on 64-bit floats in JAX (`jax_enable_x64`), process
wide, so that f64 kernels really run in f64; turns off asynchronous dispatch on
the CPU (every annc kernel waits for its result anyway, and handing each call to
another thread made the same call's time vary threefold from one call to the next:
docs/design.md, "Measurements behind the code"); and turns on XLA's persistent compilation
cache in `$ANNC_HOME/jax-cache`, so that a second run of a program does not pay
XLA compilation again. The settings are `jax_settings`'s, which annc reads without
importing JAX; `cache_events` counts the cache's hits and misses in this process.
On a GPU it keeps JAX from taking 75% of the GPU's memory up front
(`XLA_PYTHON_CLIENT_PREALLOCATE=false`, unless the environment says otherwise):
calibration runs JAX in two processes (the command and its measuring worker), and
CuPy's variants allocate from the same memory. It is the only place annc changes
JAX's configuration; everything that uses JAX imports it first. How annc compiles
a JAX function is `hardware.variants.jax_functions.compile_for`'s.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # read when a GPU starts

import jax
import jax.monitoring

from annc.dsl.errors import HomeError
from annc.hardware.devices import jax_settings
from annc.hardware.devices.home import state_folder

jax.config.update("jax_enable_x64", jax_settings.X64)
# The lent GPU machines run a newer JAX than annc is developed with: should it lack the
# option, there is nothing to turn off.
with contextlib.suppress(AttributeError):
    jax.config.update("jax_cpu_enable_async_dispatch", False)


def _use_disk_cache() -> None:
    """XLA's compilation cache on disk; without a writable `$ANNC_HOME` (or where its
    `jax-cache/` is a link or cannot be written), no cache: JAX would warn on every
    compile it could not keep."""
    try:
        folder = state_folder(jax_settings.CACHE_FOLDER)
    except HomeError:
        return
    if not os.access(folder, os.W_OK | os.X_OK):
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


_use_disk_cache()

CACHE_EVENTS = {"/jax/compilation_cache/cache_hits": "hit",
                "/jax/compilation_cache/cache_misses": "miss"}

cache_events: Counter[str] = Counter()
"""XLA's persistent cache in this process: `hit` and `miss`, one per compile that asked
it (JAX reports them as monitoring events)."""


def _count_cache_event(event: str, **_: Any) -> None:
    if event in CACHE_EVENTS:
        cache_events[CACHE_EVENTS[event]] += 1


jax.monitoring.register_event_listener(_count_cache_event)


def persistent_cache_folder() -> Path | None:
    """The folder of XLA's persistent cache in this process, or None where it is off."""
    folder = getattr(jax.config, "jax_compilation_cache_dir", None)
    return Path(folder) if folder else None


def cpu_device() -> jax.Device:
    """The host CPU as JAX sees it."""
    return jax.devices("cpu")[0]


def gpu_devices() -> list[jax.Device]:
    """The CUDA devices JAX sees; empty (and silent) on a machine without one."""
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []
