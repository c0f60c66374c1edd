"""Placing every kernel op of a function on a device, counting the copies between them.

The cost of a placement is the sum of each op's own cost on its device (its best
variant there: trip count × predicted time + compile time) and the cost of the
copies it implies. Tensors are immutable, so a value is copied to a device at
most once per instance: a value produced on device `a` and read on devices
`b ≠ a` costs `times × Σ_b transfer(bytes, a → b)`, where `times` is how often a
new instance of it is produced. Inputs and constants start on the host, and
results must end there.

Minimising this exactly is a graph-partitioning problem. We search locally,
which is exact for the placements that matter in practice and fast: start from
(1) every op on its own cheapest device, ignoring copies, and (2) every op on one
device, for each device; then move single ops to another device while that
lowers the total; keep the best result. Every move is scored incrementally from
the op's own operands and result, so a sweep costs O(ops × devices × fan-out).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from passes.sites import HOST, DataFlow

HOST_DEVICE = "cpu"
MAX_SWEEPS = 20

Transfer = Callable[[int, str, str], float]
"""seconds to copy `bytes` from one device to another."""


class Placement:
    def __init__(
        self,
        flow: DataFlow,
        costs: Sequence[dict[str, float]],
        transfer: Transfer,
    ) -> None:
        self.flow = flow
        self.costs = costs
        """Per site, its cost on each device it may run on."""
        self.transfer = transfer

    def location(self, producer: int, devices: list[str]) -> str:
        return HOST_DEVICE if producer == HOST else devices[producer]

    def value_cost(self, value_id: int, devices: list[str]) -> float:
        value = self.flow.values[value_id]
        source = self.location(value.producer, devices)
        targets = {self.location(c, devices) for c in value.consumers} - {source}
        return value.times * sum(self.transfer(value.bytes, source, t) for t in targets)

    def copies(self, devices: list[str]) -> float:
        return sum(self.value_cost(v, devices) for v in range(len(self.flow.values)))

    def total(self, devices: list[str]) -> float:
        return sum(self.costs[i][d] for i, d in enumerate(devices)) + self.copies(devices)

    def _move_delta(self, site: int, device: str, devices: list[str]) -> float:
        touched = {*self.flow.sites[site].operands, self.flow.sites[site].result}
        before = self.costs[site][devices[site]] + sum(
            self.value_cost(v, devices) for v in touched)
        current = devices[site]
        devices[site] = device
        after = self.costs[site][device] + sum(self.value_cost(v, devices) for v in touched)
        devices[site] = current
        return after - before

    def improve(self, devices: list[str]) -> list[str]:
        devices = list(devices)
        for _ in range(MAX_SWEEPS):
            moved = False
            for site, options in enumerate(self.costs):
                for device in options:
                    if device != devices[site] and self._move_delta(site, device, devices) < -1e-12:
                        devices[site] = device
                        moved = True
            if not moved:
                break
        return devices

    def starts(self) -> list[list[str]]:
        cheapest = [min(options, key=lambda d: (options[d], d)) for options in self.costs]
        everywhere = sorted({d for options in self.costs for d in options})
        starts = [cheapest]
        for device in everywhere:
            starts.append([device if device in options else cheapest[i]
                           for i, options in enumerate(self.costs)])
        return starts

    def best(self) -> list[str]:
        """The cheapest placement found; deterministic."""
        if all(len(options) <= 1 for options in self.costs):
            return [next(iter(options)) for options in self.costs]
        results = [self.improve(start) for start in self.starts()]
        return min(results, key=lambda devices: (self.total(devices), devices))


def place(flow: DataFlow, costs: Sequence[dict[str, float]], transfer: Transfer) -> list[str]:
    """The device of every site; sites with no finite option keep their first device."""
    finite = [{d: c for d, c in options.items() if math.isfinite(c)} or dict(options)
              for options in costs]
    return Placement(flow, finite, transfer).best()


def copy_seconds(flow: DataFlow, devices: list[str], transfer: Transfer) -> float:
    """The copies a placement implies, in seconds."""
    return Placement(flow, [{}] * len(devices), transfer).copies(devices)
