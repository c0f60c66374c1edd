"""The catalogue of variants: every registered implementation of every kernel.

A *variant* is one implementation of one kernel on one device. It knows how to
build itself for given operand shapes and dtype (compiling a Halide pipeline or
tracing a JAX function happens there, once), its mathematical complexity (the
feature the predictor is augmented with), the extra memory it needs, and whether
it applies to given shapes at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annc.dsl import kernels
from annc.dsl.records import Combination, Query

Shape = kernels.Shape
Shapes = kernels.Shapes
Kernel = Callable[..., Any]
"""A built variant: takes device-resident operands, returns the device-resident result."""

Traits = tuple[tuple[str, float], ...]
"""Named decisions a variant made for one configuration, such as `(("fused", 1.0),)`."""

KERNELS = kernels.NAMES
"""Every kernel of the language, as `dsl.kernels` defines them."""


def _always(shapes: Shapes, dtype: np.dtype) -> bool:
    return True


def _no_workspace(shapes: Shapes, itemsize: int) -> int:
    return 0


def _never_cached(shapes: Shapes, dtype: np.dtype) -> bool:
    return False


@dataclass(frozen=True)
class Variant:
    """One registered implementation of a kernel on a device."""

    kernel: str
    name: str
    device: str
    backend: str
    build: Callable[[Shapes, np.dtype], Kernel] = field(compare=False, repr=False)
    complexity: Callable[[Shapes], float] = field(compare=False, repr=False)
    workspace_bytes: Callable[[Shapes, int], int] = field(
        default=_no_workspace, compare=False, repr=False
    )
    applies: Callable[[Shapes, np.dtype], bool] = field(
        default=_always, compare=False, repr=False
    )
    cached: Callable[[Shapes, np.dtype], bool] = field(
        default=_never_cached, compare=False, repr=False
    )
    """Whether a build for these shapes would be loaded from the persistent build cache
    (`hardware.variants.halide.build_cache`) rather than compiled."""
    traits: Callable[[Shapes, str], Traits] | None = field(
        default=None, compare=False, repr=False
    )
    """What the variant decides per shape that its run time switches with, by name, for
    shapes and a dtype (`f32`, `f64`): features of its performance model
    (`hardware.variants.halide.schedule_traits`). None for most variants."""
    searches: bool = field(default=False, compare=False)
    """Whether its build searches for a schedule (Halide's auto-schedulers: Adams2019 takes
    seconds to tens of seconds, inside Halide, which holds Python's lock all along): a
    run that waits for such a build has a child process make it
    (`hardware.execution.foreground`), so that Ctrl-C is answered meanwhile."""

    @property
    def key(self) -> Combination:
        return Combination(self.kernel, self.name, self.device)

    def traits_at(self, shapes: Shapes, dtype: str) -> Traits:
        """Its traits for these shapes and dtype: () for a variant without any."""
        return () if self.traits is None else self.traits(shapes, dtype)

    def query(self, shapes: Shapes, dtype: str, traits: Traits | None = None) -> Query:
        """What a cost model is asked about this variant at these shapes and dtype (`f32`,
        `f64`): its complexity, the augmentation, and its traits — its own (None; an
        auto-scheduler's decisions, made here or found in the build cache), or those
        given (`()` where the model takes none, so that no schedule is made for them).
        The one place a kernel's query is built."""
        own = self.traits_at(shapes, dtype) if traits is None else traits
        return Query(self.kernel, shapes, dtype, float(self.complexity(shapes)), own)


class UnknownVariantError(LookupError):
    """No variant of that name is registered for the kernel and device."""


_REGISTRY: dict[tuple[str, str, str], Variant] = {}
_ORIGINS: dict[tuple[str, str, str], str] = {}

BUILT_IN_ORIGIN = "built-in"
"""The origin of the variants of annc's own modules (`hardware.variants.library.BUILT_IN`)."""


def register(variant: Variant, origin: str = "registered in this process") -> Variant:
    """Adds a variant to the catalogue, with where it comes from: `built-in`, a plugin's
    distribution and version, or a caller's own (the default). A second entry with the
    same key is a bug. The library (`hardware.variants.library`) registers every
    built-in and plugin variant; a caller registers its own only for a while."""
    if variant.kernel not in KERNELS:
        raise ValueError(f"unknown kernel {variant.kernel!r}")
    if variant.key in _REGISTRY:
        raise ValueError(f"variant {variant.key} registered twice")
    _REGISTRY[variant.key] = variant
    _ORIGINS[variant.key] = origin
    _BY_KERNEL.clear()
    return variant


def unregister(variant: Variant) -> None:
    """Removes a registered variant (one a test or a plugin registered for a while)."""
    if _REGISTRY.get(variant.key) is variant:
        del _REGISTRY[variant.key]
        del _ORIGINS[variant.key]
        _BY_KERNEL.clear()


def origin_of(variant: Variant) -> str:
    """Where a registered variant comes from (see `register`)."""
    return _ORIGINS[variant.key]


_BY_KERNEL: dict[tuple[str, str | None], list[Variant]] = {}
"""`variants_for` answers, built on first use and dropped whenever a variant registers."""


def all_variants() -> Iterator[Variant]:
    """Every registered variant, in a stable order."""
    return iter(sorted(_REGISTRY.values(), key=lambda v: v.key))


def variants_for(kernel: str, device: str | None = None) -> list[Variant]:
    """The variants of one kernel, optionally on one device, in a stable order."""
    key = (kernel, device)
    if key not in _BY_KERNEL:
        _BY_KERNEL[key] = [
            v for v in all_variants()
            if v.kernel == kernel and (device is None or v.device == device)
        ]
    return list(_BY_KERNEL[key])


def get_variant(kernel: str, name: str, device: str = "cpu") -> Variant:
    try:
        return _REGISTRY[(kernel, name, device)]
    except KeyError:
        known = ", ".join(v.name for v in variants_for(kernel, device)) or "none"
        raise UnknownVariantError(
            f"{kernel} has no variant {name!r} on {device} (known: {known})"
        ) from None
