"""A build as a job: what to build (a kernel variant for shapes and a dtype, or a region
variant for a region spec), whether it is ready, and building or loading it here.

A job is plain data with a JSON form, so that a helper process
(`hardware.execution.build_worker`) can build it beside a run and keep it in the
persistent caches (annc's build cache for Halide, XLA's compilation cache for JAX);
the running process then *loads* it — a third of a millisecond for a Halide kernel,
a few tens of milliseconds of tracing for a JAX function — instead of compiling.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from annc.dsl import dtypes
from annc.hardware.variants import load_variant
from annc.hardware.variants.compiled import compiled, is_built, normalise_shapes
from annc.hardware.variants.regions import catalogue
from annc.hardware.variants.regions.spec import RegionSpec
from annc.hardware.variants.registry import Kernel, Shapes, Variant

KERNEL, REGION = "kernel", "region"


@dataclass(frozen=True)
class BuildJob:
    """One build: of a kernel variant (`kernel`, `shapes`, `dtype`) or of a region
    variant (`spec`), named `variant`, on `device`."""

    kind: str
    variant: str
    device: str
    kernel: str = ""
    shapes: Shapes = ()
    dtype: str = ""
    """numpy's name of the dtype (`float32`, `float64`)."""
    spec: RegionSpec | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "variant": self.variant,
                                "device": self.device}
        if self.kind == KERNEL:
            data.update(kernel=self.kernel, shapes=[list(s) for s in self.shapes],
                        dtype=self.dtype)
        else:
            assert self.spec is not None
            data["spec"] = self.spec.to_json()
        return data

    @staticmethod
    def from_json(data: dict[str, Any]) -> BuildJob:
        """The job of `to_json`'s form; KeyError, TypeError or ValueError where it is not."""
        kind = str(data["kind"])
        variant, device = str(data["variant"]), str(data["device"])
        if kind == KERNEL:
            return BuildJob(KERNEL, variant, device, kernel=str(data["kernel"]),
                            shapes=normalise_shapes(data["shapes"]),
                            dtype=np.dtype(str(data["dtype"])).name)
        if kind == REGION:
            return BuildJob(REGION, variant, device, spec=RegionSpec.from_json(data["spec"]))
        raise ValueError(f"unknown build kind {kind!r}")

    @functools.cached_property
    def key(self) -> str:
        """What identifies the build (two ops of one kernel on one shape share it)."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    @property
    def label(self) -> str:
        """The build in words, e.g. `conv2d 1024x1024 3x3 f32 as halide.direct`."""
        if self.kind == KERNEL:
            sizes = " ".join("x".join(map(str, s)) or "()" for s in self.shapes)
            what = f"{self.kernel} {sizes} {dtypes.from_numpy(np.dtype(self.dtype))}"
        else:
            assert self.spec is not None
            what = f"{catalogue.kind(self.spec)} region of {len(self.spec.ops)} ops"
        return f"{what} as {self.variant}"

    def _variant(self) -> Variant:
        return load_variant(self.kernel, self.variant, self.device)

    def built_here(self) -> bool:
        """Whether this process has built it already."""
        if self.kind == KERNEL:
            return is_built(self._variant(), self.shapes, np.dtype(self.dtype))
        assert self.spec is not None
        return catalogue.is_built(self.spec, self.variant)

    def kept(self) -> bool:
        """Whether building it here would load it from a persistent cache."""
        if self.kind == KERNEL:
            return self._variant().cached(self.shapes, np.dtype(self.dtype))
        assert self.spec is not None
        return catalogue.cached(self.spec, self.variant)

    @property
    def searches(self) -> bool:
        """Whether building it searches for a schedule (an auto-scheduler)."""
        if self.kind == KERNEL:
            return self._variant().searches
        return catalogue.region_variant(self.variant).searches

    def ready(self) -> bool:
        """Whether it can run here without compiling: built here, or kept."""
        return self.built_here() or self.kept()

    def build(self) -> Kernel:
        """Builds it in this process (loading it where it is kept); returns what runs."""
        if self.kind == KERNEL:
            return compiled(self._variant(), self.shapes, np.dtype(self.dtype)).kernel
        assert self.spec is not None
        return catalogue.built(self.spec, self.variant)


def kernel_job(variant: Variant, shapes: Shapes, dtype: np.dtype) -> BuildJob:
    return BuildJob(KERNEL, variant.name, variant.device, kernel=variant.kernel,
                    shapes=normalise_shapes(shapes), dtype=np.dtype(dtype).name)


def region_job(spec: RegionSpec, name: str) -> BuildJob:
    return BuildJob(REGION, name, catalogue.region_variant(name).device, spec=spec)
