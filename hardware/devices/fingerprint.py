"""The hardware fingerprint: what this machine is, as far as kernel timings care.

Measurements and trained models are keyed by `fingerprint().id`, a short hash
of the CPU model, core count, SIMD features, BLAS library, accelerators and
the versions of the libraries that generate code. It is the same on every run
on the same machine and software, and changes when any of those change.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SIMD_FEATURES = (
    "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "asimd", "sve",
)
"""The vector extensions that change what compiled code can use (x86 and Arm)."""

LIBRARIES = ("numpy", "jax", "jaxlib", "halide")
"""Their versions are always part of the fingerprint ("absent" where not installed)."""


@dataclass(frozen=True)
class Fingerprint:
    machine: str
    cpu_model: str
    cores: int
    simd: tuple[str, ...]
    blas: str
    accelerators: tuple[str, ...]
    versions: tuple[tuple[str, str], ...]

    @functools.cached_property
    def id(self) -> str:
        """12 hex digits of the SHA-256 of every field: stable across runs."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, **asdict(self), "versions": dict(self.versions)}


def _cpuinfo() -> dict[str, str]:
    """The first processor's entries of /proc/cpuinfo; empty where there is none."""
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return {}
    info: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def _blas() -> str:
    config = np.show_config(mode="dicts")
    blas = config.get("Build Dependencies", {}).get("blas", {})
    return f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _gpu_library_versions() -> tuple[tuple[str, str], ...]:
    """CuPy's version where it serves a GPU (it runs the CuPy variants); nothing
    elsewhere, so that machines without it keep the fingerprint they had."""
    from annc.hardware.devices.cupy_runtime import cupy_module

    cupy = cupy_module()
    return (("cupy", str(cupy.__version__)),) if cupy is not None else ()


def _accelerators() -> tuple[str, ...]:
    from annc.hardware.devices.available import available_devices

    return tuple(
        f"{name}: {device.description}"
        for name, device in available_devices().items() if name != "cpu"
    )


@functools.cache
def fingerprint() -> Fingerprint:
    """This machine's fingerprint (computed once per process)."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return Fingerprint(
        machine=platform.machine(),
        cpu_model=info.get("model name") or platform.processor() or "unknown",
        cores=os.cpu_count() or 1,
        simd=tuple(f for f in SIMD_FEATURES if f in flags),
        blas=_blas(),
        accelerators=_accelerators(),
        versions=tuple((name, _version(name)) for name in LIBRARIES) + _gpu_library_versions(),
    )
