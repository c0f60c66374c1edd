"""Where a value lives while a plan runs: one immutable tensor and its copies on devices.

An operand is copied to an op's device only if it is not there yet, and results
come back to the host only when the function returns them (or a CPU op reads
them), so data moves only when it must.

A JAX kernel on the CPU reads its operands in place only where they start on a
64-byte boundary (see `hardware.devices.allocator`); a value that does not is moved onto
one once, before the first such kernel reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np

from annc.hardware.devices.allocator import aligned
from annc.hardware.devices.device import Device

SHARDS = "shards"
"""The copy of a value that no one device holds whole: a sharded region's output left
split over the mesh, or a distributed run's input that gives its rows on demand."""


class Partial(Protocol):
    """A value held in parts (under `SHARDS`): its whole is made only when asked for."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype: ...

    def whole(self) -> np.ndarray: ...


@dataclass(slots=True)
class Resident:
    """One tensor value and its copies, by device name. Values are immutable, so a copy
    once made stays valid; a copy between two devices goes through the host."""

    shape: tuple[int, ...]
    dtype: np.dtype
    copies: dict[str, object]
    host_aligned: bool = False
    """Whether the host copy is known to be C-contiguous on a 64-byte boundary (checked
    once: checking costs a microsecond, more than a small kernel)."""

    @staticmethod
    def on_host(array: np.ndarray) -> Resident:
        array = np.asarray(array)
        return Resident(tuple(array.shape), array.dtype, {"cpu": array})

    @staticmethod
    def of(value: np.ndarray | Partial) -> Resident:
        """A numpy array on the host, or a value in parts under `SHARDS`."""
        if isinstance(value, np.ndarray):
            return Resident.on_host(value)
        return Resident(tuple(value.shape), np.dtype(value.dtype), {SHARDS: value})

    def parts(self, devices: Mapping[str, Device]) -> object:
        """What a sharded region reads: the value in parts where it has them, else the
        aligned host copy."""
        held = self.copies.get(SHARDS)
        return held if held is not None else self.aligned_host(devices)

    def host(self, devices: Mapping[str, Device]) -> np.ndarray:
        if "cpu" not in self.copies:
            held = self.copies.get(SHARDS)
            if held is not None:
                self.copies["cpu"] = cast(Partial, held).whole()
                return np.asarray(self.copies["cpu"])
            name, handle = next(iter(self.copies.items()))
            self.copies["cpu"] = devices[name].get(handle)
        return np.asarray(self.copies["cpu"])

    def aligned_host(self, devices: Mapping[str, Device]) -> np.ndarray:
        """The host copy, moved once onto a 64-byte boundary if it is not on one, so
        that XLA reads it in place instead of copying it on every call."""
        if self.host_aligned:
            return self.copies["cpu"]  # type: ignore[return-value]
        array = self.copies["cpu"] = aligned(self.host(devices))
        self.host_aligned = True
        return array

    def on(self, device: Device, devices: Mapping[str, Device]) -> object:
        copy = self.copies.get(device.name)
        if copy is None:
            copy = self.copies[device.name] = device.put(self.host(devices))
        return copy
