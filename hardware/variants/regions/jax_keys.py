"""The marker key of a region jitted whole with JAX: what `jax_builds` keeps and asks
for, known without JAX (selection asks it; `jax_region` writes it after a build)."""

from __future__ import annotations

from typing import Any

from annc.hardware.variants import jax_builds
from annc.hardware.variants.regions.spec import RegionSpec, compiled_form


def region_key(spec: RegionSpec, device: str = "cpu") -> dict[str, Any]:
    """The marker key of a region jitted whole on `device` (a loop's trips left out:
    one build serves every trip count, see `regions.spec.compiled_form`)."""
    return jax_builds.build_key("jax-region", device, spec=compiled_form(spec).to_json())
