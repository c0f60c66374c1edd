"""The variant library: registered implementations of every kernel.

Importing this package registers only `numpy.reference` and stays cheap (no
JAX, no Halide); `load_library()` imports every variant module once.
"""

import importlib

from hardware.variants import reference as _reference  # noqa: F401  (registers numpy.reference)
from hardware.variants.registry import (
    KERNELS,
    Shape,
    Shapes,
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
    "hardware.variants.halide_cpu",
    "hardware.variants.halide_opencl",
)
"""Every module that registers variants; importing one registers its variants."""


def load_library() -> None:
    """Registers every variant of the library; calling it again does nothing.

    A module listed here that does not exist (yet) is skipped; any other import
    error is a bug and propagates.
    """
    for name in _LIBRARY_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise


__all__ = [
    "KERNELS",
    "Shape",
    "Shapes",
    "UnknownVariantError",
    "Variant",
    "all_variants",
    "get_variant",
    "load_library",
    "register",
    "variants_for",
]
