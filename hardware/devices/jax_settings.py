"""annc's settings of JAX, readable without importing JAX (about a third of a second).

`jax_runtime` applies them when JAX is imported; `hardware.variants.jax_builds` keys
its markers of JAX builds by them, so that selection can ask whether a build is in
XLA's cache without importing JAX. Every annc process, including a helper that
imports one variant module and builds one thing, configures JAX from here, so an
executable one process compiled is a cache hit in the next.
"""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path

from annc.hardware.devices.home import annc_home

X64 = True
"""`jax_enable_x64`: f64 kernels run in f64 (a build's HLO depends on it)."""

CACHE_FOLDER = "jax-cache"
"""XLA's persistent compilation cache, a folder of `$ANNC_HOME`."""


def cache_folder() -> Path:
    """Where XLA's persistent compilation cache is kept for the current `$ANNC_HOME`."""
    return annc_home() / CACHE_FOLDER


@functools.cache
def versions() -> dict[str, str]:
    """The versions of jax and jaxlib ("absent" where one is not installed)."""
    found = {}
    for name in ("jax", "jaxlib"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found
