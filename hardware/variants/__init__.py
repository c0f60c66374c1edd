"""The variant library: registered implementations of every kernel."""

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

__all__ = [
    "KERNELS",
    "Shape",
    "Shapes",
    "UnknownVariantError",
    "Variant",
    "all_variants",
    "get_variant",
    "register",
    "variants_for",
]
