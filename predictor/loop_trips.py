"""A whole loop's time per trip at any trip count: a one-time cost and a cost per trip.

A loop model (`loop.<class>`) predicts the seconds of one trip from the loop's body
and its trips, because a call's fixed cost is shared by its trips: a trip of a
2-trip loop costs more than one of a 200-trip loop. Calibration drew loops of 2 to
a few hundred trips (`hardware.calibration.region_sampling`); beyond them the
network goes on shrinking the fixed cost's share without end. Asked for 10¹² trips
of `x = x * 0.5 + 1`, it predicted 1.6e-13 s a trip (0.16 s in all) for a loop
that ran for about an hour (3.6 ns a trip).

So beyond the most trips a model was trained on (T₂, kept in its summary as
`max_trips`), the loop is asked at T₁ = T₂/4 and at T₂, both within what it knows:
the cost of a trip is the slope between the two totals, the one-time cost what is
left of the total at T₂, and the total at T trips is `once + per_trip × T` —
linear in the trips, equal to the model's own total at T₂, and never less. Where
the totals do not grow from T₁ to T₂ (the network's wiggle), a trip costs the
mean at T₂, the most it can. Trip counts up to 2⁶³ stay finite: the features
take their logarithms, and the sum is of floats.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from annc.dsl.records import Query

FALLBACK_TRAINED_TRIPS = 16
"""The trips a loop model is trusted up to where its file does not say (files older
than `max_trips`): every loop calibration draws 2 to at least 16 trips."""
SHORTER = 4
"""T₁ = T₂ / SHORTER."""


def is_loop(kernel: str) -> bool:
    return kernel.startswith("loop.")


def trips_of(config: Query) -> int:
    """A loop configuration's trips: the last field of its summary."""
    return int(config.shapes[0][-1])


def trained_trips(summary: dict[str, Any]) -> int:
    """The most trips the loop model of this summary was trained on."""
    value = summary.get("max_trips")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
        return value
    return FALLBACK_TRAINED_TRIPS


def with_trips(config: Query, trips: int) -> Query:
    summary = config.shapes[0]
    return dataclasses.replace(config, shapes=((*summary[:-1], trips),))


def references(config: Query, trained: int) -> tuple[Query, Query] | None:
    """The configurations at T₁ and T₂ to read a loop beyond its model's trips from;
    None where the loop is within them."""
    if trips_of(config) <= trained:
        return None
    return (with_trips(config, max(1, trained // SHORTER)), with_trips(config, trained))


def per_trip_seconds(trips: int, trained: int, at_shorter: float, at_trained: float) -> float:
    """Seconds per trip of a loop of `trips` trips, from the model's seconds per trip at
    T₁ and T₂ (`references`); NaN where either is."""
    shorter = max(1, trained // SHORTER)
    total_shorter, total_trained = at_shorter * shorter, at_trained * trained
    per_trip = (total_trained - total_shorter) / (trained - shorter)
    if not 0 < per_trip <= at_trained:
        per_trip = at_trained
    once = total_trained - per_trip * trained
    return once / trips + per_trip
