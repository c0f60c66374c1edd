"""Markers of JAX builds: which builds XLA's persistent cache can serve, known without JAX.

XLA keeps what it compiled in its own cache (`$ANNC_HOME/jax-cache`, turned on by
`hardware.devices.jax_runtime`), but asking it whether it holds a function means
tracing and lowering the function first, most of what a cache hit costs. So after
every JAX build annc writes a small entry of its own build cache (kind `jax`),
keyed like the build: what was built (a region's spec, or a kernel's variant,
shapes and dtype), the device, jax's and jaxlib's versions, `jax_enable_x64` and the
machine's fingerprint. Its payload records the build's seconds and whether XLA's
cache served it. Selection asks `is_cached`, a file's existence, and charges a
cached build its load (`hardware.variants.LOAD_S["jax"]`) instead of a compile.

A marker is written only where XLA's cache is on and lives in the same `$ANNC_HOME`
as the build cache; it can still outlive XLA's entry (someone deletes
`jax-cache/`): the build then compiles, which costs time, never a wrong result.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from annc.hardware.devices import jax_settings
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.variants.halide import build_cache
from annc.hardware.variants.registry import Shapes

KIND = "jax"


def build_key(what: str, device: str, **fields: Any) -> dict[str, Any]:
    """The marker key of a JAX build of `what` on `device`: its `fields`, this machine,
    and the JAX, jaxlib and XLA settings that make a build differ."""
    return {"what": what, **fields, "device": device, **jax_settings.versions(),
            "x64": jax_settings.X64, "fingerprint": fingerprint().id}


def kernel_key(kernel: str, variant: str, shapes: Shapes, dtype: np.dtype | type,
               device: str) -> dict[str, Any]:
    """The marker key of a single-kernel JAX variant built for these shapes and dtype."""
    return build_key("jax-kernel", device, kernel=kernel, variant=variant,
                shapes=[[int(d) for d in s] for s in shapes], dtype=np.dtype(dtype).name)


def is_cached(key: dict[str, Any]) -> bool:
    """Whether a build of this key was made before with XLA's cache on (the marker is
    there; XLA's entry is trusted to be)."""
    return build_cache.exists(KIND, key)


def annc_device(platform: str) -> str:
    """annc's name of a JAX platform: `cpu`, or `gpu` for CUDA and ROCm."""
    return "cpu" if platform == "cpu" else "gpu"


def record_build(key: dict[str, Any], seconds: float, hits_before: int) -> None:
    """Called after a JAX build that took `seconds`: keeps its marker. `hits_before` is
    `jax_runtime.cache_events["hit"]` before the build, to record whether XLA's cache
    served it. A marker already there is only refreshed (a read); none is written where
    XLA's cache is off or lies outside this `$ANNC_HOME`."""
    from annc.hardware.devices import jax_runtime

    if jax_runtime.persistent_cache_folder() != jax_settings.cache_folder():
        return
    if build_cache.read(KIND, key) is not None:
        return
    served = jax_runtime.cache_events["hit"] > hits_before
    payload = {"seconds": seconds, "xla_cache": "hit" if served else "miss"}
    build_cache.write(KIND, key, json.dumps(payload).encode())
