"""JAX/XLA variants: every kernel jitted by XLA, on the CPU and on each CUDA GPU.

`jax` is the natural jnp formulation of each kernel; conv2d has two, `fft.jax`
(real FFTs) and `jax.lax` (XLA's direct convolution). Products ask for
`Precision.HIGHEST` so that a GPU does not quietly use TF32 for f32.

On the CPU a kernel takes and returns numpy arrays (results are read-only
views of XLA's buffers); on a GPU it takes and returns device-resident JAX
arrays, so a timing excludes the copies. XLA's persistent cache keeps every build;
a marker of it (`jax_builds`) tells selection, without importing JAX, that a later
process loads it (`Variant.cached`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from annc.hardware.devices.available import available_devices
from annc.hardware.variants import complexity, jax_builds
from annc.hardware.variants.reference import standard_complexity_of
from annc.hardware.variants.registry import Kernel, Shapes, Variant

NAMES = (
    ("matmul", "jax"), ("matvec", "jax"), ("conv2d", "fft.jax"), ("conv2d", "jax.lax"),
    ("transpose", "jax"), ("dot", "jax"), ("sum", "jax"), ("norm", "jax"), ("exp", "jax"),
    ("sqrt", "jax"), ("abs", "jax"), ("neg", "jax"), ("add", "jax"), ("sub", "jax"),
    ("mul", "jax"), ("div", "jax"),
)
"""Every (kernel, variant name) with a JAX formulation in `jax_functions.FUNCTIONS`."""



def complexity_of(kernel: str, name: str) -> Callable[[Shapes], float]:
    """The complexity of a JAX variant, the same on every device."""
    if name == "fft.jax":
        return complexity.fft_conv2d
    return standard_complexity_of(kernel)


def _workspace(name: str) -> Callable[[Shapes, int], int]:
    if name == "fft.jax":
        return complexity.fft_conv2d_workspace
    if name == "jax.lax":
        return _padded_image_bytes
    return lambda shapes, itemsize: 0


def _padded_image_bytes(shapes: Shapes, itemsize: int) -> int:
    (h, w), (p, q) = shapes
    return (h + p - 1) * (w + q - 1) * itemsize


def _build(kernel: str, name: str, device_name: str) -> Callable[[Shapes, np.dtype], Kernel]:
    """Imports JAX only now, when the variant is built; keeps the build's marker."""

    def build(shapes: Shapes, dtype: np.dtype) -> Kernel:
        from annc.hardware.devices import jax_runtime
        from annc.hardware.variants.jax_functions import FUNCTIONS, compile_for

        on_cpu = device_name == "cpu"
        device = jax_runtime.cpu_device() if on_cpu else jax_runtime.gpu_devices()[0]
        hits = jax_runtime.cache_events["hit"]
        start = time.perf_counter()
        built = compile_for(FUNCTIONS[(kernel, name)](shapes), shapes, dtype, device,
                            to_host=on_cpu)
        key = jax_builds.kernel_key(kernel, name, shapes, dtype, device_name)
        jax_builds.record_build(key, time.perf_counter() - start, hits)
        return built

    return build


def _cached(kernel: str, name: str, device_name: str) -> Callable[[Shapes, np.dtype], bool]:
    """Whether XLA's cache holds the build, by its marker (`jax_builds`), without JAX."""
    return lambda shapes, dtype: jax_builds.is_cached(
        jax_builds.kernel_key(kernel, name, shapes, dtype, device_name))


def _variants_on(device_name: str) -> list[Variant]:
    return [Variant(kernel=kernel, name=name, device=device_name, backend="jax",
                    build=_build(kernel, name, device_name),
                    complexity=complexity_of(kernel, name),
                    workspace_bytes=_workspace(name),
                    cached=_cached(kernel, name, device_name))
            for kernel, name in NAMES]


def variants() -> list[Variant]:
    """The JAX variants on the CPU, and on the GPU where JAX sees a CUDA one (probed only
    where a driver is)."""
    devices = ("cpu", "gpu") if "gpu" in available_devices() else ("cpu",)
    return [v for device in devices for v in _variants_on(device)]
