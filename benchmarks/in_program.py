"""Predictions against the times of ops inside running programs.

    .venv/bin/python benchmarks/in_program.py [--examples heat,wave] [--quick]

Calibration and `annc tune` time each op alone, calling it again and again on the same
operands, so what it reads stays in the caches. Inside a program an op reads what
other ops wrote, among the program's other fields, and its time can differ. For
every example at the realistic sizes of `benchmarks/selection.py`, in a fresh
`$ANNC_HOME`, this runs `annc run --report json` twice, each in a fresh process:

1. **before**: the shipped models as they are. The run records what it measured, as
   every `annc run` does;
2. **after one run**: the same program again, predicted with the corrections learnt
   from the first run's steady ops.

Each op and compiled region that ran at least 3 times (the steady ones, which
recording learns from), and each compiled loop (one execution of all its trips), is
scored: its predicted time per execution against its
steady time per execution (the report's `steady_s`: the median, the first execution
left out), both from the run's own report; the mean per execution is kept in the
JSON. Reports, per pass, the
median and mean absolute percentage error and the geometric mean of measured over
predicted, also per variant family. Writes `benchmarks/results/in_program.md` and
`.json`, stamped with the fingerprint and date. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import EXAMPLES, RESULTS, example_sizes, geomean

from annc.hardware.devices.fingerprint import fingerprint
from annc.predictor.adaptation import family as backend

STEADY = 3
"""Executions an op needs to be scored (recording's rule: the first pays first touch)."""

PASSES = ("before", "after one run")


def run_report(example: str, params: dict[str, int], home: Path) -> dict:
    """`annc run --report json` of an example in a fresh process, recording on."""
    defines = [arg for name, value in params.items() for arg in ("-D", f"{name}={value}")]
    command = [sys.executable, "-m", "annc", "run", str(EXAMPLES / f"{example}.ann"),
               *defines, "--report", "json", "--target", "cpu"]
    env = {**os.environ, "ANNC_HOME": str(home)}
    env.pop("ANNC_NO_RECORD", None)
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout)


def family(variant: str) -> str:
    """numpy, halide, jax or opencl: whose code runs; the algorithmic variants together."""
    if variant.startswith(("fft", "im2col", "shifted", "strassen")):
        return "fft, im2col, shifted, strassen"
    return backend(variant)


def scored(report: dict) -> list[dict]:
    """The steady ops and compiled regions of one run: per execution, predicted and
    measured."""
    rows = []
    entries = [(entry, entry["kernel"]) for entry in report["ops"]]
    entries += [(entry, entry["kind"]) for entry in report["regions"]
                if entry["variant"] != "ops"]
    for entry, kernel in entries:
        executions = entry.get("executions") or 0
        steady = executions >= STEADY or kernel.startswith("loop.")  # a loop: all its trips
        if not steady or not entry.get("steady_s") or not entry.get("predicted_s"):
            continue
        rows.append({"kernel": kernel, "variant": entry["variant"], "device": entry["device"],
                     "executions": executions,
                     "predicted_s": entry["predicted_s"] / executions,
                     "measured_s": entry["steady_s"],
                     "mean_s": entry["measured_s"] / executions})
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    errors = [abs(r["predicted_s"] - r["measured_s"]) / r["measured_s"] * 100 for r in rows]
    ratios = [r["measured_s"] / r["predicted_s"] for r in rows]
    return {"n": len(rows), "median_ape": statistics.median(errors),
            "mean_ape": statistics.fmean(errors), "measured_over_predicted": geomean(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", help="comma-separated examples (default: all eight)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    sizes = example_sizes(args.quick, args.examples)
    results: list[dict] = []
    for example, settings in sizes.items():
        for params in settings:
            with tempfile.TemporaryDirectory(prefix="annc-in-program-") as home:
                for name in PASSES:
                    report = run_report(example, params, Path(home))
                    for row in scored(report):
                        results.append({"example": example, "params": params, "pass": name,
                                        **row})
            print(f"{example} {params}: done", flush=True)
    lines = ["| pass | ops and regions scored | median APE | mean APE | "
             "measured / predicted (geomean) |", "|---|---|---|---|---|"]
    totals: dict[str, dict[str, float]] = {}
    for name in PASSES:
        rows = [r for r in results if r["pass"] == name]
        if rows:
            totals[name] = summary(rows)
            s = totals[name]
            lines.append(f"| {name} | {s['n']:.0f} | {s['median_ape']:.1f}% | "
                         f"{s['mean_ape']:.1f}% | {s['measured_over_predicted']:.2f} |")
    lines += ["", "| pass | variant family | scored | median APE | measured / predicted |",
              "|---|---|---|---|---|"]
    for name in PASSES:
        for fam in sorted({family(r["variant"]) for r in results}):
            rows = [r for r in results if r["pass"] == name and family(r["variant"]) == fam]
            if rows:
                s = summary(rows)
                lines.append(f"| {name} | {fam} | {s['n']:.0f} | {s['median_ape']:.1f}% | "
                             f"{s['measured_over_predicted']:.2f} |")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M")
    command = "python benchmarks/in_program.py" + (" --quick" if args.quick else "")
    text = "\n".join([
        "# Predictions against ops inside running programs", "",
        f"Machine `{fingerprint().id}`; {stamp} UTC. Command: `{command}`. Each example at "
        "the realistic sizes of `benchmarks/selection.py`, in a fresh `$ANNC_HOME`, run "
        "twice by `annc run --report json` in fresh processes: before (shipped models) and "
        "after one recorded run. Scored: every op and compiled region run at least "
        f"{STEADY} times, and every compiled loop, its predicted time per execution against "
        "its median (`steady_s`, the first execution left out).", "",
        *lines, ""])
    RESULTS.mkdir(exist_ok=True)
    suffix = "_quick" if args.quick else ""
    (RESULTS / f"in_program{suffix}.md").write_text(text)
    (RESULTS / f"in_program{suffix}.json").write_text(json.dumps(
        {"machine": fingerprint().id, "date": stamp, "command": command,
         "summary": totals, "rows": results}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
