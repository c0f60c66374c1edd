"""The paper's accuracy table on this project's reference data, and the learning curve.

    .venv/bin/python benchmarks/accuracy.py

The augmented network against the plain MLP (same size and the larger FFNN),
linear regression on log complexity, the roofline and gradient-boosted trees
(with the `bench` extra), all trained on the same rows and scored on the same
held-out rows; then the median held-out MAPE of the augmented and the plain
network as the training rows per combination grow from 25 to 250. Writes
`benchmarks/results/accuracy.md` and `accuracy.png`.
"""

from __future__ import annotations

import datetime
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from harness import RESULTS

from annc.dsl.records import Record
from annc.evaluation import evaluate
from annc.hardware.calibration.reference_data import load_reference
from annc.hardware.calibration.runs import noise_floor
from annc.modeling import roofline_peaks, to_training_rows
from annc.predictor import families
from annc.predictor.mlp import parameter_count

CURVE = (25, 50, 100, 150, 200, 250)


def subsample(rows: list[Record], n: int, seed: int = 0) -> list[Record]:
    """At most n training rows per combination (all its test rows stay)."""
    by_combo: dict[tuple, list[Record]] = defaultdict(list)
    for r in rows:
        if r.split == "train":
            by_combo[r.combination].append(r)
    rng = np.random.default_rng(seed)
    kept = [r for r in rows if r.split == "test"]
    for combo_rows in by_combo.values():
        picks = rng.permutation(len(combo_rows))[:n]
        kept += [combo_rows[i] for i in sorted(picks)]
    return kept


def learning_curve(rows: list[Record]) -> list[tuple[int, float, float]]:
    points = []
    for n in CURVE:
        sample = subsample(rows, n)
        augmented = families.score(families.Networks("augmented").fit(sample), sample)
        plain = families.score(families.Networks("plain", augmented=False).fit(sample), sample)
        points.append((n, statistics.median(augmented.values()),
                       statistics.median(plain.values())))
        print(points[-1], flush=True)
    return points


def main() -> None:
    reference = load_reference()
    assert reference is not None, "no reference data in hardware/calibration/data"
    rows = to_training_rows(reference.measurements)
    start = time.perf_counter()
    result = evaluate(rows, noise_floor(reference.measurements), roofline_peaks(rows))
    seconds = time.perf_counter() - start
    s = result["summary"]
    combos = result["combos"]
    names = list(s["baseline_medians"])
    table = ["| model | median MAPE | worst MAPE | parameters |", "|---|---|---|---|"]
    table.append(f"| augmented NN (annc) | {s['median_mape']:.1f}% | {s['worst_mape']:.1f}% | "
                 f"≤ {s['max_params']} |")
    sizes = {"plain_mlp": f"≤ {parameter_count(6)}", "ffnn": f"≤ {parameter_count(6, 32)}",
             "linear_complexity": "3", "roofline": "0 (2 machine peaks)",
             "boosted_trees": "200 trees of depth 4"}
    for name in names:
        values = [c["baselines"][name] for c in combos if name in c["baselines"]]
        table.append(f"| {name} | {statistics.median(values):.1f}% | {max(values):.1f}% | "
                     f"{sizes.get(name, '-')} |")
    by_backend: dict[str, list[dict]] = defaultdict(list)
    for c in combos:
        by_backend[f"{c['device']}: {c['variant'].split('.')[0]}"].append(c)
    backends = ["| variants | combinations | median MAPE | worst MAPE | median noise floor |",
                "|---|---|---|---|---|"] + [
        f"| {k} | {len(v)} | {statistics.median(c['mape'] for c in v):.1f}% | "
        f"{max(c['mape'] for c in v):.1f}% | {_median_noise(v)} |"
        for k, v in sorted(by_backend.items())]
    per_combination = ["| kernel | variant | device | train rows | noise floor | augmented | "
                       "plain MLP |", "|---|---|---|---|---|---|---|"] + [
        f"| {c['kernel']} | {c['variant']} | {c['device']} | {c['train_n']} | "
        f"{_maybe(c['noise_mape'])} | {c['mape']:.1f}% | "
        f"{_maybe(c['baselines'].get('plain_mlp'))} |"
        for c in sorted(combos, key=lambda c: c["mape"])]
    curve = learning_curve(rows)
    _plot(curve, result, RESULTS / "accuracy.png")
    meta = reference.metadata
    lines = [
        "# Accuracy of the performance models", "",
        f"Reference data of machine `{meta['fingerprint']['id']}` "
        f"({meta['fingerprint']['cpu_model']}, {meta['fingerprint']['cores']} cores), "
        f"{meta['rows']} measurements taken {meta['measured_from'][:10]}; evaluated "
        f"{datetime.date.today().isoformat()}. Command: `python benchmarks/accuracy.py`.", "",
        f"{s['combinations']} kernel–variant–device combinations; at most {s['max_params']} "
        f"parameters and {s['max_train_n']} training rows per model. Training every "
        f"augmented model took {s['train_seconds']:.1f} s; one batched prediction costs "
        f"{s['seconds_per_prediction'] * 1e6:.2f} µs per candidate. The augmented model beats "
        f"the plain MLP on {100 * s['beats_plain_mlp_share']:.0f}% of combinations. Noise "
        f"floor (each combination's own test configurations measured again in two later "
        f"passes, against the held-out rows): {s['noise_floor_mape']:.1f}% MAPE over all "
        f"of them, median over "
        f"combinations {s['median_noise_mape']:.1f}%.", "",
        *table, "",
        *backends, "",
        "Learning curve (median held-out MAPE against training rows per combination):", "",
        "| training rows | augmented | plain MLP |", "|---|---|---|",
        *(f"| {n} | {a:.1f}% | {p:.1f}% |" for n, a, p in curve), "",
        "![accuracy](accuracy.png)", "",
        "Every combination, best first (noise floor: its own re-measurements' MAPE):", "",
        *per_combination, "",
        f"(This benchmark took {seconds:.0f} s for the table.)", "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "accuracy.md").write_text("\n".join(lines))
    print("\n".join(lines))


def _maybe(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _median_noise(combos: list[dict]) -> str:
    values = [c["noise_mape"] for c in combos if c["noise_mape"] is not None]
    return _maybe(statistics.median(values) if values else None)


def _plot(curve, result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    n, augmented, plain = zip(*curve, strict=True)
    left.plot(n, augmented, "o-", label="augmented (annc)")
    left.plot(n, plain, "s-", label="plain MLP")
    left.set_xlabel("training rows per combination")
    left.set_ylabel("median held-out MAPE (%)")
    left.legend()
    names = ["augmented", *result["summary"]["baseline_medians"]]
    values = [[c["mape"] for c in result["combos"]]] + [
        [c["baselines"][k] for c in result["combos"] if k in c["baselines"]] for k in names[1:]]
    right.boxplot(values, tick_labels=names, showfliers=False)
    right.set_ylabel("held-out MAPE per combination (%)")
    right.tick_params(axis="x", labelrotation=30)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


if __name__ == "__main__":
    main()
