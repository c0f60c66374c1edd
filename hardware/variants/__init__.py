"""The variant library: registered implementations of every kernel.

Importing this package registers only `numpy.reference` and stays cheap (no
JAX, no Halide); `load_library()` imports every variant module once.

Halide is optional: where it is not installed, the modules built on it are
skipped and `skipped_modules()` names them (the GPU machines lent to the
project run without Halide, whose wheel is too large to travel there). The
CuPy module registers nothing where CuPy or a GPU is missing.
"""

import importlib
from collections.abc import Callable

from hardware.variants import reference as _reference
from hardware.variants.registry import (
    KERNELS,
    Shape,
    Shapes,
    Traits,
    UnknownVariantError,
    Variant,
    all_variants,
    get_variant,
    register,
    variants_for,
)

_LIBRARY_MODULES = (
    "hardware.variants.cpu_numpy",
    "hardware.variants.algorithms",
    "hardware.variants.jax_xla",
    "hardware.variants.halide.cpu",
    "hardware.variants.halide.opencl",
    "hardware.variants.cupy_gpu",
)
"""Every module that registers variants; importing one registers its variants."""

OPTIONAL_LIBRARIES = ("halide",)
"""Libraries annc works without: a variant module that needs a missing one is skipped."""

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

_SKIPPED: dict[str, str] = {}


def module_of(name: str, device: str) -> str | None:
    """The module that registers variant `name` on `device` (None: always registered)."""
    if name == _reference.REFERENCE:
        return None
    if name.startswith("halide"):
        return f"hardware.variants.halide.{'opencl' if device == 'opencl' else 'cpu'}"
    if name.startswith("cupy"):
        return "hardware.variants.cupy_gpu"
    if name in ("jax", "fft.jax", "jax.lax"):
        return "hardware.variants.jax_xla"
    if name == "numpy":
        return "hardware.variants.cpu_numpy"
    return "hardware.variants.algorithms"


def load_variant(kernel: str, name: str, device: str = "cpu") -> Variant:
    """The registered variant, importing only the module that registers it where needed."""
    try:
        return get_variant(kernel, name, device)
    except UnknownVariantError:
        module = module_of(name, device)
        if module is None:
            raise
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
    return get_variant(kernel, name, device)


def load_library() -> None:
    """Registers every variant of the library; calling it again does nothing.

    A module listed here that does not exist (yet), or that needs an optional
    library that is not installed, is skipped (see `skipped_modules`); any
    other import error is a bug and propagates.
    """
    for name in _LIBRARY_MODULES:
        if name in _SKIPPED:
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name in OPTIONAL_LIBRARIES:
                _SKIPPED[name] = error.name
            elif error.name != name:
                raise


def traits_of(kernel: str, name: str, device: str, shapes: Shapes, dtype: str) -> Traits:
    """What a registered variant decided for these shapes (f32 or f64) that its model
    takes as features; () for most variants and for those not registered here."""
    load_library()
    try:
        variant = get_variant(kernel, name, device)
    except UnknownVariantError:
        return ()
    return variant.traits_at(shapes, dtype)


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
    from hardware.variants import cupy_gpu, jax_xla

    if (kernel, name) in jax_xla.NAMES:
        return jax_xla.complexity_of(kernel, name)
    if kernel in KERNELS and name == ("cupy.fft" if kernel == "conv2d" else "cupy"):
        return cupy_gpu.complexity_of(kernel, name)
    raise UnknownVariantError(f"no variant {name!r} of {kernel!r} on {device!r} is known")


def skipped_modules() -> dict[str, str]:
    """Variant modules `load_library` skipped, each with the missing library it needs."""
    return dict(_SKIPPED)


def missing_library_notes() -> list[str]:
    """One line per missing optional library, naming the variant modules it costs."""
    notes = []
    for library in sorted(set(_SKIPPED.values())):
        modules = ", ".join(m for m, needed in sorted(_SKIPPED.items()) if needed == library)
        notes.append(f"note: {library} is not installed: the variants of {modules} are "
                     "not registered")
    return notes


__all__ = [
    "KERNELS",
    "LOAD_S",
    "Shape",
    "Shapes",
    "Traits",
    "UnknownVariantError",
    "Variant",
    "all_variants",
    "complexity_of",
    "get_variant",
    "load_library",
    "load_variant",
    "missing_library_notes",
    "module_of",
    "register",
    "skipped_modules",
    "traits_of",
    "variants_for",
]
