"""Device placement with `target cpu, DEV`: annc's plan against all-CPU and all-DEV.

    .venv/bin/python benchmarks/placement.py                     # cpu, opencl
    python benchmarks/placement.py --target cpu,gpu --out placement-gpu.md

For three examples, the same program runs three ways: placed by annc over
`cpu, DEV`; with `--target cpu`; with `--target DEV` (every op that has a
variant there; the others stay on the CPU). Each is run once to compile, then
timed end to end (planning, dispatch, kernels and copies) as the median of 3 runs.
Also reported: which devices annc used and the time spent copying. Writes
`benchmarks/results/placement.md` unless `--out` names another file; `--json`
also writes the figures as JSON. `--quick` runs tiny sizes, timed once: a check
that the benchmark runs, not a measurement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp

from annc.compiler import compile_file, select
from annc.running import run_module
from hardware.devices.available import available_devices
from hardware.devices.fingerprint import fingerprint

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RESULTS = Path(__file__).resolve().parent / "results"
CASES = [
    ("heat", {"N": 1024, "STEPS": 20}),
    ("detector_smoothing", {"N": 1024, "P": 15, "PASSES": 2}),
    ("markov_chain", {"M": 600, "SQUARINGS": 6}),
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


def table(device: str, rows: list[tuple[str, dict[str, int], dict]], repeats: int,
          command: str) -> list[str]:
    machine = fingerprint()
    described = available_devices()[device].description
    lines = [
        f"# Placement over cpu and {device}", "",
        f"Machine `{machine.id}` ({machine.cpu_model}, {machine.cores} cores; {device}: "
        f"{described}); {datetime.date.today().isoformat()}. Command: `{command}`. "
        f"End-to-end run time, median of {repeats} after a compiling run.", "",
        f"| example | sizes | annc | all cpu | all {device} | annc used | annc copies |",
        "|---|---|---|---|---|---|---|",
    ]
    for example, params, results in rows:
        sizes = ", ".join(f"{k}={v}" for k, v in params.items())
        annc = results["annc"]
        lines.append(
            f"| {example} | {sizes} | {annc['seconds'] * 1e3:.1f} ms | "
            f"{results['all cpu']['seconds'] * 1e3:.1f} ms | "
            f"{results[f'all {device}']['seconds'] * 1e3:.1f} ms | "
            f"{', '.join(annc['devices'])} | {annc['transfer_s'] * 1e3:.2f} ms |")
    lines.append("")
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
        results = {way: timed_run(example, params, targets, repeats)
                   for way, targets in ways(device).items()}
        rows.append((example, params, results))
        print(example, {k: round(v["seconds"], 4) for k, v in results.items()}, flush=True)
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
