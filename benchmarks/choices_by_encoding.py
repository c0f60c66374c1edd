"""The paper's claim 3 in both encodings: whose predicted choices beat the auto-schedulers.

    .venv/bin/python benchmarks/choices_by_encoding.py [--tune FILE]

Claim 3 of Srivastava et al. is that choosing each kernel's variant by the predicted
time beats Halide's auto-scheduler by up to 1.7x. `benchmarks/selection.py` tests it
with annc's plan; this asks it of the models alone, in annc's encoding (logs of the
sizes, the complexity padded to whole vectors) and in the paper's (the raw sizes and
the textbook complexity, standardised), each with and without the complexity, all
trained on the same rows of the shipped reference. Every candidate of every op of the
examples was timed alone by `annc tune` in the given file (written by
`benchmarks/adaptation.py`; by default the pass of 2026-11-26 12:50 kept in
`benchmarks/results/tune_passes/`). For each model set, every op takes the CPU candidate
predicted fastest per execution, and a workload's time is the sum over its ops of trip
count × the measured time of the pick: run time only, as the paper compares. The same
sum is taken for each auto-scheduler on every kernel it schedules (annc's own Halide
schedules elsewhere, as in `selection.py`), for the fastest candidates (the oracle),
and for annc's plan as `tune` recorded it (regions, builds and starts counted there).
Writes `benchmarks/results/choices_by_encoding.md` and `.json`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
from pathlib import Path

from harness import (
    AUTO,
    OWN_HALIDE,
    RESULTS,
    ROOT,
    TUNE_PASS,
    configuration_of,
    geomean,
    passes_of,
)

from annc.dsl.records import Combination, Query
from annc.hardware.calibration.reference_data import load_reference
from annc.hardware.devices.fingerprint import fingerprint
from annc.modeling import to_training_rows
from annc.predictor import families
from annc.predictor.models import Model

PAPER = {"encoding": "raw", "shape_aware": False, "complexity": "complexity"}
SCHEDULERS = {"mullapudi2016": "Mullapudi2016", "li2018": "Li2018", "adams2019": "Adams2019"}
MODEL_SETS: dict[str, dict] = {
    # name: the networks' options (`families.Networks`)
    "annc's encoding (logs), augmented": {},
    "annc's encoding (logs), plain": {"augmented": False},
    "the paper's encoding (raw sizes), augmented": PAPER,
    "the paper's encoding (raw sizes), plain": {"augmented": False, **PAPER},
}


def measured(op: dict) -> list[dict]:
    return [c for c in op["candidates"] if c["device"] == "cpu" and c["measured_s"]]


def predicted_pick(op: dict, options: list[tuple[dict, Query]],
                   models: dict[tuple, Model]) -> dict | None:
    """The measured CPU candidate (of `options`, each with its query) that these models
    predict fastest, None if none has a model."""
    best, best_s = None, math.inf
    for c, config in options:
        combo = Combination(op["kernel"], c["variant"], "cpu")
        model = models.get(combo)
        if model is None:
            continue
        (seconds,) = families.predictors({combo: model})[combo]([config])
        if seconds < best_s:
            best, best_s = c, seconds
    return best


def _named(op: dict, variant: str) -> dict | None:
    return next((c for c in measured(op) if c["variant"] == variant), None)


def totals(case: dict, model_sets: dict[str, dict[tuple, Model]]) -> dict[str, float | None]:
    """Run seconds of each strategy on one workload: Σ trips × measured time of its pick."""
    picks: dict[str, list[dict | None]] = {}
    for op in case["tune"]["ops"]:
        if not measured(op):
            continue
        picks.setdefault("oracle", []).append(min(measured(op), key=lambda c: c["measured_s"]))
        picks.setdefault("annc's plan", []).append(
            _named(op, op["chosen"]["variant"]) if op["chosen"]["device"] == "cpu" else None)
        options = [(c, configuration_of(op, c)) for c in measured(op)]
        for name, models in model_sets.items():
            picks.setdefault(name, []).append(predicted_pick(op, options, models))
        for scheduler in AUTO:
            picks.setdefault(f"halide.auto.{scheduler}", []).append(
                _named(op, f"halide.auto.{scheduler}")
                or _named(op, OWN_HALIDE.get(op["kernel"], "halide")))
    trips = [op["trips"] for op in case["tune"]["ops"] if measured(op)]
    return {name: None if None in chosen else sum(
                n * c["measured_s"] for n, c in zip(trips, chosen, strict=True))  # type: ignore[union-attr]
            for name, chosen in picks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", type=Path, default=TUNE_PASS,
                        help="a file of tune measurements (benchmarks/adaptation.py's, or "
                        "workloads.py's, whose first pass is taken)")
    args = parser.parse_args()
    reference = load_reference()
    assert reference is not None
    rows = to_training_rows(reference.measurements)
    model_sets = {name: families.Networks(name, **options).models(rows)
                  for name, options in MODEL_SETS.items()}
    cases = [{"example": case["example"], "params": case["params"],
              "totals": totals(case, model_sets)} for case in passes_of(args.tune)[0]]
    lines = ["| strategy | " + "".join(f"{SCHEDULERS[s]} / it: geomean | max | " for s in AUTO)
             + "it / the oracle: geomean | worst |", "|---|" + "---|---|" * (len(AUTO) + 1)]
    summary: dict[str, dict[str, float]] = {}
    for name in ["annc's plan", *MODEL_SETS, "oracle"]:
        cells, found = [], {}
        for other in [*(f"halide.auto.{s}" for s in AUTO), "oracle"]:
            ratios = [c["totals"][other] / c["totals"][name] for c in cases
                      if c["totals"].get(other) and c["totals"].get(name)]
            if other == "oracle":
                ratios = [1 / r for r in ratios]
            found[other] = geomean(ratios)
            cells += [f"{geomean(ratios):.3f}", f"{max(ratios):.2f}"]
        summary[name] = found
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M UTC")
    tune = args.tune.resolve()
    shown = tune.relative_to(ROOT) if tune.is_relative_to(ROOT) else tune
    text = "\n".join([
        "# Claim 3 in both encodings: predicted choices against the auto-schedulers", "",
        f"Reference data of machine `{fingerprint().id}`; {stamp}. Command: `python "
        f"benchmarks/choices_by_encoding.py --tune {shown}`. {len(cases)} workloads; "
        "per workload, the run time of each auto-scheduler's strategy over the "
        "strategy's (above 1: the strategy is faster), and the strategy's over the "
        "oracle's; geomean and extreme over the workloads. Run time only (trips × the "
        f"time `tune` measured); training seed 0; median of the workloads' "
        f"oracle time {1e3 * statistics.median(c['totals']['oracle'] for c in cases):.1f} ms.",
        "", *lines, ""])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "choices_by_encoding.md").write_text(text)
    (RESULTS / "choices_by_encoding.json").write_text(
        json.dumps({"tune": str(shown), "summary": summary, "cases": cases}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
