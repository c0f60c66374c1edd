"""`annc explain`: every candidate of every op with its predicted time, and the choice;
then every region's candidates (its ops one by one, or a compiled whole) and why one won."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from annc.commands.common import (
    add_program_arguments,
    add_selection_arguments,
    add_target_argument,
    compact_shapes,
    defines,
    print_notes,
    short_time,
    targets,
)
from annc.commands.tables import (
    CHOSEN,
    Fitted,
    add_wide_argument,
    compact_table,
    console_for,
    note_keys,
    notes_grid,
    print_fitted,
    right,
)
from annc.compiler import compile_program, read_source
from annc.passes.candidates import Candidate, OpPlan
from annc.passes.region_choice import RegionPlan
from annc.passes.select_variants import Plan

HELP = "show every candidate variant and device of every op, its predicted time, and why " \
       "the chosen one won"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_program_arguments(parser)
    add_target_argument(parser)
    parser.add_argument("--report", choices=("table", "json"), default="table",
                        help="tables (default) or one JSON object on standard output")
    add_wide_argument(parser)
    add_selection_arguments(parser)


def _interval(c: Candidate) -> str:
    """The 90% interval's upper end, relative to the prediction (it is symmetric in log)."""
    if c.high_s is None or not c.predicted_s:
        return "-"
    return f"±{c.high_s / c.predicted_s - 1:.0%}"


def _basis(c: Candidate) -> str:
    """A mark for a time that was measured rather than predicted."""
    return {"measured": " m", "wisdom": " w"}.get(c.basis, "")


def plan_json(plan: Plan) -> dict:
    return {
        "models": plan.models,
        "devices": plan.devices,
        "total_predicted_s": plan.total_predicted_s,
        "transfer_s": plan.transfer_s,
        "measure_s": plan.measure_s,
        "runs": plan.runs,
        "tiers": [asdict(step) for step in plan.tiers()],
        "ops": [
            {
                "index": op.site.index, "kernel": op.site.kernel, "loc": op.site.loc,
                "shapes": [list(s) for s in op.site.shapes], "dtype": op.site.dtype,
                "trips": op.site.trips,
                "chosen": None if op.chosen is None else
                {"variant": op.chosen.variant, "device": op.chosen.device,
                 "start": None if op.start is None else op.start.variant},
                "candidates": [
                    {"variant": c.variant, "device": c.device, "predicted_s": c.predicted_s,
                     "low_s": c.low_s, "high_s": c.high_s, "base_s": c.base_s,
                     "basis": c.basis, "compile_s": c.compile_s,
                     "cached": c.build == "cached", "build": c.build,
                     "cost_s": c.cost_s if math.isfinite(c.cost_s) else None,
                     "why_not": c.why_not or None}
                    for c in op.candidates
                ],
            }
            for op in plan.ops
        ],
        "regions": [
            {
                "index": r.index, "kind": r.kind, "loc": r.loc, "ops": r.sites,
                "kernels": r.kernels, "executions": r.executions,
                "trips": r.lowered.spec.trips,
                "chosen": None if r.chosen is None else
                {"variant": r.chosen.variant, "device": r.chosen.device,
                 "start": None if r.start is None else r.start.variant},
                "candidates": [
                    {"variant": c.variant, "device": c.device, "predicted_s": c.predicted_s,
                     "low_s": c.low_s, "high_s": c.high_s, "compile_s": c.compile_s,
                     "build": c.build,
                     "cost_s": c.cost_s if math.isfinite(c.cost_s) else None,
                     "why_not": c.why_not or None,
                     **({"compute_s": c.compute_s, "communication_s": c.communication_s,
                         "communication": c.communication} if c.communication else {})}
                    for c in r.candidates
                ],
            }
            for r in plan.regions
        ],
    }


CANDIDATES_LEGEND = (
    "each op's candidates, cheapest first; → marks the choice. time: predicted per "
    "execution (m: measured now, w: measured before); 90%: its interval; build: what "
    "building it costs here; cost: runs × time + build; why not: why it lost, or a letter "
    "naming its reason below the table")
REGIONS_LEGEND = (
    "a region runs its ops one by one (ops: their costs as chosen above, and those of the "
    "regions inside it) or compiled whole; a compiled loop's time is all its trips")


def _candidate_forms(title: str, candidates: list[Candidate], chosen: Candidate | None,
                     time: Callable[[Candidate], str]) -> list[Fitted]:
    """A choice's candidates, cheapest first, with the choice marked: with every reason
    in its row, or (narrower) with a key in its row and the reasons below the table."""
    ranked = sorted(candidates, key=lambda c: (c.cost_s, c.variant, c.device))
    rows = [[CHOSEN if c is chosen else "", c.variant, c.device, time(c), _interval(c),
             _build(c), short_time(c.cost_s)] for c in ranked]
    full = _candidate_table("why not")
    for cells, c in zip(rows, ranked, strict=True):
        full.add_row(*cells, c.why_not)
    keys, notes = note_keys([c.why_not for c in ranked])
    keyed = _candidate_table("why")
    for cells, key in zip(rows, keys, strict=True):
        keyed.add_row(*cells, key)
    below = [notes_grid("why not:", notes)] if notes else []
    return [Fitted(title, full), Fitted(title, keyed, below)]


def _candidate_table(reasons: str) -> Table:
    return compact_table("", "variant", "device", right("time"), right("90%"), "build",
                         right("cost"), reasons)


def _build(c: Candidate) -> str:
    return c.build if c.build != "compile" else short_time(c.compile_s)


def _op_time(c: Candidate) -> str:
    return short_time(c.predicted_s) + _basis(c)


def _region_time(c: Candidate) -> str:
    if c.variant == "ops":
        return "its ops"
    if c.compute_s is not None and c.communication_s is not None:
        return (f"{short_time(c.predicted_s)} = {short_time(c.compute_s)} + "
                f"{short_time(c.communication_s)} comm")
    return short_time(c.predicted_s)


def _op_forms(op: OpPlan) -> list[Fitted]:
    site = op.site
    title = (f"#{site.index} {site.kernel} {compact_shapes(site.shapes)} {site.dtype} at "
             f"{site.loc}, runs {site.trips}x")
    return _candidate_forms(title, op.candidates, op.chosen, _op_time)


def _region_forms(region: RegionPlan) -> list[Fitted]:
    """A region's candidates: its ops one by one (their summed cost as chosen above)
    and every compiled variant, with why each lost."""
    kernels = " ".join(region.kernels)
    ops = ", ".join(f"#{i}" for i in region.sites)
    trips = region.lowered.spec.trips
    loop = f", a loop of {trips} trips" if trips is not None else ""
    title = (f"region {region.index}: {region.kind} ({kernels}; ops {ops}) at {region.loc}"
             f"{loop}, runs {region.executions}x")
    forms = _candidate_forms(title, region.candidates, region.chosen, _region_time)
    split = [f"{c.variant} on {c.communication}" for c in region.candidates if c.communication]
    return [Fitted(f.title, f.table, [*f.below, *split]) for f in forms]


def _print_tiers(console: Console, plan: Plan) -> None:
    """The tier plan: where a choice builds beside the run, what runs until it is ready."""
    steps = plan.tiers()
    if not steps:
        return
    table = compact_table("at", "starts on", "builds", right("build"), right("ready"),
                          right("saves a run"))
    for step in steps:
        table.add_row(step.at, step.start, step.target, short_time(step.build_s),
                      f"~{short_time(step.ready_s)}", short_time(step.saved_s))
    console.print()
    print_fitted(console, [Fitted(
        "tiers: builds beside the run (kept for the next runs)", table,
        [f"the run starts on what needs no build; each build runs beside it in a helper "
         f"process and takes over from about `ready` (from the run's start); builds are "
         f"weighed against {plan.runs} run(s), this one and the program's past ones on "
         f"this machine"])])


def run(args: argparse.Namespace) -> int:
    plan = compile_program(read_source(args.file), args.file, defines(args), targets(args),
                           "selected", args.measure, record=not args.no_record).selection
    print_notes(plan.notes)
    if args.report == "json":
        print(json.dumps(plan_json(plan)))
        return 0
    console = console_for(args)
    console.print(f"models: {plan.models}; devices: {', '.join(plan.devices)}")
    console.print(CANDIDATES_LEGEND)
    for op in plan.ops:
        console.print()
        print_fitted(console, _op_forms(op))
    for i, region in enumerate(plan.regions):
        console.print()
        if i == 0:
            console.print(REGIONS_LEGEND)
        print_fitted(console, _region_forms(region))
    _print_tiers(console, plan)
    console.print()
    console.print(f"predicted total {short_time(plan.total_predicted_s)}, of which copies "
                  f"between devices {short_time(plan.transfer_s)}")
    if plan.measured:
        console.print(f"measured {len(plan.measured)} close candidate(s) in "
                      f"{plan.measure_s * 1e3:.4g} ms before choosing")
    return 0
