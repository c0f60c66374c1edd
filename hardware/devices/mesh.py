"""The mesh of this program's devices: every device of one kind that JAX sees, across
every process of a `jax.distributed` run, on one axis.

A machine with one device of its kind (the normal case) has no mesh, and nothing
sharded is offered. Several CPU devices exist where JAX is told to simulate them
(`JAX_NUM_CPU_DEVICES=8`, or XLA's `--xla_force_host_platform_device_count`); several
GPUs where a node has them; several processes after `jax.distributed.initialize`
(`annc run --distributed`), whose devices JAX lists together.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

AXIS = "devices"
"""The mesh's one axis: a sharded value is split by rows over it."""

HOSTS = "ANNC_HOSTS"
"""The environment variable that says how many hosts a `jax.distributed` run's
processes are on: set by `annc run --distributed` and `annc calibrate --distributed`
when the processes join (they compare their host names); left out, a mesh of several
processes counts one host per process."""


@dataclass(frozen=True)
class MeshInfo:
    """What selection needs to know of the mesh, without JAX types."""

    device: str
    """annc's name of its devices' kind: `cpu` or `gpu`."""
    size: int
    processes: int
    hosts: int = 1

    @property
    def local(self) -> int:
        """Devices per process: on a CPU mesh they share their process's cores."""
        return max(self.size // max(self.processes, 1), 1)

    def describe(self) -> str:
        hosts = f"{self.hosts} host{'s' if self.hosts > 1 else ''}"
        where = f" in {self.processes} processes on {hosts}" if self.processes > 1 else ""
        return f"{self.size} {self.device} devices{where}"


@functools.cache
def process_mesh() -> Any | None:
    """The mesh (`jax.sharding.Mesh`) of the default backend's devices, or None where
    there is only one. Asked once per process (after `jax.distributed.initialize`, if
    the run is distributed)."""
    import jax
    import numpy as np

    from annc.hardware.devices import jax_runtime  # noqa: F401  (annc's JAX settings first)

    devices = jax.devices()
    if len(devices) < 2:
        return None
    return jax.sharding.Mesh(np.array(devices), (AXIS,))


NVIDIA_DRIVER_FILES = ("/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/dxg")
"""Where a CUDA driver shows itself (as `available._jax_gpu` looks for it)."""


def _count(text: str | None) -> int:
    try:
        return int(text or 1)
    except ValueError:
        return 1


def may_have_mesh() -> bool:
    """Whether this process can have several devices of one kind, answered without
    starting JAX where it cannot: selection does not import JAX otherwise (0.34 s).
    Several devices need simulated CPU devices (`JAX_NUM_CPU_DEVICES`, XLA's
    `--xla_force_host_platform_device_count`, or `jax_num_cpu_devices` set in this
    process), a GPU driver, or a `jax.distributed` run."""
    if _count(os.environ.get("JAX_NUM_CPU_DEVICES")) > 1:
        return True
    forced = re.search(r"xla_force_host_platform_device_count=(\d+)",
                       os.environ.get("XLA_FLAGS", ""))
    if forced is not None and int(forced.group(1)) > 1:
        return True
    if any(os.path.exists(path) for path in NVIDIA_DRIVER_FILES):
        return True
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    return bool(jax.distributed.is_initialized()) or _count(
        str(jax.config.jax_num_cpu_devices)) > 1


def mesh_info() -> MeshInfo | None:
    """The mesh's kind, size and processes, or None without a mesh (asking JAX only
    where `may_have_mesh`)."""
    if not may_have_mesh():
        return None
    mesh = process_mesh()
    if mesh is None:
        return None
    import jax

    platform = mesh.devices.flat[0].platform
    processes = int(jax.process_count())
    hosts = 1 if processes == 1 else min(max(_count(os.environ.get(HOSTS, str(processes))), 1),
                                         processes)
    return MeshInfo("gpu" if platform in ("gpu", "cuda", "rocm") else "cpu",
                    int(mesh.devices.size), processes, hosts)
