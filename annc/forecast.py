"""Saying, before a long run starts, how long it is predicted to take and where it goes.

A run whose plan is predicted to take more than `LONG_RUN_S` gets one note on
standard error before it executes, e.g.

    note: this run is predicted to take about 3.5 hours (line 3 runs 10^12 times); Ctrl-C stops it

It still runs — a long run may be what the user wants — but a mistyped trip count
shows before the hour is spent, not after. The line named is where the plan's
costliest op or compiled region is (for a compiled loop, its body's first statement),
with how many times it runs.
"""

from __future__ import annotations

import math

from annc.passes.region_choice import fused_regions
from annc.passes.select_variants import Plan

LONG_RUN_S = 60.0
"""A run predicted to take longer is announced before it starts."""

_UNITS = (("years", 365.25 * 86400), ("days", 86400.0), ("hours", 3600.0),
          ("minutes", 60.0), ("seconds", 1.0))


def long_run_note(plan: Plan) -> str | None:
    """The note for a run predicted to take more than `LONG_RUN_S`; None for others."""
    total = plan.total_predicted_s
    if not math.isfinite(total) or total <= LONG_RUN_S:
        return None
    where = _costliest(plan)
    why = f" ({where})" if where else ""
    return (f"note: this run is predicted to take about {duration_in_words(total)}{why}; "
            "Ctrl-C stops it")


def _costliest(plan: Plan) -> str:
    """`line 3 runs 10^12 times`: the line of the op or compiled region that costs the
    most, where it runs more than once ("" where it runs once, or nothing has a cost)."""
    compiled = fused_regions(plan.regions)
    inside = {site for region in compiled for site in region.sites}
    costs: list[tuple[float, str, int]] = [
        (op.chosen.cost_s, op.site.loc, op.site.trips) for op in plan.ops
        if op.chosen is not None and op.site.index not in inside]
    costs += [(region.chosen.cost_s, region.loc,
               region.executions * (region.lowered.spec.trips or 1))
              for region in compiled if region.chosen is not None]
    finite = [c for c in costs if math.isfinite(c[0])]
    if not finite:
        return ""
    _, loc, trips = max(finite, key=lambda c: c[0])
    line = _line(loc)
    return f"line {line} runs {count_in_words(trips)} times" if line and trips > 1 else ""


def _line(loc: str) -> str:
    """The line of `file:line:column`; "" where there is none."""
    parts = loc.rsplit(":", 2)
    return parts[1] if len(parts) == 3 and parts[1].isdigit() else ""


def duration_in_words(seconds: float) -> str:
    """`1.2 hours`, `3 minutes`, `15 days`: in the largest unit of which there is at least
    one, to two significant figures below ten of it, to the unit above."""
    unit, scale = next(((u, s) for u, s in _UNITS if seconds >= s), _UNITS[-1])
    value = seconds / scale
    number = f"{value:.0f}" if value >= 9.95 else f"{value:.2g}"
    return f"{number} {unit.removesuffix('s') if number == '1' else unit}"


def count_in_words(count: int) -> str:
    """`10^12` for a power of ten from 10⁴ on, else the number with thousands separated
    (`1,500,000`)."""
    text = str(count)
    if count >= 10_000 and text.strip("0") == "1":
        return f"10^{len(text) - 1}"
    return f"{count:,}"
