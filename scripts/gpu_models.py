"""The GPU models of a lent machine's shipped data: each combination's error beside its noise.

    .venv/bin/python scripts/gpu_models.py [FINGERPRINT]

Runs `annc evaluate --machine FINGERPRINT --report json` (default: the one machine in
`hardware/calibration/data/machines/`) and writes `benchmarks/results/gpu/models.md`
and `models_eval.json`: per GPU combination its training and test rows, held-out MAPE,
noise floor, their ratio and the plain network's MAPE; the medians; the combinations
above 3x their noise floor plus 5 points; and the host CPU's combinations in summary
(their noise passes were not measured on that machine).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from annc.hardware.calibration.reference_data import DATA_FOLDER

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "gpu"


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "n/a"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    machines = sorted(p.name for p in (DATA_FOLDER / "machines").iterdir() if p.is_dir())
    machine = args[0] if args else machines[0]
    done = subprocess.run([sys.executable, "-m", "annc", "evaluate", "--machine", machine,
                           "--report", "json"], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    metadata = json.loads((DATA_FOLDER / "machines" / machine / "reference.json").read_text())
    gpu = [c for c in report["combos"] if c["device"] == "gpu"]
    cpu = [c for c in report["combos"] if c["device"] == "cpu"]
    ratios = [c["noise_ratio"] for c in gpu if c["noise_ratio"] is not None]
    above = [c for c in gpu if c["noise_mape"] is not None
             and c["mape"] > 3 * c["noise_mape"] + 5]
    wins = sum(c["mape"] < c["baselines"]["plain_mlp"] for c in gpu)
    accelerators = "; ".join(metadata["fingerprint"]["accelerators"])
    lines = [
        f"# GPU models of machine `{machine}`", "",
        f"{accelerators}; host {metadata['fingerprint']['cpu_model']}, "
        f"{metadata['fingerprint']['cores']} cores. Measured {metadata['measured_from'][:16]} "
        f"to {metadata['measured_to'][:16]} UTC ({metadata['rows']} rows, "
        f"{metadata['calibration_s']:.0f} s of calibration in two budgeted calls). "
        f"Command: `python scripts/gpu_models.py` (`annc evaluate --machine {machine}`).",
        "",
        f"- GPU combinations: {len(gpu)}; median held-out MAPE "
        f"{_median([c['mape'] for c in gpu])}%, median noise floor "
        f"{_median([c['noise_mape'] for c in gpu if c['noise_mape'] is not None])}%, "
        f"median ratio {_median(ratios)}.",
        f"- Above 3x their noise floor + 5 points: {len(above)}"
        + (f" ({', '.join(c['kernel'] + ' ' + c['variant'] for c in above)})" if above else "")
        + ".",
        f"- The augmented network beats the plain one on {wins} of {len(gpu)}.",
        f"- Host CPU combinations: {len(cpu)}; median held-out MAPE "
        f"{_median([c['mape'] for c in cpu])}% (no noise passes on the host).", "",
        "| kernel | variant | train | test | MAPE | noise | ratio | plain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted(gpu, key=lambda c: (c["kernel"], c["variant"])):
        noise = "n/a" if c["noise_mape"] is None else f"{c['noise_mape']:.1f}%"
        ratio = "n/a" if c["noise_ratio"] is None else f"{c['noise_ratio']:.2f}"
        lines.append(f"| {c['kernel']} | {c['variant']} | {c['train_n']} | {c['test_n']} | "
                     f"{c['mape']:.1f}% | {noise} | {ratio} | "
                     f"{c['baselines']['plain_mlp']:.1f}% |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "models.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "models_eval.json").write_text(json.dumps(report, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
