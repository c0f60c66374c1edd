"""Device placement with `target cpu, DEV`: annc's plan against all-CPU and all-DEV.

    .venv/bin/python benchmarks/placement.py                     # cpu, opencl
    python benchmarks/placement.py --target cpu,gpu --out placement-gpu.md

For three examples, each at a small and a large size, the same program runs three
ways: placed by annc over `cpu, DEV`; with `--target cpu`; with `--target DEV`
(every op that has a variant there; the others stay on the CPU). Two figures each:

- the first run: `annc run` in a fresh process with a fresh `$ANNC_HOME` that holds
  only the trained models (no build or XLA cache), timed as its `compile_s +
  execute_s`. This is what selection minimises: every variant's build is paid.
- the steady state: in this process, run once to compile, then timed end to end
  (dispatch, kernels and copies) as the median of 3 runs.

Also reported: which devices annc used and the time spent copying. Writes
`benchmarks/results/placement.md` unless `--out` names another file; `--json`
also writes the figures as JSON. `--quick` runs tiny sizes, timed once: a check
that the benchmark runs, not a measurement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import EXAMPLES, RESULTS, ROOT
from xdsl.dialects.builtin import ModuleOp

from annc.compiler import compile_file, select
from annc.hardware.devices.available import available_devices
from annc.hardware.devices.fingerprint import fingerprint
from annc.passes.models import user_models_path
from annc.running import run_module

CASES = [
    ("heat", {"N": 1024, "STEPS": 20}),
    ("heat", {"N": 2048, "STEPS": 50}),
    ("detector_smoothing", {"N": 1024, "P": 15, "PASSES": 2}),
    ("detector_smoothing", {"N": 2048, "P": 15, "PASSES": 4}),
    ("markov_chain", {"M": 600, "SQUARINGS": 6}),
    ("markov_chain", {"M": 2000, "SQUARINGS": 8}),
]
QUICK_CASES = [
    ("heat", {"N": 32, "STEPS": 2}),
    ("detector_smoothing", {"N": 32, "P": 3, "PASSES": 1}),
    ("markov_chain", {"M": 16, "SQUARINGS": 1}),
]
REPEATS = 3


def ways(device: str) -> dict[str, list[str]]:
    """The three placements compared: annc's over both devices, then each alone."""
    return {"annc": ["cpu", device], "all cpu": ["cpu"], f"all {device}": [device]}


def timed_run(example: str, params: dict[str, int], targets: list[str],
              repeats: int = REPEATS) -> dict:
    module = compile_file(EXAMPLES / f"{example}.ann", params=params, targets=targets,
                          emit="ir")
    assert isinstance(module, ModuleOp)
    plan = select(module)
    run_module(module, seed=0)  # compile every variant once
    times, report = [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        report = run_module(module, seed=0).report
        times.append(time.perf_counter() - start)
    devices = sorted({op["device"] for op in report["ops"]})
    return {"seconds": statistics.median(times), "predicted": plan.total_predicted_s,
            "transfer_s": report["transfer_s"], "devices": devices}


def first_run(example: str, params: dict[str, int], targets: list[str]) -> dict:
    """`annc run` in a fresh process and a fresh home holding only this machine's trained
    models: its compile and execute seconds (start-up is the same for every way)."""
    with tempfile.TemporaryDirectory(prefix="annc-placement-") as home:
        models = user_models_path(fingerprint().id)
        if models.exists():
            (Path(home) / "models").mkdir()
            shutil.copy(models, Path(home) / "models" / models.name)
        command = [sys.executable, "-m", "annc", "run", str(EXAMPLES / f"{example}.ann"),
                   "--target", ",".join(targets), "--report", "json", "--seed", "0"]
        for name, value in params.items():
            command += ["-D", f"{name}={value}"]
        env = {**os.environ, "ANNC_HOME": home, "ANNC_NO_RECORD": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                           os.environ.get("PYTHONPATH")]))}
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
    if done.returncode != 0:  # reported in the table; the other runs go on
        print(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return {"seconds": None, "error": done.stderr[-2000:], "devices": []}
    report = json.loads(done.stdout)
    return {"seconds": report["compile_s"] + report["execute_s"],
            "compile_s": report["compile_s"], "execute_s": report["execute_s"],
            "process_s": wall, "predicted": report["total_predicted_s"],
            "devices": sorted({op["device"] for op in report["ops"]})}


def second_device(text: str) -> str:
    """The device of `--target cpu,DEV` other than the CPU."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    others = [name for name in names if name != "cpu"]
    if "cpu" not in names or len(others) != 1:
        raise SystemExit(f"--target: expected cpu and one other device, got {text!r}")
    if others[0] not in available_devices():
        raise SystemExit(f"--target: this machine has no {others[0]} device "
                         f"(found: {', '.join(available_devices())})")
    return others[0]


def _row(example: str, params: dict[str, int], results: dict, device: str, key: str) -> str:
    sizes = ", ".join(f"{k}={v}" for k, v in params.items())
    annc = results["annc"][key]
    seconds = [results[way][key]["seconds"] for way in ways(device)]
    cells = ["failed" if t is None else f"{t * 1e3:.1f} ms" for t in seconds]
    copies = f" {annc['transfer_s'] * 1e3:.2f} ms |" if key == "steady" else ""
    return (f"| {example} | {sizes} | {' | '.join(cells)} | {', '.join(annc['devices'])} "
            f"|{copies}")


def table(device: str, rows: list[tuple[str, dict[str, int], dict]], repeats: int,
          command: str) -> list[str]:
    machine = fingerprint()
    described = available_devices()[device].description
    lines = [
        f"# Placement over cpu and {device}", "",
        f"Machine `{machine.id}` ({machine.cpu_model}, {machine.cores} cores; {device}: "
        f"{described}); {datetime.date.today().isoformat()}. Command: `{command}`.", "",
        "## First run: a fresh process and home, every build paid (what selection "
        "minimises)", "",
        "`compile_s + execute_s` of `annc run` in a fresh process whose `$ANNC_HOME` holds "
        "only the trained models.", "",
        f"| example | sizes | annc | all cpu | all {device} | annc used |",
        "|---|---|---|---|---|---|",
        *(_row(e, p, r, device, "first") for e, p, r in rows), "",
        "## Steady state: the same plan again in one process", "",
        f"End to end, median of {repeats} after a compiling run.", "",
        f"| example | sizes | annc | all cpu | all {device} | annc used | annc copies |",
        "|---|---|---|---|---|---|---|",
        *(_row(e, p, r, device, "steady") for e, p, r in rows), "",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="cpu,opencl",
                        help="cpu and the device to place on besides it (default cpu,opencl)")
    parser.add_argument("--out", type=Path, default=RESULTS / "placement.md",
                        help="the markdown table to write")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, timed once: checks that it runs, measures nothing")
    args = parser.parse_args(argv)
    device = second_device(args.target)
    cases, repeats = (QUICK_CASES, 1) if args.quick else (CASES, REPEATS)
    rows = []
    for example, params in cases:
        results = {way: {"first": first_run(example, params, targets),
                         "steady": timed_run(example, params, targets, repeats)}
                   for way, targets in ways(device).items()}
        rows.append((example, params, results))
        print(example, params, {way: (r["first"]["seconds"], round(r["steady"]["seconds"], 4))
                                for way, r in results.items()}, flush=True)
    command = "python benchmarks/placement.py" + (
        f" --target {args.target}" if device != "opencl" else "") + (
        " --quick" if args.quick else "")
    lines = table(device, rows, repeats, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    if args.json is not None:
        args.json.write_text(json.dumps(
            {"device": device, "fingerprint": fingerprint().as_dict(), "repeats": repeats,
             "cases": [{"example": e, "params": p, "results": r} for e, p, r in rows]},
            indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
