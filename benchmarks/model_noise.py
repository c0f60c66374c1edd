"""Every model's held-out error beside its own noise floor, kernels and regions apart.

    .venv/bin/python benchmarks/model_noise.py

Runs `annc evaluate --report json` on the shipped reference data (the models are
trained as `annc train --reference` trains them) and writes
`benchmarks/results/region_models.md`: per region combination the training and
test rows, the held-out MAPE, the noise floor and the plain network's MAPE; and
for kernels and regions apart, the median ratio of error to noise floor, the CPU
combinations above 3x their noise floor plus 5 points (issue 15's bound; OpenCL
reported apart), and how often the augmented model beats the plain one.
"""

from __future__ import annotations

import datetime
import json
import statistics
import subprocess
import sys

from harness import RESULTS

from annc.predictor.features import is_region


def above_bound(combo: dict) -> bool:
    noise = combo["noise_mape"]
    return noise is not None and combo["mape"] > 3 * noise + 5


def group_lines(name: str, combos: list[dict]) -> list[str]:
    ratios = [c["noise_ratio"] for c in combos if c["noise_ratio"] is not None]
    wins = sum(c["mape"] < c["baselines"]["plain_mlp"] for c in combos)
    cpu = [c for c in combos if c["device"] == "cpu"]
    other = [c for c in combos if c["device"] != "cpu"]
    above = [f"{c['kernel']} {c['variant']} ({c['mape']:.1f}% against {c['noise_mape']:.1f}%)"
             for c in cpu if above_bound(c)]
    above_other = [f"{c['kernel']} {c['variant']} {c['device']}" for c in other
                   if above_bound(c)]
    return [
        f"- **{name}** ({len(combos)} combinations): median held-out MAPE "
        f"{statistics.median(c['mape'] for c in combos):.1f}%, median noise floor "
        f"{statistics.median(c['noise_mape'] for c in combos if c['noise_mape']):.1f}%, "
        f"median ratio {statistics.median(ratios):.2f}; the augmented model beats the plain "
        f"network of its size on {wins} of {len(combos)} ({100 * wins / len(combos):.0f}%); "
        f"CPU combinations above 3x their noise floor plus 5 points: "
        f"{len(above)}{': ' + '; '.join(above) if above else ''}"
        + (f"; OpenCL ones: {len(above_other)} of {len(other)}" if other else "") + "."]


def main() -> None:
    done = subprocess.run([sys.executable, "-m", "annc", "evaluate", "--report", "json"],
                          capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    combos = report["combos"]
    regions = [c for c in combos if is_region(c["kernel"])]
    kernels = [c for c in combos if not is_region(c["kernel"])]
    s = report["summary"]
    table = ["| combination | train/test | held-out MAPE | noise floor | plain MLP |",
             "|---|---|---|---|---|"]
    for c in regions:
        noise = "-" if c["noise_mape"] is None else f"{c['noise_mape']:.1f}%"
        table.append(f"| {c['kernel']} {c['variant']} | {c['train_n']}/{c['test_n']} | "
                     f"{c['mape']:.1f}% | {noise} | {c['baselines']['plain_mlp']:.1f}% |")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M")
    text = "\n".join([
        "# Models against their noise floor", "",
        f"{stamp} UTC. Command: `python benchmarks/model_noise.py` (`annc evaluate --report "
        f"json` on the shipped reference data). All {s['combinations']} combinations: median "
        f"held-out MAPE {s['median_mape']:.1f}%, median ratio to the combination's noise "
        f"floor {s['median_noise_ratio']:.2f}; the augmented model beats the plain one on "
        f"{100 * s['beats_plain_mlp_share']:.0f}%; training all models took "
        f"{s['train_seconds']:.1f} s inside `evaluate`; a prediction costs "
        f"{s['seconds_per_prediction'] * 1e6:.1f} µs.", "",
        *group_lines("Kernels", kernels), *group_lines("Regions", regions), "",
        "## Region combinations", "", *table, ""])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "region_models.md").write_text(text)
    (RESULTS / "model_noise.json").write_text(json.dumps(report, indent=1))
    print(text)


if __name__ == "__main__":
    main()
