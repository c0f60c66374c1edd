"""Placement's incremental local search against the plain one it replaced."""

from __future__ import annotations

import math
import random

import pytest
from reference_placement import ReferencePlacement

from annc.passes.placement import copy_seconds, place
from annc.passes.sites import HOST, DataFlow, Site, Value

DEVICES = ("cpu", "gpu", "opencl")
SIZES = (64, 4096, 1 << 20)


def _flow(rng: random.Random, n_sites: int, n_inputs: int) -> DataFlow:
    """Random sites reading inputs and earlier results, now and then a later one (a
    loop-carried value, even the site's own result), sometimes the same value twice."""
    values = [Value(HOST, rng.choice(SIZES), 1) for _ in range(n_inputs)]
    trips = [rng.choice((1, 1, 10)) for _ in range(n_sites)]
    for i in range(n_sites):
        values.append(Value(i, rng.choice(SIZES), trips[i]))
    sites = []
    for i in range(n_sites):
        limit = n_inputs + i if rng.random() < 0.9 else len(values)
        operands = [rng.randrange(limit) for _ in range(rng.choice((1, 2, 2, 3)))]
        if rng.random() < 0.1:
            operands.append(operands[0])
        for v in operands:
            values[v].consumers.append(i)
        sites.append(Site(i, None, "k", (), "f32", trips[i], None, "",  # type: ignore[arg-type]
                          operands, n_inputs + i))
    for v in rng.sample(range(n_inputs, len(values)), min(3, n_sites)):
        values[v].consumers.append(HOST)
    return DataFlow(sites, values)


def _costs(rng: random.Random, flow: DataFlow) -> list[dict[str, float]]:
    return [{d: rng.choice((rng.uniform(1e-6, 1e-3), 1e-4, math.inf))
             for d in rng.sample(DEVICES, rng.randrange(1, 4))} for _ in flow.sites]


@pytest.mark.parametrize("seed", range(3))
def test_the_incremental_search_places_every_site_as_the_plain_one(seed: int) -> None:
    rng = random.Random(seed)
    for trial in range(100):
        links = {d: (rng.uniform(1e-6, 1e-4), rng.uniform(1e-11, 1e-9)) for d in DEVICES}
        if trial % 3 == 0:  # a device without a measured link: copies cost infinitely much
            links["gpu"] = (math.inf, 0.0)

        def transfer(n_bytes: int, source: str, target: str,
                     links: dict[str, tuple[float, float]] = links) -> float:
            return sum(links[d][0] + n_bytes * links[d][1]
                       for d in {source, target} - {"cpu"}) if source != target else 0.0

        flow = _flow(rng, rng.randrange(1, 60), rng.randrange(1, 6))
        costs = _costs(rng, flow)
        finite = [{d: c for d, c in options.items() if math.isfinite(c)} or dict(options)
                  for options in costs]
        expected = ReferencePlacement(flow, finite, transfer).best()
        placed = place(flow, costs, transfer)
        assert placed == expected
        assert copy_seconds(flow, placed, transfer) == ReferencePlacement(
            flow, finite, transfer).copies(placed)
