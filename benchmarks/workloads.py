"""The models where they are used, on every device here, beside the noise measured the same way.

    python benchmarks/workloads.py [--seconds 330] [--adapt 60] [--examples heat,wave]
        [--quick] [--out DIR]

Judges the models this machine loads (the shipped ones of this fingerprint, else the
default set) on the shapes the examples run, on every device annc finds here (on a
lent GPU machine: `cpu` and `gpu`; on the reference machine: `cpu` and `opencl`).
Every example at realistic sizes is compiled for all of them, selection plans it, and
`annc tune`'s harness measures every candidate of every op alone on its real shapes.
Then, in the same order, a second pass measures the same cases again: the second pass
against the first, minutes apart, is the noise floor measured the same way as the
models' error. Cases are taken in turn (the first size of every example, then the
second) while the first pass has its half of `--seconds`.

With `--adapt SECONDS`, `annc calibrate --quick --budget SECONDS` runs first in the
fresh `$ANNC_HOME`, and the adapted models are scored beside the loaded ones.

Writes `workloads-FINGERPRINT.md` and `.json` to `--out` (default
`benchmarks/results/`): per device and backend the median and mean absolute
percentage error of the predictions against the first pass, the same statistics of
the second pass against the first, and the ratio of the medians; per op the measured
cost of the plan's choice over the least measured cost, per execution on the chosen
device and with builds (trips × time + build) over every device. Copies between
devices are not measured by `tune` and are left out of both. Recording is off:
nothing measured here feeds the models. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness import EXAMPLES, RESULTS, example_sizes, geomean, predictions, quick_calibration
from rich.console import Console
from xdsl.dialects.builtin import ModuleOp

from annc.commands.tune import tune
from annc.compiler import compile_file
from annc.hardware.calibration.runs import select_variants
from annc.hardware.devices.available import available_devices
from annc.hardware.devices.fingerprint import fingerprint
from annc.passes.models import load_models
from annc.passes.region_choice import fused_regions
from annc.passes.select_variants import Plan, plan_selection
from annc.predictor.cost_model import CostModel

LOOPED = 100
"""Ops run at least this often count as in loops, where a build no longer matters."""

Case = dict[str, Any]
Key = tuple[int, str, str]  # op index, variant, device


def in_turn(sizes: dict[str, list[dict[str, int]]]) -> list[tuple[str, dict[str, int]]]:
    """The first size of every example, then the second, and so on."""
    longest = max((len(v) for v in sizes.values()), default=0)
    return [(example, variants[i]) for i in range(longest)
            for example, variants in sizes.items() if i < len(variants)]


def measured(report: dict[str, Any]) -> dict[Key, float]:
    return {(op["index"], c["variant"], c["device"]): c["measured_s"]
            for op in report["ops"] for c in op["candidates"] if c["measured_s"]}


def pair_errors(first: dict[str, Any], other: dict[Key, float],
                library: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
    """|other − measured| / measured per candidate measured in `first` and in `other`."""
    found = []
    for (index, variant, device), seconds in measured(first).items():
        value = other.get((index, variant, device))
        if value is not None:
            found.append({"device": device, "backend": library[(variant, device)],
                          "error": abs(value - seconds) / seconds})
    return found


def choice_over_best(report: dict[str, Any], plan: Plan) -> list[dict[str, Any]]:
    """Per op that runs one by one and whose choice was measured: its time over the least
    time on the same device (per execution), and its trips × time + build over the least
    such cost anywhere. Ops inside a region that runs compiled as one step are left out:
    their own choice never runs."""
    inside = {site for region in fused_regions(plan.regions) for site in region.sites}
    found = []
    for op, planned in zip(report["ops"], plan.ops, strict=True):
        if planned.site.index in inside:
            continue
        times = {(c["variant"], c["device"]): c for c in op["candidates"] if c["measured_s"]}
        chosen = planned.chosen
        pick = None if chosen is None else times.get((chosen.variant, chosen.device))
        if pick is None:
            continue

        def cost(c: dict[str, Any], trips: int = op["trips"]) -> float:
            return float(trips * c["measured_s"] + (c["compile_s"] or 0.0))

        same = [c["measured_s"] for (_, device), c in times.items()
                if device == pick["device"]]
        found.append({"device": pick["device"], "kernel": op["kernel"], "trips": op["trips"],
                      "per_execution": pick["measured_s"] / min(same),
                      "with_builds": cost(pick) / min(cost(c) for c in times.values())})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=330.0,
                        help="time for both passes (default 330 s); the first pass takes "
                        "cases while it has half")
    parser.add_argument("--adapt", type=float, default=0.0, metavar="SECONDS",
                        help="run `annc calibrate --quick` with this budget first and score "
                        "the adapted models too")
    parser.add_argument("--examples", help="only these examples (comma-separated)")
    parser.add_argument("--quick", action="store_true", help="two tiny cases, a smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="where workloads-FINGERPRINT.md and .json go")
    args = parser.parse_args()
    sizes = example_sizes(args.quick, args.examples)
    console = Console(stderr=True)
    os.environ["ANNC_HOME"] = tempfile.mkdtemp(prefix="annc-workloads-")
    os.environ["ANNC_NO_RECORD"] = "1"  # nothing measured here may feed the models
    devices = list(available_devices())
    model_sets = {"loaded": load_models()}
    quick_s = None
    if args.adapt > 0:
        quick_s = quick_calibration(args.adapt, console)
        model_sets["adapted"] = load_models()
    console.print(f"devices {devices}; models: {model_sets['loaded'].description}")
    began = time.perf_counter()
    cases: list[Case] = []
    for example, params in in_turn(sizes):
        if time.perf_counter() - began > args.seconds / 2:
            console.print(f"first pass: out of time before {example} {params}")
            break
        module = compile_ir(example, params, devices)
        # Every plan is made before tune runs: tune's builds fill the build cache.
        plans = {name: plan_selection(module, models) for name, models in model_sets.items()}
        started = time.perf_counter()
        report = tune(module, None, 60.0, console, plans["loaded"])
        console.print(f"{example} {params}: first pass {time.perf_counter() - started:.1f} s")
        cases.append({"example": example, "params": params, "module": module,
                      "plans": plans, "first": report})
    for case in cases:
        if time.perf_counter() - began > args.seconds:
            console.print(f"second pass: out of time before {case['example']}")
            break
        case["second"] = tune(case["module"], None, 60.0, console, case["plans"]["loaded"])
    write(cases, model_sets, devices, quick_s, time.perf_counter() - began, args.out)


def compile_ir(example: str, params: dict[str, int], devices: list[str]) -> ModuleOp:
    module = compile_file(EXAMPLES / f"{example}.ann", params=params, targets=devices,
                          emit="ir")
    assert isinstance(module, ModuleOp)
    return module


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median": None, "mean": None}
    return {"n": len(values), "median": statistics.median(values),
            "mean": statistics.fmean(values)}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def error_groups(cases: list[Case], names: list[str]) -> dict[str, dict[str, Any]]:
    """Error statistics per device and backend (and over all) for every model set and
    for the second pass against the first."""
    library = {(v.name, v.device): v.backend for v in select_variants()}
    groups: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list))
    for case in cases:
        found = {name: pair_errors(case["first"], predictions(case["plans"][name]), library)
                 for name in names}
        if "second" in case:
            found["repeat"] = pair_errors(case["first"], measured(case["second"]), library)
        for kind, errors in found.items():
            for e in errors:
                for key in (("all", "all"), (e["device"], "all"), (e["device"], e["backend"])):
                    groups[key][kind].append(e["error"])
    return {f"{device} {lib}": {kind: _stats(g[kind]) for kind in [*names, "repeat"]}
            for (device, lib), g in sorted(groups.items(), key=lambda item: (
                item[0][0] != "all", item[0][0], item[0][1] != "all", item[0][1]))}


def write(cases: list[Case], model_sets: dict[str, CostModel], devices: list[str],
          quick_s: float | None, seconds: float, out: Path) -> None:
    names = list(model_sets)
    table = error_groups(cases, names)
    head = " | ".join(f"{name}: median | mean | ratio" for name in names)
    rows = [f"| device | backend | candidates | repeat: median | mean | {head} |",
            "|---|---|---|---|---|" + "---|---|---|" * len(names)]
    for group, g in table.items():
        noise = g["repeat"]["median"]
        cells = [f"{_pct(g[n]['median'])} | {_pct(g[n]['mean'])} | " + (
            f"{g[n]['median'] / noise:.2f}" if noise and g[n]["median"] is not None else "-")
            for n in names]
        rows.append(f"| {group.replace(' ', ' | ')} | {g[names[0]]['n']} | "
                    f"{_pct(noise)} | {_pct(g['repeat']['mean'])} | {' | '.join(cells)} |")
    choices = {name: [r for c in cases for r in choice_over_best(c["first"], c["plans"][name])]
               for name in names}
    choice_rows = ["| models | chosen device | ops | per execution, same device: geomean | "
                   "worst | in loops (≥ 100 runs): geomean | worst | with builds, any "
                   "device: geomean | worst |", "|---|---|---|---|---|---|---|---|---|"]
    for name, found in choices.items():
        for device in sorted({r["device"] for r in found}):
            on = [r for r in found if r["device"] == device]
            per = [r["per_execution"] for r in on]
            looped = [r["per_execution"] for r in on if r["trips"] >= LOOPED]
            built = [r["with_builds"] for r in on]
            choice_rows.append(
                f"| {name} | {device} | {len(per)} | {geomean(per):.3f} | {max(per):.2f} | "
                f"{geomean(looped):.3f} ({len(looped)}) | {max(looped, default=math.nan):.2f} "
                f"| {geomean(built):.3f} | {max(built):.2f} |")
    machine = fingerprint()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M UTC")
    listed = ", ".join(f"{c['example']} {'/'.join(str(v) for v in c['params'].values())}"
                       for c in cases)
    adapted = ("" if quick_s is None else
               f" Adapted: after `annc calibrate --quick` ({quick_s:.0f} s wall), "
               f"{model_sets['adapted'].description}.")
    text = "\n".join([
        "# The models where they are used, on every device of this machine", "",
        f"Machine `{machine.id}` ({machine.cpu_model}, {machine.cores} cores; "
        f"{', '.join(machine.accelerators) or 'no accelerator'}); {stamp}. Command: "
        f"`python benchmarks/workloads.py` (passes {seconds:.0f} s). Devices "
        f"{', '.join(devices)}. Loaded: {model_sets['loaded'].description}.{adapted}", "",
        f"Cases ({len(cases)}, {sum('second' in c for c in cases)} measured twice): "
        f"{listed}.", "",
        "Absolute percentage error per candidate of every op against its time measured "
        "alone on its real shapes by `annc tune`'s harness (the first pass). *Repeat* is "
        "the second pass against the first, minutes later: the noise floor measured the "
        "same way. *Ratio* is the models' median over the repeat median.", "",
        *rows, "",
        "Per op, the plan's choice against the least measured (copies between devices "
        "left out):", "",
        *choice_rows, "",
    ])
    out.mkdir(parents=True, exist_ok=True)
    stem = f"workloads-{machine.id}"
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps({
        "machine": machine.id, "at": stamp, "devices": devices, "quick_s": quick_s,
        "models": {n: m.description for n, m in model_sets.items()}, "seconds": seconds,
        "groups": table, "choices": choices,
        "cases": [{"example": c["example"], "params": c["params"], "first": c["first"],
                   "second": c.get("second"), "predicted": {
                       name: [{"index": i, "variant": v, "device": d, "predicted_s": p}
                              for (i, v, d), p in predictions(plan).items()]
                       for name, plan in c["plans"].items()}}
                  for c in cases]}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
