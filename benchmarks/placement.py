"""Device placement with `target cpu, opencl`: annc's plan against all-CPU and all-OpenCL.

    .venv/bin/python benchmarks/placement.py

For three examples, the same program runs three ways: placed by annc over
`cpu, opencl`; with `--target cpu`; with `--target opencl` (every op that has an
OpenCL variant there; reductions, which have none, stay on the CPU). Each is run
once to compile, then timed end to end (interpreting, kernels and copies) as the
median of 3 runs. Also reported: which devices annc used and the time spent
copying. Writes `benchmarks/results/placement.md`.
"""

from __future__ import annotations

import datetime
import statistics
import time
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp

from annc.compiler import compile_file, select
from annc.running import run_module
from hardware.fingerprint import fingerprint

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RESULTS = Path(__file__).resolve().parent / "results"
CASES = [
    ("heat", {"N": 1024, "STEPS": 20}),
    ("detector_smoothing", {"N": 1024, "P": 15, "PASSES": 2}),
    ("markov_chain", {"M": 600, "SQUARINGS": 6}),
]
WAYS = {"annc (cpu, opencl)": ["cpu", "opencl"], "all cpu": ["cpu"], "all opencl": ["opencl"]}


def timed_run(example: str, params: dict[str, int], targets: list[str]) -> dict:
    module = compile_file(EXAMPLES / f"{example}.ann", params=params, targets=targets,
                          emit="ir")
    assert isinstance(module, ModuleOp)
    plan = select(module)
    run_module(module, seed=0)  # compile every variant once
    times, report = [], {}
    for _ in range(3):
        start = time.perf_counter()
        report = run_module(module, seed=0).report
        times.append(time.perf_counter() - start)
    devices = sorted({op["device"] for op in report["ops"]})
    return {"seconds": statistics.median(times), "predicted": plan.total_predicted_s,
            "transfer_s": report["transfer_s"], "devices": devices}


def main() -> None:
    rows = []
    for example, params in CASES:
        results = {way: timed_run(example, params, targets) for way, targets in WAYS.items()}
        rows.append((example, params, results))
        print(example, {k: round(v["seconds"], 4) for k, v in results.items()}, flush=True)
    machine = fingerprint()
    lines = [
        "# Placement over cpu and opencl", "",
        f"Machine `{machine.id}` ({machine.cpu_model}, {machine.cores} cores; opencl is PoCL "
        f"on the same CPU); {datetime.date.today().isoformat()}. Command: `python "
        "benchmarks/placement.py`. End-to-end run time, median of 3 after a compiling run.", "",
        "| example | sizes | annc | all cpu | all opencl | annc used | annc copies |",
        "|---|---|---|---|---|---|---|",
    ]
    for example, params, results in rows:
        sizes = ", ".join(f"{k}={v}" for k, v in params.items())
        annc = results["annc (cpu, opencl)"]
        lines.append(
            f"| {example} | {sizes} | {annc['seconds'] * 1e3:.1f} ms | "
            f"{results['all cpu']['seconds'] * 1e3:.1f} ms | "
            f"{results['all opencl']['seconds'] * 1e3:.1f} ms | {', '.join(annc['devices'])} | "
            f"{annc['transfer_s'] * 1e3:.2f} ms |")
    lines.append("")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "placement.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
