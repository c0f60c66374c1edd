"""What a device is: the interface every device implements, and the CPU.

A device holds operands in its own memory. `put` copies a host (numpy) array
onto the device and returns the device's handle; `get` copies a handle back to
a numpy array. On the CPU both are the identity. Finding the devices of this
machine is `hardware.devices.available`'s.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Device(ABC):
    name: str
    description: str = ""
    """What the device is, in words (e.g. the GPU's model), for `annc devices`."""

    @abstractmethod
    def put(self, array: np.ndarray) -> Any:
        """Copies a host array onto this device; returns once the copy is complete."""

    @abstractmethod
    def get(self, handle: Any) -> np.ndarray:
        """Copies a device-resident value back to the host as a numpy array."""


class CpuDevice(Device):
    name = "cpu"
    description = "the host CPU (numpy, JAX and Halide)"

    def put(self, array: np.ndarray) -> np.ndarray:
        return array

    def get(self, handle: Any) -> np.ndarray:
        return np.asarray(handle)


CPU = CpuDevice()
