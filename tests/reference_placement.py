"""The reference for placement: the plain local search, every move scored from scratch.

This is how `passes.placement` searched before it kept per-value reader counts and
copy costs and skipped what could not change: the same starts, the same sweeps in the
same order, the same tolerance. Tests check that the faster search places every site
on the same device.
"""

from __future__ import annotations

from collections.abc import Sequence

from annc.passes.placement import HOST_DEVICE, MAX_SWEEPS, Transfer
from annc.passes.sites import HOST, DataFlow


class ReferencePlacement:
    def __init__(self, flow: DataFlow, costs: Sequence[dict[str, float]],
                 transfer: Transfer) -> None:
        self.flow = flow
        self.costs = costs
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

    def move_delta(self, site: int, device: str, devices: list[str]) -> float:
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
                    if device != devices[site] and self.move_delta(site, device, devices) < -1e-12:
                        devices[site] = device
                        moved = True
            if not moved:
                break
        return devices

    def best(self) -> list[str]:
        if all(len(options) <= 1 for options in self.costs):
            return [next(iter(options)) for options in self.costs]
        cheapest = [min(options, key=lambda d: (options[d], d)) for options in self.costs]
        everywhere = sorted({d for options in self.costs for d in options})
        starts = [cheapest] + [[d if d in options else cheapest[i]
                                for i, options in enumerate(self.costs)] for d in everywhere]
        results = [self.improve(start) for start in starts]
        return min(results, key=lambda devices: (self.total(devices), devices))
