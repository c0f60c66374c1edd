"""The paper's claim 2 in its own setting and in ours: encodings, augmentation, priors.

    .venv/bin/python benchmarks/encodings.py [--tune FILE]
        [--seeds N]

On the shipped reference data (the same training and held-out rows for every
model), trains every combination's model in each family — annc's encoding (logs
of the sizes, the complexity padded to whole vectors), the same before issue 15
(textbook complexity), the same with the innermost extent of element-wise kernels,
and the paper's (the raw sizes, standardised), each without and with the
complexity feature, at the paper's size (8 hidden units, at most 75 parameters)
and as the larger FFNN (32 units), and annc's encoding with a complexity prior
(the network learns the residual over a least-squares line in the complexity and
the dtype; 7 hidden units so that it stays within 75 parameters). Reports per
family the median held-out MAPE, its median ratio to each combination's noise
floor, the worst, and how often the augmented model beats the plain one of the
same family. With `--tune`, also each family's error on real workloads: every
candidate that `annc tune` measured in that file (written by
`benchmarks/adaptation.py`), before any adaptation. With `--seeds N`, annc's
families are also trained with N seeds, to show what the seed alone moves. Writes
`benchmarks/results/encodings.md` and `.json`.

With `--extrapolate F`, the rows are split another way: per combination its training
and held-out rows together, sorted by the kernel's textbook complexity, the largest
fraction F held out and the rest trained on. That asks what the paper's augmentation
is for, predicting larger problems than those measured, and writes
`encodings_extrapolation.md` and `.json` instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import statistics
import time
from pathlib import Path

from harness import RESULTS, candidate_queries, passes_of

from annc.dsl.records import Query, Record
from annc.hardware.calibration.reference_data import load_reference
from annc.hardware.calibration.runs import noise_floor
from annc.hardware.devices.fingerprint import fingerprint
from annc.modeling import to_training_rows
from annc.predictor import families

BEFORE = {"shape_aware": False, "complexity": "complexity"}
"""The features of annc's models before issue 15: no innermost extent, the textbook
complexity."""
FAMILIES: dict[str, dict] = {
    # name: the encoding's options (`families.Networks`)
    "logs, padded complexity, 8 units (annc)": {},
    "logs, textbook complexity, 8 units (annc before)": BEFORE,
    "logs + innermost extent, padded complexity, 8 units": {"shape_aware": True},
    "raw sizes, 8 units (paper)": {"encoding": "raw", **BEFORE},
    "logs, padded complexity, 32 units (FFNN)": {"hidden": 32},
    "raw sizes, 32 units (FFNN)": {"encoding": "raw", "hidden": 32, **BEFORE},
    "logs, complexity prior + 7 units": {"hidden": 7, "prior": True},
}


def real_workload_queries(path: Path) -> list[tuple[tuple, Query, float]]:
    """(combination, configuration, measured seconds) of every candidate tune measured."""
    return [query for cases in passes_of(path) for query in candidate_queries(cases)]


def score_real(models: dict, queries: list) -> float | None:
    errors = []
    for combo, config, seconds in queries:
        model = models.get(combo)
        if model is None:
            continue
        (predicted,) = families.predictors({combo: model})[combo]([config])
        errors.append(abs(predicted - seconds) / seconds)
    return 100 * statistics.median(errors) if errors else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", type=Path, help="adaptation.json with tune measurements")
    parser.add_argument("--extrapolate", type=float, metavar="F",
                        help="hold out each combination's largest fraction F of rows (by "
                        "complexity) and train on the rest")
    parser.add_argument("--seeds", type=int, default=1,
                        help="also train annc's families with this many seeds and report "
                        "how much the figures move with the seed alone")
    args = parser.parse_args()
    reference = load_reference()
    assert reference is not None
    rows = to_training_rows(reference.measurements)
    if args.extrapolate:
        rows = largest_held_out(rows, args.extrapolate)
    noise = noise_floor(reference.measurements).by_combination
    queries = real_workload_queries(args.tune) if args.tune else []
    results = {}
    for family, options in FAMILIES.items():
        for augmented in (False, True):
            began = time.perf_counter()
            models = families.Networks(family, augmented=augmented, **options).models(rows)
            seconds = time.perf_counter() - began
            mapes = {c: m.summary["mape"] for c, m in models.items()
                     if m.summary["mape"] is not None}
            ratios = [mapes[c] / (100 * noise[c]) for c in mapes if noise.get(c)]
            results[(family, augmented)] = {
                "mapes": mapes, "median": statistics.median(mapes.values()),
                "worst": max(mapes.values()), "median_ratio": statistics.median(ratios),
                "params": max(m.parameter_count for m in models.values()),
                "train_s": seconds, "real": score_real(models, queries),
            }
            found = results[(family, augmented)]
            print(f"{family} augmented={augmented}: median {found['median']:.1f}% ratio "
                  f"{found['median_ratio']:.2f} in {seconds:.1f} s", flush=True)
    spread = seed_spread(rows, noise, args.seeds, results) if args.seeds > 1 else []
    write(results, args.tune, args.seeds, spread, args.extrapolate)


def largest_held_out(rows: list[Record], fraction: float) -> list[Record]:
    """Per combination, its rows re-split: the largest `fraction` by complexity held out."""
    by_combo: dict[tuple, list[Record]] = {}
    for row in rows:
        by_combo.setdefault(row.combination, []).append(row)
    split = []
    for found in by_combo.values():
        ordered = sorted(found, key=lambda r: r.query.complexity)
        cut = len(ordered) - max(1, round(fraction * len(ordered)))
        split += [dataclasses.replace(r, split="train" if i < cut else "test")
                  for i, r in enumerate(ordered)]
    return split


SEEDED = ("logs, padded complexity, 8 units (annc)",
          "logs, textbook complexity, 8 units (annc before)",
          "logs + innermost extent, padded complexity, 8 units")


def seed_spread(rows: list, noise: dict, seeds: int, results: dict) -> list[str]:
    """Per seed, for annc's features now and before: median MAPE, its median ratio to
    the noise floor, and the augmented model's share of wins over the plain one; then
    per family which comparisons the seed decides (`decided`). Seed 0 is the main
    table's training (`results`), not trained again."""
    lines = ["| features | seed | median MAPE | median MAPE / noise | augmented beats plain |",
             "|---|---|---|---|---|"]
    outcomes = []
    for family in SEEDED:
        per_seed = []
        for seed in range(seeds):
            augmented, plain = (
                results[(family, flag)]["mapes"] if seed == 0 else
                {c: m.summary["mape"] for c, m in families.Networks(
                    family, augmented=flag, seed=seed, **FAMILIES[family]).models(rows).items()
                 if m.summary["mape"] is not None} for flag in (True, False))
            per_seed.append((augmented, plain))
            ratios = [augmented[c] / (100 * noise[c]) for c in augmented if noise.get(c)]
            common = [c for c in augmented if c in plain]
            wins = sum(augmented[c] < plain[c] for c in common) / len(common)
            lines.append(f"| {family} | {seed} | {statistics.median(augmented.values()):.1f}% "
                         f"| {statistics.median(ratios):.2f} | {wins:.0%} |")
            print(lines[-1], flush=True)
        outcomes.append((family, decided(per_seed)))
    lines += ["", f"Which comparisons the seed decides, over the {seeds} seeds: the augmented "
              "model wins a combination when its held-out MAPE is lower with every seed, "
              "the plain one when higher with every seed, and otherwise the seed decides. "
              "*On the seeds' mean* compares the two MAPEs averaged over the seeds.", "",
              "| features | augmented wins | plain wins | the seed decides | augmented's share "
              "of the decided | on the seeds' mean |", "|---|---|---|---|---|---|"]
    for family, (wins, losses, open_, on_mean) in outcomes:
        share = f"{wins / (wins + losses):.0%}" if wins + losses else "-"
        lines.append(f"| {family} | {wins} | {losses} | {open_} | {share} | {on_mean:.0%} |")
    return lines


def decided(per_seed: list[tuple[dict, dict]]) -> tuple[int, int, int, float]:
    """Over seeds of (augmented, plain) MAPEs per combination: how many combinations the
    augmented model wins with every seed, loses with every seed, and neither; and its
    share of wins on the MAPEs averaged over the seeds."""
    common = set.intersection(*(set(a) & set(p) for a, p in per_seed))
    wins = losses = 0
    for c in common:
        better = {a[c] < p[c] for a, p in per_seed}
        if better == {True}:
            wins += 1
        elif better == {False}:
            losses += 1
    on_mean = sum(statistics.fmean(a[c] for a, _ in per_seed)
                  < statistics.fmean(p[c] for _, p in per_seed) for c in common)
    return wins, losses, len(common) - wins - losses, on_mean / len(common)


def _percent(value: float) -> str:
    """A percentage; one beyond 10,000% (a network far outside its training range) in
    powers of ten."""
    return f"{value:.1f}%" if value < 1e4 else f"{value:.0e}%"


def write(results: dict, tune: Path | None, seeds: int, spread: list[str],
          extrapolate: float | None) -> None:
    lines = ["| family | complexity feature | params | median MAPE | median MAPE / noise | "
             "worst | real workloads (median APE) | augmented beats plain |",
             "|---|---|---|---|---|---|---|---|"]
    summary = {}
    for family in FAMILIES:
        plain, augmented = results[(family, False)], results[(family, True)]
        common = [c for c in augmented["mapes"] if c in plain["mapes"]]
        wins = sum(augmented["mapes"][c] < plain["mapes"][c] for c in common) / len(common)
        summary[family] = wins
        for flag, r in (("without", plain), ("with", augmented)):
            lines.append(
                f"| {family} | {flag} | {r['params']} | {_percent(r['median'])} | "
                f"{r['median_ratio']:.2f} | {_percent(r['worst'])} | "
                f"{'-' if r['real'] is None else format(r['real'], '.1f') + '%'} | "
                f"{f'{wins:.0%}' if flag == 'with' else ''} |")
    machine = fingerprint()
    split = ("Every combination's rows sorted by complexity: the largest "
             f"{extrapolate:.0%} held out, the rest trained on. " if extrapolate else "")
    text = "\n".join([
        "# Claim 2 in the paper's encoding and in annc's"
        f"{': predicting larger problems' if extrapolate else ''}", "",
        f"Reference data of machine `{machine.id}`; {datetime.date.today().isoformat()}. "
        "Command: `python benchmarks/encodings.py"
        f"{f' --tune {tune}' if tune else ''}"
        f"{f' --seeds {seeds}' if seeds > 1 else ''}"
        f"{f' --extrapolate {extrapolate:g}' if extrapolate else ''}`. {split}Held-out MAPE "
        "per combination on the same rows for every family; the noise ratio divides it by "
        "the combination's own noise floor (its re-measurements against its held-out "
        "rows).", "", *lines, "",
        *(["## Across training seeds", "", "The same rows, only the training seed changed:",
            "", *spread, ""] if spread else []),
    ])
    RESULTS.mkdir(exist_ok=True)
    stem = "encodings_extrapolation" if extrapolate else "encodings"
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {f"{family} | {'augmented' if aug else 'plain'}": {
            k: (v if k != "mapes" else {"/".join(c): m for c, m in v.items()})
            for k, v in r.items()} for (family, aug), r in results.items()}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
