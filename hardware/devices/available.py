"""The devices of this machine: finding them, and the CUDA GPU reached through JAX.

What a device is (`Device`, and the CPU) is `hardware.devices.device`'s, so that device
modules found here (`hardware.devices.opencl`) import it without importing this module back.
`available_devices()` finds what this machine has: the CPU always, a CUDA GPU
when JAX sees one, an OpenCL device when `hardware.devices.opencl` finds a platform.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

import numpy as np

from annc.hardware.devices.device import CPU, CpuDevice, Device

__all__ = ["CPU", "DEVICE_NAMES", "CpuDevice", "Device", "DeviceUnavailableError",
           "JaxGpuDevice", "available_devices", "get_device"]

DEVICE_NAMES = ("cpu", "gpu", "opencl")


class DeviceUnavailableError(LookupError):
    """The named device does not exist on this machine."""


class JaxGpuDevice(Device):
    """A CUDA GPU reached through JAX; handles are JAX arrays in its memory.

    CuPy variants run on this device too: they view its JAX arrays as CuPy arrays
    and return JAX arrays (`hardware.devices.cupy_runtime`). `put` and `get` also take a
    CuPy array, should one reach them.
    """

    name = "gpu"

    def __init__(self, device: Any) -> None:
        self._device = device
        self.description = f"{device.device_kind} (JAX device {device.id})"

    def put(self, array: np.ndarray) -> Any:
        import jax

        from annc.hardware.devices import cupy_runtime

        if cupy_runtime.is_cupy_array(array):  # already on a GPU: shared, not copied
            return cupy_runtime.to_jax(cupy_runtime.finished(array))
        return jax.device_put(array, self._device).block_until_ready()

    def get(self, handle: Any) -> np.ndarray:
        from annc.hardware.devices import cupy_runtime

        if cupy_runtime.is_cupy_array(handle):
            return handle.get()  # CuPy refuses np.asarray: it copies only when asked
        return np.asarray(handle)


NVIDIA_DRIVER_FILES = ("/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/dxg")
"""Where a CUDA driver shows itself (Linux; WSL's GPU bridge). Without any of them JAX
would find no GPU either, and importing JAX to ask costs about half a second."""


def _jax_gpu() -> Device | None:
    if not any(os.path.exists(path) for path in NVIDIA_DRIVER_FILES):
        return None
    from annc.hardware.devices import jax_runtime

    gpus = jax_runtime.gpu_devices()
    return JaxGpuDevice(gpus[0]) if gpus else None


def _opencl() -> Device | None:
    """The OpenCL device from `hardware.devices.opencl.opencl_device()`, if that module exists."""
    try:
        opencl = importlib.import_module("annc.hardware.devices.opencl")
    except ModuleNotFoundError as error:
        if error.name in ("annc.hardware.devices.opencl", "halide"):
            return None
        raise
    find = getattr(opencl, "opencl_device", None)
    return find() if find is not None else None


@functools.cache
def available_devices() -> dict[str, Device]:
    """Every device on this machine by name, `cpu` first; probed once per process."""
    devices: dict[str, Device] = {"cpu": CPU}
    for name, probe in (("gpu", _jax_gpu), ("opencl", _opencl)):
        device = probe()
        if device is not None:
            devices[name] = device
    return devices


def get_device(name: str) -> Device:
    """The device of that name, or `DeviceUnavailableError` if this machine lacks it."""
    devices = available_devices()
    if name not in devices:
        raise DeviceUnavailableError(
            f"device {name!r} is not available here (found: {', '.join(devices)})"
        )
    return devices[name]
