"""The variant library: registered implementations of every kernel.

The library is built explicitly (`hardware.variants.library`): importing this package
registers only `numpy.reference`, which everything is checked against, and stays cheap
(no JAX, no Halide); `load_library()` adds every built-in source and installed plugin,
`load_variant` only the source a name needs.

Halide is optional: where it is not installed, the modules built on it are
skipped and `skipped_modules()` names them (the GPU machines lent to the
project run without Halide, whose wheel is too large to travel there). The
CuPy module returns no variants where CuPy or a GPU is missing.
"""

from collections.abc import Callable

import numpy as np

from annc.dsl.records import Query
from annc.hardware.variants.library import (
    BUILT_IN,
    OPTIONAL_LIBRARIES,
    PLUGIN_GROUP,
    Source,
    load_library,
    load_source,
    load_variant,
    missing_library_notes,
    plugin_notes,
    skipped_modules,
    variant_names,
)
from annc.hardware.variants.registry import (
    BUILT_IN_ORIGIN,
    KERNELS,
    Kernel,
    Shape,
    Shapes,
    Traits,
    UnknownVariantError,
    Variant,
    all_variants,
    get_variant,
    origin_of,
    register,
    unregister,
    variants_for,
)

load_source("annc.hardware.variants.reference")

LOAD_S = {"halide": 4.8e-4, "jax": 2.0e-2}
"""Seconds to load a cached build instead of compiling it, by back end: what selection
charges a build that `Variant.cached` (a kernel) or `regions.catalogue.cached` (a
region) says a persistent cache holds, in place of the model's compile time.

Measured by `benchmarks/build_loads.py --processes 5` (2026-12-07, the 2-core
reference machine, other work running beside it), each the median over fresh
processes of one build whose cache entry is there, the process's one-time costs paid
before the clock (a back end's start, which selection charges apart, the machine's
fingerprint, Halide's runtime):
- Halide: read, verify and dlopen a shared object, 0.48 ms (0.37–0.74) over 30
  loads of four regions (heat's and wave's bodies at 512², annc's schedule and
  Mullapudi2016's) and two kernels, against 91–142 ms to compile them;
- JAX: trace, lower and XLA's cache hit, 20 ms (13–103) over 25 loads of heat's and
  wave's whole loops at 512² and three kernels, against 20–110 ms to compile them.
  Unlike Halide's, a JAX load grows with the function: 13 ms for a matrix product,
  21–23 ms for a whole stencil loop, 32 ms for an FFT convolution.
"""


def traits_of(kernel: str, name: str, device: str, shapes: Shapes, dtype: str) -> Traits:
    """What a registered variant decided for these shapes (f32 or f64) that its model
    takes as features; () for most variants and for those not registered here."""
    load_library()
    try:
        variant = get_variant(kernel, name, device)
    except UnknownVariantError:
        return ()
    return variant.traits_at(shapes, dtype)


def query_of(kernel: str, name: str, device: str, shapes: Shapes, dtype: str,
             traits: Traits | None = None) -> Query:
    """A variant's query (`Variant.query`), also where the variant cannot run here (a
    lent GPU machine's, whose complexity `complexity_of` knows: it has no traits)."""
    load_library()
    try:
        variant = get_variant(kernel, name, device)
    except UnknownVariantError:
        variant = Variant(kernel, name, device, "", build=_not_here,
                          complexity=complexity_of(kernel, name, device))
    return variant.query(shapes, dtype, traits)


def _not_here(shapes: Shapes, dtype: np.dtype) -> Kernel:
    raise UnknownVariantError("this variant cannot run on this machine")


def complexity_of(kernel: str, name: str, device: str) -> Callable[[Shapes], float]:
    """A variant's complexity function, also where the variant cannot run.

    The GPU variants register only where a GPU is seen, but a lent GPU machine's
    measurements ship with the package, and training its models anywhere needs their
    complexities: those of the JAX and CuPy variants do not depend on the device.
    Raises `UnknownVariantError` for a variant that is neither registered nor one of those.
    """
    load_library()
    try:
        return get_variant(kernel, name, device).complexity
    except UnknownVariantError:
        if device != "gpu":
            raise
    from annc.hardware.variants import cupy_gpu, jax_xla

    if (kernel, name) in jax_xla.NAMES:
        return jax_xla.complexity_of(kernel, name)
    if kernel in KERNELS and name == ("cupy.fft" if kernel == "conv2d" else "cupy"):
        return cupy_gpu.complexity_of(kernel, name)
    raise UnknownVariantError(f"no variant {name!r} of {kernel!r} on {device!r} is known")


__all__ = [
    "BUILT_IN",
    "BUILT_IN_ORIGIN",
    "KERNELS",
    "LOAD_S",
    "OPTIONAL_LIBRARIES",
    "PLUGIN_GROUP",
    "Shape",
    "Shapes",
    "Source",
    "Traits",
    "UnknownVariantError",
    "Variant",
    "all_variants",
    "complexity_of",
    "get_variant",
    "load_library",
    "load_source",
    "load_variant",
    "missing_library_notes",
    "origin_of",
    "plugin_notes",
    "query_of",
    "register",
    "skipped_modules",
    "traits_of",
    "unregister",
    "variant_names",
    "variants_for",
]
