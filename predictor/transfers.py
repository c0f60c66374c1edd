"""The transfer model: how long copying bytes between the host and a device takes.

Per device and direction, `seconds = latency + bytes * seconds_per_byte`, fitted by
least squares (in relative error) to copies measured at several sizes. Copies
between two devices go through the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HOST = "cpu"
DIRECTIONS = ("to_device", "to_host")


@dataclass(frozen=True)
class Link:
    latency_s: float
    seconds_per_byte: float

    def seconds(self, n_bytes: float) -> float:
        return self.latency_s + n_bytes * self.seconds_per_byte

    @staticmethod
    def fit(sizes: Sequence[float], seconds: Sequence[float]) -> Link:
        """Least squares weighted by 1/t, so small and large copies count alike."""
        x, t = np.asarray(sizes, dtype=float), np.asarray(seconds, dtype=float)
        design = np.stack([np.ones_like(x), x], axis=1) / t[:, None]
        (latency, per_byte), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
        return Link(max(float(latency), 0.0), max(float(per_byte), 0.0))


@dataclass(frozen=True)
class TransferModel:
    links: dict[tuple[str, str], Link]
    """(device, direction) -> Link."""

    def seconds(self, n_bytes: float, source: str, target: str) -> float:
        """Time to make a value on `source` available on `target` (0 if they are equal)."""
        if source == target:
            return 0.0
        total = 0.0
        if source != HOST:
            total += self._link(source, "to_host").seconds(n_bytes)
        if target != HOST:
            total += self._link(target, "to_device").seconds(n_bytes)
        return total

    def _link(self, device: str, direction: str) -> Link:
        link = self.links.get((device, direction))
        return link if link is not None else Link(float("inf"), 0.0)

    def to_json(self) -> dict[str, dict[str, list[float]]]:
        result: dict[str, dict[str, list[float]]] = {}
        for (device, direction), link in sorted(self.links.items()):
            result.setdefault(device, {})[direction] = [link.latency_s, link.seconds_per_byte]
        return result

    @staticmethod
    def from_json(data: dict[str, dict[str, list[float]]]) -> TransferModel:
        links = {}
        for device, directions in data.items():
            for direction, (latency, per_byte) in directions.items():
                if direction not in DIRECTIONS:
                    raise ValueError(f"unknown transfer direction {direction!r}")
                links[(str(device), direction)] = Link(float(latency), float(per_byte))
        return TransferModel(links)
