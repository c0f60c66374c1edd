"""Predictions where annc runs: before and after `calibrate --quick`, and `--measure auto`.

    .venv/bin/python benchmarks/adaptation.py [--quick] [--examples heat,wave] [--budget 60]

From a fresh `$ANNC_HOME` (a temporary folder): times `annc calibrate --quick` (wall
clock of the whole command, as a user sees it), then for every example at realistic
sizes measures every candidate of every op alone on its real shapes (`annc tune`'s
harness, with recording off so that nothing measured here feeds the models) and
scores the predictions against these measurements: the shipped models as they are
(before) and adapted (after). Then selection with `--measure auto`: per op the
measured time of its choice over the best measured candidate's, and how long it
spent measuring beside tune's time. Last, what recording a run costs per op.
Writes `benchmarks/results/adaptation.md` and `.json`, stamped with the
fingerprint and date. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import (
    EXAMPLES,
    RESULTS,
    example_sizes,
    geomean,
    predictions,
    quick_calibration,
)
from rich.console import Console
from xdsl.dialects.builtin import ModuleOp

from annc.commands.tune import tune
from annc.compiler import compile_file
from annc.hardware.devices.fingerprint import fingerprint
from annc.passes.models import load_models
from annc.passes.select_variants import Plan, plan_selection
from annc.predictor.cost_model import CostModel


def errors(report: dict, predicted: dict) -> list[float]:
    """|predicted − measured| / measured over every candidate measured and predicted."""
    found = []
    for op in report["ops"]:
        for c in op["candidates"]:
            p = predicted.get((op["index"], c["variant"], c["device"]))
            if p is not None and c["measured_s"]:
                found.append(abs(p - c["measured_s"]) / c["measured_s"])
    return found


def chosen_over_best(report: dict, plan: Plan, with_compile: bool,
                     min_trips: int = 1) -> list[float]:
    """Per op (of those run at least `min_trips` times): the measured cost of the plan's
    choice over the least measured cost, with or without each candidate's build."""
    ratios = []
    for op, planned in zip(report["ops"], plan.ops, strict=True):
        n = planned.site.trips  # the plan's own program: a long one runs more often
        if n < min_trips:
            continue

        def cost(c: dict, n: int = n) -> float:
            return n * c["measured_s"] + ((c["compile_s"] or 0.0) if with_compile else 0.0)

        measured = [c for c in op["candidates"] if c["measured_s"]]
        if planned.chosen is None or not measured:
            continue
        pick = next((c for c in measured if (c["variant"], c["device"]) ==
                     (planned.chosen.variant, planned.chosen.device)), None)
        if pick is not None:
            ratios.append(cost(pick) / min(cost(c) for c in measured))
    return ratios


LOOPS = ("STEPS", "SWEEPS", "ITERATIONS", "PASSES", "SQUARINGS")
LONGER = 20
"""Long workloads: the same shapes, every loop 20 times longer (tune's measurements of the
shapes still hold; only the trip counts change)."""


def run_case(example: str, params: dict[str, int], before: CostModel,
             after: CostModel, console: Console) -> dict:
    module = compile_file(EXAMPLES / f"{example}.ann", params=params, targets=["cpu"],
                          emit="ir")
    assert isinstance(module, ModuleOp)
    long_params = {k: v * LONGER if k in LOOPS else v for k, v in params.items()}
    long_module = compile_file(EXAMPLES / f"{example}.ann", params=long_params,
                               targets=["cpu"], emit="ir")
    assert isinstance(long_module, ModuleOp)
    # Every plan is made before tune runs: tune's builds fill the persistent build cache,
    # which would make later plans count those builds as loads.
    plan_before = plan_selection(module, before)
    plan_after = plan_selection(module, after)
    plan_long = plan_selection(long_module, after)
    plan_measured = plan_selection(module, after, measure="auto")
    plan_long_measured = plan_selection(long_module, after, measure="auto")
    began = time.perf_counter()
    report = tune(module, None, 120.0, console, plan_after)
    tune_s = time.perf_counter() - began
    return {
        "example": example, "params": params, "tune_s": tune_s,
        "errors_before": errors(report, predictions(plan_before)),
        "errors_after": errors(report, predictions(plan_after)),
        "ratios": {name: {"per_execution": chosen_over_best(report, plan, False),
                          "with_compile": chosen_over_best(report, plan, True)}
                   for name, plan in (("before", plan_before), ("after", plan_after),
                                      ("after, --measure auto", plan_measured))},
        "measured": len(plan_measured.measured), "measure_s": plan_measured.measure_s,
        "long": {"params": long_params,
                 "predicted_s": plan_long.total_predicted_s,
                 "ratios": {name: {"per_execution": chosen_over_best(report, plan, False),
                                   "in_loops": chosen_over_best(report, plan, False, 100),
                                   "with_compile": chosen_over_best(report, plan, True)}
                            for name, plan in (("after, --measure never", plan_long),
                                               ("after, --measure auto", plan_long_measured))},
                 "measured": len(plan_long_measured.measured),
                 "measure_s": plan_long_measured.measure_s},
        "tune": report,
    }


RECORDED = {"heat": {"N": 512, "STEPS": 500}, "power_iteration": {"N": 800, "ITERATIONS": 200},
            "gram_matrix": {"S": 400, "P": 1000}}
"""Realistic runs whose recording is timed."""


def process_seconds(path: Path, params: dict[str, int], repeats: int) -> float:
    """Median wall time of the whole `annc run` process, as a user waits for it."""
    annc = Path(sys.executable).with_name("annc")
    defines = [item for k, v in params.items() for item in ("-D", f"{k}={v}")]
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run([str(annc), "run", str(path), *defines, "--target", "cpu",
                        "--no-record", "--measure", "never"], capture_output=True, check=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def per_op(recorded: dict) -> str:
    """Recording's cost per op record; a run whose work all ran as compiled regions or
    loops has no op records."""
    if not recorded["ops"]:
        return "- (no op records)"
    return f"{recorded['record_s'] / recorded['ops'] * 1e6:.0f} µs"


def recording_cost(console: Console, repeats: int = 3) -> list[dict]:
    """Seconds to record a run, per op and as a share of the run's wall time."""
    from annc.recording import record_run
    from annc.running import run_file

    found = []
    for example, params in RECORDED.items():
        path = EXAMPLES / f"{example}.ann"
        module = compile_file(path, params=params, targets=["cpu"], emit="ir")
        plan = plan_selection(module, load_models())
        costs, runs = [], []
        for _ in range(repeats):
            began = time.perf_counter()
            result = run_file(path, params=params, targets=["cpu"], measure="never",
                              record=False)
            runs.append(time.perf_counter() - began)
            began = time.perf_counter()
            record_run(plan, result.records, plan.chosen_models)
            costs.append(time.perf_counter() - began)
        ops = len(result.records)
        found.append({"example": example, "params": params, "ops": ops,
                      "record_s": statistics.median(costs), "run_s": statistics.median(runs),
                      "process_s": process_seconds(path, params, repeats)})
        console.print(f"recording {example}: {statistics.median(costs) * 1e3:.2f} ms for "
                      f"{ops} ops; the run took {statistics.median(runs):.2f} s")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two tiny cases, a smoke test")
    parser.add_argument("--examples", help="only these examples (comma-separated)")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="calibrate --quick's budget (default 60 s)")
    args = parser.parse_args()
    sizes = example_sizes(args.quick, args.examples)
    console = Console(stderr=True)
    home = tempfile.mkdtemp(prefix="annc-adaptation-")
    os.environ["ANNC_HOME"] = home
    os.environ["ANNC_NO_RECORD"] = "1"  # nothing measured below may feed the models
    before = load_models()
    assert before.corrections is None, "the home is fresh"
    quick_s = quick_calibration(args.budget, console)
    after = load_models()
    cases = []
    for example, variants in sizes.items():
        for params in variants:
            console.print(f"{example} {params}")
            cases.append(run_case(example, params, before, after, console))
    del os.environ["ANNC_NO_RECORD"]
    recording = recording_cost(console)
    write(cases, quick_s, recording, after, "adaptation_quick" if args.quick else "adaptation")


def _summary(values: list[float]) -> str:
    if not values:
        return "-"
    return (f"median {100 * statistics.median(values):.1f}%, mean "
            f"{100 * statistics.fmean(values):.1f}% over {len(values)}")


def write(cases: list[dict], quick_s: float, recording: list[dict], after: CostModel,
          stem: str) -> None:
    before = [e for c in cases for e in c["errors_before"]]
    adapted = [e for c in cases for e in c["errors_after"]]
    machine = fingerprint()
    rows = ["| example | sizes | MAPE before | MAPE after | measured (auto) | measuring s | "
            "tune s |", "|---|---|---|---|---|---|---|"]
    for c in cases:
        sizes = ", ".join(f"{k}={v}" for k, v in c["params"].items())
        rows.append(f"| {c['example']} | {sizes} | "
                    f"{100 * statistics.median(c['errors_before']):.1f}% | "
                    f"{100 * statistics.median(c['errors_after']):.1f}% | {c['measured']} | "
                    f"{c['measure_s']:.2f} | {c['tune_s']:.1f} |")
    ratio_rows = ["| selection | per execution: geomean | worst | with builds: geomean | worst |",
                  "|---|---|---|---|---|"]
    for name in cases[0]["ratios"] if cases else ():
        per = [r for c in cases for r in c["ratios"][name]["per_execution"]]
        built = [r for c in cases for r in c["ratios"][name]["with_compile"]]
        ratio_rows.append(f"| {name} | {geomean(per):.3f} | {max(per, default=math.nan):.2f} | "
                          f"{geomean(built):.3f} | {max(built, default=math.nan):.2f} |")
    long_rows = ["| selection | ops in loops (≥ 100 runs), per execution: geomean | worst | "
                 "every op, per execution | every op, with builds |", "|---|---|---|---|---|"]
    for name in cases[0]["long"]["ratios"] if cases else ():
        ratios = {kind: [r for c in cases for r in c["long"]["ratios"][name][kind]]
                  for kind in ("in_loops", "per_execution", "with_compile")}
        looped = ratios["in_loops"]
        long_rows.append(f"| {name} | {geomean(looped):.3f} ({len(looped)} ops) | "
                         f"{max(looped, default=math.nan):.2f} | "
                         f"{geomean(ratios['per_execution']):.3f} | "
                         f"{geomean(ratios['with_compile']):.3f} |")
    long_measured = sum(c["long"]["measured"] for c in cases)
    long_measure_s = sum(c["long"]["measure_s"] for c in cases)
    long_predicted = sum(c["long"]["predicted_s"] for c in cases)
    measure_s = sum(c["measure_s"] for c in cases)
    tune_s = sum(c["tune_s"] for c in cases)
    text = "\n".join([
        "# Predictions where annc runs: before and after `calibrate --quick`", "",
        f"Machine `{machine.id}` ({machine.cpu_model}, {machine.cores} cores); "
        f"{datetime.date.today().isoformat()}. Command: `python benchmarks/adaptation.py`. "
        f"Models after: {after.description}.", "",
        f"`annc calibrate --quick` from a fresh `$ANNC_HOME`: {quick_s:.1f} s wall.", "",
        "Absolute percentage error of the predictions of every candidate of every op "
        "against its time measured alone on its real shapes (`annc tune`'s harness): "
        f"before adaptation {_summary(before)}; after {_summary(adapted)}.", "",
        *rows, "",
        "Per op, measured time of the choice / the best measured candidate's:", "",
        *ratio_rows, "",
        f"`--measure auto` measured {sum(c['measured'] for c in cases)} candidates in "
        f"{measure_s:.1f} s over all cases, against {tune_s:.0f} s for `tune` to measure "
        "every candidate.", "",
        f"Long workloads (every loop {LONGER}x longer, the same shapes; predicted "
        f"{long_predicted:.0f} s in all): `--measure auto` measured {long_measured} "
        f"candidates in {long_measure_s:.1f} s ({100 * long_measure_s / long_predicted:.2f}% "
        f"of the predicted time; `tune` took {tune_s:.0f} s). Per op, measured time of the "
        "choice / the best measured candidate's:", "",
        *long_rows, "",
        "Recording a run (`annc run`'s observations, corrections and staleness; median of "
        "3, the run's wall time includes compiling):", "",
        "| run | ops | recording | per op | share of `run_file` | share of the `annc run` "
        "process |", "|---|---|---|---|---|---|",
        *(f"| {r['example']} {', '.join(f'{k}={v}' for k, v in r['params'].items())} | "
          f"{r['ops']} | {r['record_s'] * 1e3:.2f} ms | {per_op(r)} "
          f"| {100 * r['record_s'] / r['run_s']:.2f}% | "
          f"{100 * r['record_s'] / r['process_s']:.2f}% ({r['process_s']:.2f} s) |"
          for r in recording), "",
    ])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {"quick_s": quick_s, "recording": recording, "cases": cases}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
