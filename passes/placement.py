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
the op's own operands and result, with each value's readers counted per device,
so a sweep costs O(ops × devices × operands), however many ops read one value.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from annc.passes.sites import HOST, DataFlow

HOST_DEVICE = "cpu"
MAX_SWEEPS = 20
TOLERANCE = 1e-12
"""Seconds: a move must lower the total by more than this (rounding, not a gain)."""

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
        self.known: dict[tuple[int, str, str], float] = {}
        self.touched = [list({*site.operands, site.result}) for site in flow.sites]
        """Per site, the values a move of it changes the copies of."""

    def location(self, producer: int, devices: list[str]) -> str:
        return HOST_DEVICE if producer == HOST else devices[producer]

    def value_cost(self, value_id: int, devices: list[str]) -> float:
        value = self.flow.values[value_id]
        targets = {self.location(c, devices) for c in value.consumers}
        return self.copies_to(value_id, self.location(value.producer, devices), targets)

    def copies_to(self, value_id: int, source: str, readers: Iterable[str]) -> float:
        """The value made on `source`, copied to every device of `readers` but that one."""
        targets = sorted(set(readers) - {source})
        if not targets:
            return 0.0
        value = self.flow.values[value_id]
        return value.times * sum(self.seconds(value.bytes, source, t) for t in targets)

    def seconds(self, n_bytes: int, source: str, target: str) -> float:
        """`transfer`, asked once per size and pair of devices."""
        key = (n_bytes, source, target)
        if key not in self.known:
            self.known[key] = self.transfer(n_bytes, source, target)
        return self.known[key]

    def copies(self, devices: list[str]) -> float:
        return sum(self.value_cost(v, devices) for v in range(len(self.flow.values)))

    def total(self, devices: list[str]) -> float:
        return sum(self.costs[i][d] for i, d in enumerate(devices)) + self.copies(devices)

    def improve(self, devices: list[str]) -> list[str]:
        return _Search(self, devices).improve()

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
        starts = dict.fromkeys(tuple(start) for start in self.starts())  # often alike
        results = [self.improve(list(start)) for start in starts]
        return min(results, key=lambda devices: (self.total(devices), devices))


class _Search:
    """The local search from one start: sweeps of single-op moves while they lower the
    total.

    It keeps, per value, how many of its readers are on each device and what its copies
    cost, so that a move is scored in time independent of how many ops read the values
    it touches (a program's inputs may have hundreds of readers). A site none of whose
    values changed since it was last scored would score the same: the next sweep skips
    it, so a sweep that confirms a placement costs little."""

    def __init__(self, placement: Placement, devices: list[str]) -> None:
        self.placement = placement
        self.devices = list(devices)
        self.producers = [value.producer for value in placement.flow.values]
        self.operands = [site.operands for site in placement.flow.sites]
        self.readers: list[Counter[str]] = [
            Counter(placement.location(c, self.devices) for c in value.consumers)
            for value in placement.flow.values]
        self.cost = [self.value_cost(v) for v in range(len(placement.flow.values))]
        self.moves = 0
        self.changed = [0] * len(placement.flow.values)
        """After how many moves each value last changed."""
        self.scored = [-1] * len(placement.flow.sites)
        """After how many moves each site was last scored."""

    def value_cost(self, value_id: int) -> float:
        producer = self.producers[value_id]
        source = HOST_DEVICE if producer == HOST else self.devices[producer]
        readers = [d for d, n in self.readers[value_id].items() if n > 0 and d != source]
        return self.placement.copies_to(value_id, source, readers) if readers else 0.0

    def move(self, site: int, device: str) -> None:
        current = self.devices[site]
        for value_id in self.operands[site]:
            readers = self.readers[value_id]
            readers[current] -= 1
            readers[device] += 1
        self.devices[site] = device

    def improves(self, site: int, device: str) -> bool:
        """Whether moving the site to `device` lowers the total (by more than rounding).

        Where the site's own cost there is already no less than what it and its values
        cost now, it cannot: copies never cost less than nothing (and rounding is
        monotone, so the bound holds in floating point too)."""
        touched = self.placement.touched[site]
        costs = self.placement.costs[site]
        current = self.devices[site]
        before = costs[current] + sum(self.cost[v] for v in touched)
        if costs[device] - before >= -TOLERANCE:
            return False
        self.move(site, device)
        after = costs[device] + sum(self.value_cost(v) for v in touched)
        self.move(site, current)
        return after - before < -TOLERANCE

    def accept(self, site: int, device: str) -> None:
        self.move(site, device)
        self.moves += 1
        for value_id in self.placement.touched[site]:
            self.cost[value_id] = self.value_cost(value_id)
            self.changed[value_id] = self.moves

    def settled(self, site: int) -> bool:
        """Whether the site was scored after every change to its values."""
        return all(self.changed[v] <= self.scored[site] for v in self.placement.touched[site])

    def improve(self) -> list[str]:
        for _ in range(MAX_SWEEPS):
            moved = False
            for site, options in enumerate(self.placement.costs):
                if self.settled(site):
                    continue
                self.scored[site] = self.moves
                for device in options:
                    if device != self.devices[site] and self.improves(site, device):
                        self.accept(site, device)
                        moved = True
            if not moved:
                break
        return self.devices


def place(flow: DataFlow, costs: Sequence[dict[str, float]], transfer: Transfer) -> list[str]:
    """The device of every site; sites with no finite option keep their first device."""
    finite = [{d: c for d, c in options.items() if math.isfinite(c)} or dict(options)
              for options in costs]
    return Placement(flow, finite, transfer).best()


def copy_seconds(flow: DataFlow, devices: list[str], transfer: Transfer) -> float:
    """The copies a placement implies, in seconds."""
    return Placement(flow, [{}] * len(devices), transfer).copies(devices)
