"""Does Mullapudi2016's fusion decision make its models better, held out and where annc runs?

    .venv/bin/python benchmarks/fusion_trait.py [--seeds 6] [--tune FILE ...]

Mullapudi2016 computes a stage inside its consumer for some shapes and not others,
and its models take that decision (`fused`, read from its schedule) in place of the
bytes (`hardware.variants.halide.schedule_traits`). On the shipped reference rows,
trains the model of each such combination as annc does (`fit_models`) with the trait
and without it, over several training seeds, and scores both on the held-out rows
and on every candidate of that combination that `annc tune` timed in the given files:
`benchmarks/adaptation.py`'s (one pass) or `benchmarks/workloads.py`'s (two passes);
by default the fourteen passes of 2026-11-26 kept in `benchmarks/results/tune_passes/`
(06:48 to 13:08, the examples' candidates as `tune` timed them). Real-workload
errors are pooled over the passes per seed, then averaged over the seeds. Writes
`benchmarks/results/fusion_trait.md`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import statistics
from pathlib import Path

import numpy as np
from choices_by_encoding import RESULTS, candidate_queries, passes_of

from annc.modeling import to_training_rows
from hardware.calibration.reference_data import load_reference
from hardware.calibration.runs import noise_floor
from hardware.devices.fingerprint import fingerprint
from hardware.variants.halide.schedule_traits import TRAITED
from predictor.fitting import Measurement, fit_models, predict_seconds

Combo = tuple[str, str, str]


def real_queries(passes: list[list[dict]], combos: set[Combo]) -> dict[Combo, list[tuple]]:
    """Every measured candidate of these combinations: (configuration, seconds, pass)."""
    found: dict[Combo, list[tuple]] = {c: [] for c in combos}
    for number, cases in enumerate(passes):
        for combo, config, seconds in candidate_queries(cases):
            if combo in found:
                found[combo].append((config, seconds, number))
    return found


def without_traits(rows: list[Measurement]) -> list[Measurement]:
    return [dataclasses.replace(r, config=dataclasses.replace(r.config, traits=()))
            for r in rows]


def _lower_in(per_pass: dict[str, list[float]]) -> str:
    """In how many passes the trait lowers the median APE (mean over seeds)."""
    pairs = [(w, b) for w, b in zip(per_pass["with"], per_pass["without"], strict=True)
             if not (np.isnan(w) or np.isnan(b))]
    return f"{sum(w < b for w, b in pairs)} of {len(pairs)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--tune", type=Path, nargs="*", help="files of tune measurements")
    args = parser.parse_args()
    files = args.tune or sorted((RESULTS / "tune_passes").glob("*.json.gz"))
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    reference = load_reference()
    assert reference is not None
    noise = noise_floor(reference.measurements).by_combination
    combos = {(kernel, variant, "cpu") for kernel, variant in TRAITED}
    rows = [r for r in to_training_rows(reference.measurements) if r.combo in combos]
    passes = [cases for f in files for cases in passes_of(f)]
    queries = real_queries(passes, combos)
    lines = ["| combination | `fused` | held-out MAPE: median over seeds | seeds' range "
             "| real workloads: median APE | mean APE | passes it is lower in |",
             "|---|---|---|---|---|---|---|"]
    for combo in sorted(combos):
        own = [r for r in rows if r.combo == combo]
        fused = sum(dict(r.config.traits).get("fused", 0.0) for r in own)
        configs = [q[0] for q in queries[combo]]
        seconds = np.array([q[1] for q in queries[combo]])
        which = np.array([q[2] for q in queries[combo]])
        per_pass: dict[str, list[float]] = {}
        for label, training, asked in (
                ("without", without_traits(own),
                 [dataclasses.replace(c, traits=()) for c in configs]),
                ("with", own, configs)):
            held, medians, means = [], [], []
            passes_median = np.zeros(len(passes))
            for seed in range(args.seeds):
                (model,) = fit_models(training, seed=seed).values()
                held.append(model.summary["mape"])
                if len(seconds):
                    errors = np.abs(predict_seconds(model, asked) - seconds) / seconds
                    medians.append(100 * float(np.median(errors)))
                    means.append(100 * float(np.mean(errors)))
                    passes_median += [np.median(errors[which == n]) if (which == n).any()
                                      else np.nan for n in range(len(passes))]
            per_pass[label] = list(passes_median / args.seeds)
            real = (f"{statistics.fmean(medians):.1f}% | {statistics.fmean(means):.1f}%"
                    if medians else "- | -")
            floor = noise.get(combo)
            name = (f"{combo[0]} {combo[1]} (noise {100 * floor:.1f}%, {fused:.0f} of "
                    f"{len(own)} fused)" if floor is not None else f"{combo[0]} {combo[1]}")
            lower = "" if label == "without" else _lower_in(per_pass)
            lines.append(f"| {name if label == 'without' else ''} | {label} | "
                         f"{statistics.median(held):.1f}% | {min(held):.1f}–{max(held):.1f}% "
                         f"| {real} | {lower} |")
            print(lines[-1], flush=True)
    text = "\n".join([
        "# Mullapudi2016's fusion as a model feature", "",
        f"Reference data of machine `{fingerprint().id}`; "
        f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M UTC')}. Command: "
        f"`python benchmarks/fusion_trait.py --seeds {args.seeds}"
        f"{' --tune ...' if args.tune else ''}`. Held-out MAPE of "
        f"annc's training over {args.seeds} seeds; real workloads: every candidate of the "
        f"combination in {len(passes)} `tune` passes ({', '.join(f.name for f in files)}), "
        "pooled per seed, mean over the seeds; and in how many of the passes the "
        "trait lowers the median APE (each pass's mean over the seeds).", "", *lines, ""])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fusion_trait.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
