"""`annc explain`: every candidate of every op with its predicted time, and the choice;
then every region's candidates (its ops one by one, or a compiled whole) and why one won."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from annc.commands.common import (
    add_program_arguments,
    add_selection_arguments,
    add_target_argument,
    compact_shapes,
    defines,
    short_time,
    targets,
)
from annc.compiler import compile_program, read_source
from passes.candidates import Candidate
from passes.region_choice import RegionPlan
from passes.select_variants import Plan

HELP = "show every candidate variant and device of every op, its predicted time, and why " \
       "the chosen one won"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_program_arguments(parser)
    add_target_argument(parser)
    parser.add_argument("--report", choices=("table", "json"), default="table",
                        help="tables (default) or one JSON object on standard output")
    add_selection_arguments(parser)


def _ms(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    return f"{seconds * 1e3:.4g}"


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
                     "why_not": c.why_not or None}
                    for c in r.candidates
                ],
            }
            for r in plan.regions
        ],
    }


def _region_table(region: RegionPlan) -> Table:
    """A region's candidates: its ops one by one (their summed cost as chosen above)
    and every compiled variant, with why each lost."""
    kernels = " ".join(region.kernels)
    ops = ", ".join(f"#{i}" for i in region.sites)
    trips = region.lowered.spec.trips
    loop = f", a loop of {trips} trips" if trips is not None else ""
    table = Table(title=f"region {region.index}: {region.kind} ({kernels}; ops {ops}) at "
                  f"{region.loc}{loop}, runs {region.executions}x", title_justify="left")
    table.add_column("")
    table.add_column("variant", no_wrap=True)
    table.add_column("device", no_wrap=True)
    for column in ("time", "90%", "build", "cost"):
        table.add_column(column, justify="right" if column != "build" else "left",
                         no_wrap=True)
    table.add_column("why not", overflow="fold")
    for c in sorted(region.candidates, key=lambda c: (c.cost_s, c.variant)):
        build = c.build if c.build != "compile" else short_time(c.compile_s)
        interval = ("-" if c.high_s is None or not c.predicted_s
                    else f"±{c.high_s / c.predicted_s - 1:.0%}")
        time = "its ops" if c.variant == "ops" else short_time(c.predicted_s)
        table.add_row("→" if c is region.chosen else "", c.variant, c.device, time, interval,
                      build, short_time(c.cost_s), c.why_not)
    return table


def _print_tiers(console: Console, plan: Plan) -> None:
    """The tier plan: where a choice builds beside the run, what runs until it is ready."""
    steps = plan.tiers()
    if not steps:
        return
    table = Table(title="tiers: builds beside the run (kept for the next runs)",
                  title_justify="left")
    for column in ("at", "starts on", "builds", "build", "ready", "saves a run"):
        table.add_column(column, no_wrap=column != "builds",
                         justify="right" if column in ("build", "ready", "saves a run")
                         else "left")
    for step in steps:
        table.add_row(step.at, step.start, step.target, short_time(step.build_s),
                      f"~{short_time(step.ready_s)}", short_time(step.saved_s))
    console.print(table)
    console.print(f"the run starts on what needs no build; each build runs beside it in a "
                  f"helper process and takes over from about `ready` (from the run's "
                  f"start); builds are weighed against {plan.runs} run(s), this one and "
                  f"the program's past ones on this machine")


def run(args: argparse.Namespace) -> int:
    plan = compile_program(read_source(args.file), args.file, defines(args), targets(args),
                           "selected", args.measure, record=not args.no_record).selection
    for note in plan.notes:
        print(note, file=sys.stderr)
    if args.report == "json":
        print(json.dumps(plan_json(plan)))
        return 0
    console = Console()
    console.print(f"models: {plan.models}; devices: {', '.join(plan.devices)}")
    for op in plan.ops:
        site = op.site
        shapes = compact_shapes(site.shapes)
        table = Table(title=f"#{site.index} {site.kernel} {shapes} {site.dtype} at {site.loc}, "
                      f"runs {site.trips}x", title_justify="left")
        table.add_column("")
        table.add_column("variant", no_wrap=True)  # names are never cut or wrapped
        table.add_column("device", no_wrap=True)
        for column in ("time", "90%", "build", "cost"):
            table.add_column(column, justify="right" if column != "build" else "left",
                             no_wrap=True)
        table.add_column("why not", overflow="fold")
        ranked = sorted(op.candidates, key=lambda c: (c.cost_s, c.variant, c.device))
        for c in ranked:
            build = c.build if c.build != "compile" else short_time(c.compile_s)
            table.add_row("→" if c is op.chosen else "", c.variant, c.device,
                          short_time(c.predicted_s) + _basis(c), _interval(c), build,
                          short_time(c.cost_s), c.why_not)
        console.print(table)
    for region in plan.regions:
        console.print(_region_table(region))
    _print_tiers(console, plan)
    console.print(f"predicted total {short_time(plan.total_predicted_s)}, of which copies "
                  f"between devices {short_time(plan.transfer_s)}")
    console.print("time: predicted per execution (m: measured now, w: measured before); "
                  "90%: its interval; build: what building it costs here; cost: runs × time "
                  "+ build")
    if plan.regions:
        console.print("a region runs its ops one by one (ops: their costs as chosen above, "
                      "and those of the regions inside it) or compiled whole; a compiled "
                      "loop's time is all its trips")
    if plan.measured:
        console.print(f"measured {len(plan.measured)} close candidate(s) in "
                      f"{plan.measure_s * 1e3:.4g} ms before choosing")
    return 0
