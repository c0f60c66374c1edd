"""OpenCL as a second device, through Halide's OpenCL runtime.

`opencl_available()` asks the OpenCL ICD loader (with ctypes, without Halide) whether
a platform with a device exists; the answer is cached, and a machine without the
loader gets False at once. On machines with no GPU, PoCL provides a CPU-backed
platform (`apt-get install pocl-opencl-icd ocl-icd-libopencl1`), so the device is
real: it has its own memory and its own kernel compiler, and copies cost time.

Handles on this device are `halide.Buffer`s whose data lives in OpenCL memory:
`put` copies a numpy array there, `get` copies it back. Every Halide pipeline
that touches them must be compiled for `opencl_target()`, so that they share
the JIT's one OpenCL runtime (and so its context).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from annc.hardware.devices.device import Device

if TYPE_CHECKING:
    import halide as hl

OPENCL_LIBRARY = "OpenCL"
_CL_DEVICE_TYPE_ALL = 0xFFFFFFFF
_CL_DEVICE_NAME = 0x102B
_CL_DEVICE_EXTENSIONS = 0x1030
_CL_PLATFORM_NAME = 0x0902


@functools.cache
def _library(name: str = OPENCL_LIBRARY) -> ctypes.CDLL | None:
    """The loader, or None. On Linux it is opened by its soname, where the dynamic linker
    finds it: `ctypes.util.find_library` would run `ldconfig -p` and, where the library
    is missing, a C compiler and the linker (20 ms on the reference machine)."""
    for path in _library_paths(name):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _library_paths(name: str) -> list[str]:
    if sys.platform.startswith("linux"):
        return [f"lib{name}.so.1", f"lib{name}.so"]
    path = ctypes.util.find_library(name)
    return [path] if path else []


def _first_platform(cl: ctypes.CDLL) -> ctypes.c_void_p | None:
    count = ctypes.c_uint(0)
    if cl.clGetPlatformIDs(0, None, ctypes.byref(count)) != 0 or count.value == 0:
        return None
    platforms = (ctypes.c_void_p * count.value)()
    if cl.clGetPlatformIDs(count.value, platforms, None) != 0:
        return None
    return ctypes.c_void_p(platforms[0])


def _devices(cl: ctypes.CDLL, platform: ctypes.c_void_p) -> list[ctypes.c_void_p]:
    count = ctypes.c_uint(0)
    all_types = ctypes.c_uint64(_CL_DEVICE_TYPE_ALL)
    if cl.clGetDeviceIDs(platform, all_types, 0, None, ctypes.byref(count)) != 0:
        return []
    devices = (ctypes.c_void_p * count.value)()
    if cl.clGetDeviceIDs(platform, all_types, count.value, devices, None) != 0:
        return []
    return [ctypes.c_void_p(device) for device in devices]


def _info(query: Callable[..., int], handle: ctypes.c_void_p, key: int) -> str:
    size = ctypes.c_size_t(0)
    if query(handle, ctypes.c_uint(key), 0, None, ctypes.byref(size)) != 0:
        return ""
    value = ctypes.create_string_buffer(size.value)
    if query(handle, ctypes.c_uint(key), size, value, None) != 0:
        return ""
    return value.value.decode(errors="replace")


@functools.cache
def _probe(library: str = OPENCL_LIBRARY) -> tuple[str, tuple[str, ...]] | None:
    """(platform name, device descriptions with their extensions), or None."""
    cl = _library(library)
    if cl is None:
        return None
    platform = _first_platform(cl)
    if platform is None:
        return None
    devices = _devices(cl, platform)
    if not devices:
        return None
    described = tuple(
        _info(cl.clGetDeviceInfo, device, _CL_DEVICE_NAME)
        + "|" + _info(cl.clGetDeviceInfo, device, _CL_DEVICE_EXTENSIONS)
        for device in devices
    )
    return _info(cl.clGetPlatformInfo, platform, _CL_PLATFORM_NAME), described


def opencl_available(library: str = OPENCL_LIBRARY) -> bool:
    """Whether an OpenCL platform with at least one device exists (cached, quiet)."""
    return _probe(library) is not None


def opencl_supports_f64() -> bool:
    """Whether every device of the platform Halide uses has `cl_khr_fp64`."""
    probe = _probe()
    return probe is not None and all(
        "cl_khr_fp64" in device.split("|", 1)[1].split() for device in probe[1]
    )


def opencl_description() -> str:
    """The platform and device names, e.g. "Portable Computing Language: pthread-…"."""
    probe = _probe()
    if probe is None:
        return "no OpenCL platform"
    names = ", ".join(device.split("|", 1)[0] for device in probe[1])
    return f"{probe[0]}: {names}"


@functools.cache
def opencl_target() -> hl.Target:
    """The JIT target for OpenCL pipelines (with doubles when the devices have them)."""
    import halide as hl

    target = hl.get_jit_target_from_environment().with_feature(hl.TargetFeature.OpenCL)
    if opencl_supports_f64():
        target = target.with_feature(hl.TargetFeature.CLDoubles)
    return target


def halide_element_type(dtype: np.dtype) -> hl.Type:
    import halide as hl

    bits = {np.dtype(np.float32): 32, np.dtype(np.float64): 64}.get(np.dtype(dtype))
    if bits is None:
        raise ValueError(f"OpenCL handles hold f32 or f64, not {np.dtype(dtype)}")
    return hl.Float(bits)


class OpenCLDevice(Device):
    """The OpenCL device; handles are Halide buffers resident in its memory."""

    name = "opencl"

    def __init__(self) -> None:
        self.description = f"OpenCL ({opencl_description()}) through Halide"

    def put(self, array: np.ndarray) -> hl.Buffer:
        """A new Halide buffer holding a copy of `array`, copied to the device."""
        import halide as hl

        array = np.asarray(array)
        buffer = hl.Buffer(halide_element_type(array.dtype), list(reversed(array.shape)))
        np.asarray(buffer)[...] = array
        buffer.set_host_dirty(True)
        _check(buffer.copy_to_device(opencl_target()), "copy to the OpenCL device")
        _check(buffer.device_sync(), "device sync")
        return buffer

    def get(self, handle: hl.Buffer) -> np.ndarray:
        """A numpy copy of the buffer's data, copied back from the device if newer there."""
        _check(handle.copy_to_host(), "copy from the OpenCL device")
        return np.array(handle, copy=True)


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"Halide OpenCL runtime: {what} failed (error {status})")


def halide_installed() -> bool:
    """Whether the halide package can be imported: the device's copies go through it."""
    try:
        return importlib.util.find_spec("halide") is not None
    except ValueError:  # a halide module without a spec: treat it as absent
        return False


@functools.cache
def opencl_device() -> OpenCLDevice | None:
    """The OpenCL device, or None where there is no OpenCL platform or no Halide."""
    return OpenCLDevice() if opencl_available() and halide_installed() else None
