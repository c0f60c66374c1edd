"""The variant library, built explicitly from one list of sources.

A *source* is a module with a `variants()` function returning its `Variant`s; no module
registers anything when imported. The built-in sources are `BUILT_IN`; installed
packages add theirs through the entry-point group `annc.variants` (`PLUGIN_GROUP`),
each entry point naming such a function:

    [project.entry-points."annc.variants"]
    einsum = "annc_einsum:variants"

Every process that needs the library builds it with `load_library()` (selection, the
`--variant` override, calibration, the measuring worker, training, `annc variants`), so a
plugin's variants are listed, checked, forced, measured and chosen like the built-in ones.
`load_variant` imports only the source that claims a name (a run loads only the back
ends it needs); a name no built-in source claims is looked for among the plugins.

A source needing a missing optional library (Halide) is skipped and named; a plugin
that fails to load, returns something else than variants or reuses a built-in key is
left out with a note (`plugin_notes`), never a traceback. The plugins are read again
when `sys.path` changes, so the set of plugins is that of the path in use.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from annc.hardware.variants.registry import (
    BUILT_IN_ORIGIN,
    UnknownVariantError,
    Variant,
    get_variant,
    register,
    unregister,
    variants_for,
)

PLUGIN_GROUP = "annc.variants"
"""The entry-point group of variant plugins: each names a function returning variants."""

OPTIONAL_LIBRARIES = ("halide",)
"""Libraries annc works without: a built-in source that needs a missing one is skipped."""


@dataclass(frozen=True)
class Source:
    """A built-in module of variants, and which names it provides (for lazy loading)."""

    module: str
    claims: Callable[[str, str], bool]
    """Whether a variant of this name on this device is one of the module's. Only
    `load_variant` asks, to import no more than one module; `tests/test_variants.py`
    checks every claim against what the module returns."""


def _named(*names: str) -> Callable[[str, str], bool]:
    return lambda name, device: name in names


BUILT_IN: tuple[Source, ...] = (
    Source("annc.hardware.variants.reference", _named("numpy.reference")),
    Source("annc.hardware.variants.cpu_numpy", _named("numpy")),
    Source("annc.hardware.variants.algorithms", _named("strassen", "fft.numpy", "im2col",
                                                  "shifted")),
    Source("annc.hardware.variants.jax_xla", _named("jax", "fft.jax", "jax.lax")),
    Source("annc.hardware.variants.halide.cpu",
           lambda name, device: name.startswith("halide") and device == "cpu"),
    Source("annc.hardware.variants.halide.opencl",
           lambda name, device: name.startswith("halide") and device == "opencl"),
    Source("annc.hardware.variants.cupy_gpu", lambda name, device: name.startswith("cupy")),
)
"""Every built-in source, in the order the library is built."""

_LOADED: set[str] = set()
_SKIPPED: dict[str, str] = {}
_PLUGINS: dict[str, object] = {"path": None, "variants": [], "notes": []}


def load_source(module: str) -> None:
    """Registers the variants of one built-in source (once); skips one that needs a
    missing optional library. Any other import error is a bug and propagates."""
    if module in _LOADED or module in _SKIPPED:
        return
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name in OPTIONAL_LIBRARIES:
            _SKIPPED[module] = error.name
            return
        raise
    for variant in imported.variants():
        register(variant, BUILT_IN_ORIGIN)
    _LOADED.add(module)


def load_library() -> None:
    """Registers every built-in variant and every installed plugin's; cheap when nothing
    changed since the last call."""
    for source in BUILT_IN:
        load_source(source.module)
    load_plugins()


def load_variant(kernel: str, name: str, device: str = "cpu") -> Variant:
    """The registered variant, importing only the source that claims it where needed
    (the plugins where no built-in source does, the whole library as a last resort)."""
    try:
        return get_variant(kernel, name, device)
    except UnknownVariantError:
        pass
    claimed = [s.module for s in BUILT_IN if s.claims(name, device)]
    for module in claimed:
        load_source(module)
    if not claimed:
        load_plugins()
    try:
        return get_variant(kernel, name, device)
    except UnknownVariantError:
        load_library()
    return get_variant(kernel, name, device)


def variant_names(kernel: str, device: str | None = None) -> list[str]:
    """The names of every variant of `kernel` (on `device`, or on any), the installed
    plugins' included: what a verifier or an override may accept."""
    load_library()
    return sorted({v.name for v in variants_for(kernel, device)})


def load_plugins() -> None:
    """Registers the variants of every `annc.variants` entry point on the current path,
    replacing those read for another path."""
    path = tuple(sys.path)
    if _PLUGINS["path"] == path:
        return
    for variant in _plugin_variants():
        unregister(variant)
    variants: list[Variant] = []
    notes: list[str] = []
    for point in sorted(entry_points(group=PLUGIN_GROUP), key=lambda p: (p.value, p.name)):
        origin = _origin(point)
        try:
            found = list(_load_point(point))
            for variant in found:
                register(variant, origin)
                variants.append(variant)
        except Exception as error:  # a broken plugin is the plugin's problem, said once
            notes.append(f"note: variant plugin {point.name} = {point.value} ({origin}) is "
                         f"not loaded: {type(error).__name__}: {error}")
    _PLUGINS.update(path=path, variants=variants, notes=notes)


def _plugin_variants() -> list[Variant]:
    found = _PLUGINS["variants"]
    assert isinstance(found, list)
    return found


def _origin(point: EntryPoint) -> str:
    dist = point.dist
    return "plugin" if dist is None else f"{dist.name} {dist.version}"


def _load_point(point: EntryPoint) -> Iterable[Variant]:
    """The variants an entry point's function returns, all checked before any is kept."""
    function = point.load()
    if not callable(function):
        raise TypeError(f"{point.value} is not a function returning variants")
    found = list(function())
    for item in found:
        if not isinstance(item, Variant):
            raise TypeError(f"{point.value}() returned {type(item).__name__}, not a Variant")
        try:
            get_variant(*item.key)
        except UnknownVariantError:
            continue
        raise ValueError(f"variant {item.key} is already registered")
    return found


def plugin_notes() -> list[str]:
    """One line per plugin that failed to load, with why."""
    notes = _PLUGINS["notes"]
    assert isinstance(notes, list)
    return list(notes)


def skipped_modules() -> dict[str, str]:
    """Built-in sources `load_library` skipped, each with the missing library it needs."""
    return dict(_SKIPPED)


def missing_library_notes() -> list[str]:
    """One line per missing optional library, naming the variant modules it costs."""
    notes = []
    for library in sorted(set(_SKIPPED.values())):
        modules = ", ".join(m for m, needed in sorted(_SKIPPED.items()) if needed == library)
        notes.append(f"note: {library} is not installed: the variants of {modules} are "
                     "not registered")
    return notes
