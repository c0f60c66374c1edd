"""The region variants: the ways a region can run, and each one built once per process.

A region runs op by op (`ops`: every op with its own variant, always possible),
or compiled whole:

- `jax`: the whole region (a whole loop as `lax.fori_loop`) as one `jax.jit`
  function; XLA fuses the element-wise work into its producers.
- `halide`: one Halide pipeline with the element-wise work inlined into its
  producer, under annc's schedule (fused chains only, of the ops it supports).
- `halide.mullapudi2016`: the same pipeline scheduled by Halide's Mullapudi2016
  auto-scheduler, which is built for such pipelines.
- `numpy`: the ops in one numpy function, a transpose as a view that BLAS multiplies
  by directly (fused chains without a convolution).

The models know them as the combinations (`region.<class>` or `loop.<class>`,
variant, `cpu`), the class being the region's heaviest kind of op.

Builds outlive the process: a Halide region is compiled ahead of time into the build
cache, a JAX one into XLA's cache (with annc's marker of it); `cached` says whether a
build would be loaded from there, and `load_seconds` what that costs.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from annc.hardware.variants import LOAD_S
from annc.hardware.variants.compiled import count_build
from annc.hardware.variants.regions.spec import RegionSpec, compiled_form, region_class

OPS = "ops"
"""The variant that runs a region's ops one by one."""
REGION, LOOP = "region", "loop"
"""The models' names for a fused chain and for a whole loop (before the class)."""

RegionFunction = Callable[..., list[np.ndarray]]
"""A compiled region: the spec's inputs (numpy arrays) in, its outputs out."""


def kind(spec: RegionSpec) -> str:
    """The models' "kernel" for the spec: `region.<class>` or `loop.<class>`."""
    return f"{LOOP if spec.is_loop else REGION}.{region_class(spec)}"


def _build_jax(spec: RegionSpec) -> RegionFunction:
    from annc.hardware.variants.regions.jax_region import build_jax

    return build_jax(spec)


_SCHEDULES = {"halide": "annc", "halide.mullapudi2016": "mullapudi2016"}
"""The Halide region variants' schedules."""


def _halide(name: str) -> Callable[[RegionSpec], RegionFunction]:
    def build(spec: RegionSpec) -> RegionFunction:
        from annc.hardware.variants.regions.halide_region import build_halide

        return build_halide(spec, _SCHEDULES[name])

    return build


def _build_numpy(spec: RegionSpec) -> RegionFunction:
    from annc.hardware.variants.regions.numpy_region import build_numpy

    return build_numpy(spec)


def _numpy_why_not(spec: RegionSpec) -> str | None:
    from annc.hardware.variants.regions.numpy_region import numpy_supports

    return numpy_supports(spec)


def _jax_why_not(spec: RegionSpec) -> str | None:
    return None


def _halide_why_not(spec: RegionSpec) -> str | None:
    if spec.is_loop:
        return "Halide compiles fused chains, not whole loops"
    from annc.hardware.variants.regions.halide_support import halide_supports

    return halide_supports(spec)


@dataclass(frozen=True)
class RegionVariant:
    name: str
    device: str
    build: Callable[[RegionSpec], RegionFunction]
    why_not: Callable[[RegionSpec], str | None]
    """Why it cannot run a spec, or None where it can."""
    searches: bool = False
    """Whether its build searches for a schedule (see `registry.Variant.searches`)."""

    @property
    def backend(self) -> str:
        """The library that compiles it: `jax`, `halide` or `numpy`."""
        return self.name.split(".")[0]


VARIANTS: tuple[RegionVariant, ...] = (
    RegionVariant("jax", "cpu", _build_jax, _jax_why_not),
    RegionVariant("halide", "cpu", _halide("halide"), _halide_why_not),
    RegionVariant("halide.mullapudi2016", "cpu", _halide("halide.mullapudi2016"),
                  _halide_why_not, searches=True),
    RegionVariant("numpy", "cpu", _build_numpy, _numpy_why_not),
)


SHARDED = "jax.sharded"
"""The region split over the mesh of this program's devices (`sharded_region`); offered
only where there is a mesh (`passes.sharding_choice`), never calibrated on its own."""


SHARDED_GRID = "jax.sharded.grid"
"""The region's matrices split over the mesh's devices arranged as a 2-D grid
(`grid.grid_layout`); chosen over `SHARDED` by `passes.sharding_choice` where cheaper."""


def is_sharded(name: str) -> bool:
    """Whether the variant runs over the mesh (compiled in the run, for its mesh)."""
    return name in (SHARDED, SHARDED_GRID)


def _build_sharded(spec: RegionSpec) -> RegionFunction:
    from annc.hardware.variants.regions.sharded_region import build_sharded

    return build_sharded(spec)


def _build_sharded_grid(spec: RegionSpec) -> RegionFunction:
    from annc.hardware.variants.regions.sharded_region import build_sharded

    return build_sharded(spec, grid=True)


def why_not_sharded(spec: RegionSpec, grid: bool = False) -> str | None:
    from annc.hardware.devices.mesh import mesh_info
    from annc.hardware.variants.regions.grid import grid_layout
    from annc.hardware.variants.regions.sharding import layout, why_not_halo

    mesh = mesh_info()
    if mesh is None:
        return "this program has one device of its kind: no mesh to split it over"
    split = (grid_layout if grid else layout)(spec, mesh.size)
    return split if isinstance(split, str) else why_not_halo(spec, split)


def _why_not_grid(spec: RegionSpec) -> str | None:
    return why_not_sharded(spec, grid=True)


def region_variant(name: str) -> RegionVariant:
    if name == SHARDED:
        return RegionVariant(SHARDED, _mesh_device(), _build_sharded, why_not_sharded)
    if name == SHARDED_GRID:
        return RegionVariant(SHARDED_GRID, _mesh_device(), _build_sharded_grid,
                             _why_not_grid)
    for variant in VARIANTS:
        if variant.name == name:
            return variant
    known = ", ".join([OPS, *(v.name for v in VARIANTS), SHARDED, SHARDED_GRID])
    raise LookupError(f"no region variant {name!r}; region variants are {known}")


def _mesh_device() -> str:
    """The kind of the mesh's devices (`cpu` without a mesh)."""
    from annc.hardware.devices.mesh import mesh_info

    mesh = mesh_info()
    return mesh.device if mesh is not None else "cpu"


def variants_for(spec: RegionSpec, device: str) -> list[tuple[RegionVariant, str | None]]:
    """Every compiled variant on `device`, with why it cannot run `spec` (None: it can)."""
    return [(v, v.why_not(spec)) for v in VARIANTS if v.device == device]


_BUILT: dict[tuple[RegionSpec, str], tuple[RegionFunction, float]] = {}
"""Every build of this process, by the spec's `compiled_form` (a loop's trips left out)."""


def is_built(spec: RegionSpec, name: str) -> bool:
    return (compiled_form(spec), name) in _BUILT


def built(spec: RegionSpec, name: str) -> RegionFunction:
    """The variant compiled for the spec, compiled on first use (counted as a build).

    Loops that differ only in their trips share one build; the function returned for
    a loop runs `spec.trips` unless called with `trips=`."""
    key = (compiled_form(spec), name)
    if key not in _BUILT:
        start = time.perf_counter()
        function = region_variant(name).build(spec)
        seconds = time.perf_counter() - start
        _BUILT[key] = (function, seconds)
        count_build(seconds)
    function = _BUILT[key][0]
    return functools.partial(function, trips=spec.trips) if spec.is_loop else function


def build_seconds_of(spec: RegionSpec, name: str) -> float | None:
    """How long the variant took to build for the spec in this process, if it was."""
    entry = _BUILT.get((compiled_form(spec), name))
    return None if entry is None else entry[1]


def cached(spec: RegionSpec, name: str) -> bool:
    """Whether building the variant for the spec in this process would load it from a
    persistent cache rather than compile it: for Halide, the compiled region is in the
    build cache (and a C compiler is there to have made it); for JAX, the marker of an
    earlier build (`hardware.variants.jax_builds`). Imports no JAX; Halide, where it is
    installed, for the target (without it nothing Halide builds is cached)."""
    backend = region_variant(name).backend
    if is_sharded(name):  # compiled for the mesh of the run, in the run
        return False
    if backend == "jax":
        from annc.hardware.variants import jax_builds
        from annc.hardware.variants.regions.jax_keys import region_key

        return jax_builds.is_cached(region_key(spec))
    if backend == "halide" and _halide_why_not(spec) is None:
        try:
            from annc.hardware.variants.regions.halide_region import is_cached
        except ModuleNotFoundError as error:  # no Halide (the lent GPU machines): no cache
            if error.name != "halide":
                raise
            return False
        return is_cached(spec, _SCHEDULES[name])
    return False


def load_seconds(name: str) -> float:
    """What loading a cached build of the variant costs (`hardware.variants.LOAD_S`)."""
    return LOAD_S[region_variant(name).backend]


def clear_built() -> None:
    """Forgets every built region (their compiled code is freed when unreferenced)."""
    _BUILT.clear()
