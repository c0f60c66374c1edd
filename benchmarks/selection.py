"""annc's choices against the oracle, every single backend, and each Halide auto-scheduler.

    .venv/bin/python benchmarks/selection.py [--quick] [--examples heat,wave]

For every example at two realistic sizes: `tune` measures every candidate of every
op alone on its real shapes (median of repeats); a *strategy* picks one candidate
per op, and its time is the sum over ops of trip count × the measured time of its
pick. Strategies: annc (the `select-variants` plan), the oracle (the fastest
measured candidate of each op), each single backend everywhere (numpy, jax, annc's
own Halide schedules) and each Halide auto-scheduler for every kernel that has one
(annc's Halide schedules for the rest). Also the MAPE of annc's predictions against
these measurements. Writes `benchmarks/results/selection.md` and `selection.png`,
stamped with the fingerprint and date. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
from pathlib import Path

from rich.console import Console
from xdsl.dialects.builtin import ModuleOp

from annc.commands.tune import tune
from annc.compiler import compile_file
from hardware.fingerprint import fingerprint
from passes.select_variants import plan_selection

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RESULTS = Path(__file__).resolve().parent / "results"

SIZES: dict[str, list[dict[str, int]]] = {
    "heat": [{"N": 512, "STEPS": 50}, {"N": 1024, "STEPS": 20}],
    "wave": [{"N": 512, "STEPS": 50}, {"N": 1024, "STEPS": 20}],
    "poisson": [{"N": 512, "SWEEPS": 50}, {"N": 1024, "SWEEPS": 20}],
    "power_iteration": [{"N": 800, "ITERATIONS": 50}, {"N": 1500, "ITERATIONS": 50}],
    "conjugate_gradients": [{"N": 500, "ITERATIONS": 40}, {"N": 1000, "ITERATIONS": 40}],
    "detector_smoothing": [{"N": 512, "P": 15, "PASSES": 2}, {"N": 1024, "P": 31, "PASSES": 2}],
    "gram_matrix": [{"S": 400, "P": 1000}, {"S": 800, "P": 2000}],
    "markov_chain": [{"M": 400, "SQUARINGS": 8}, {"M": 800, "SQUARINGS": 8}],
}
QUICK: dict[str, list[dict[str, int]]] = {
    "heat": [{"N": 64, "STEPS": 3}],
    "gram_matrix": [{"S": 40, "P": 60}],
}

OWN_HALIDE = {"matmul": "halide.tiled", "matvec": "halide.tiled", "transpose": "halide.tiled",
              "conv2d": "halide.direct"}
BACKENDS = {
    "numpy": lambda kernel: {"conv2d": "shifted"}.get(kernel, "numpy"),
    "jax": lambda kernel: {"conv2d": "jax.lax"}.get(kernel, "jax"),
    "halide (annc's schedules)": lambda kernel: OWN_HALIDE.get(kernel, "halide"),
}
AUTO = ("mullapudi2016", "li2018", "adams2019")


def _time(op: dict, variant: str, device: str = "cpu") -> float | None:
    for c in op["candidates"]:
        if (c["variant"], c["device"]) == (variant, device):
            return c["measured_s"]
    return None


def strategies(report: dict, trips: list[int]) -> dict[str, float | None]:
    """Total measured seconds of each strategy; None where one of its picks failed."""
    totals: dict[str, list[float | None]] = {}

    def add(name: str, value: float | None, n: int) -> None:
        totals.setdefault(name, []).append(None if value is None else value * n)

    for op, n in zip(report["ops"], trips, strict=True):
        measured = [c["measured_s"] for c in op["candidates"] if c["measured_s"] is not None]
        add("oracle", min(measured) if measured else None, n)
        add("annc", _time(op, op["chosen"]["variant"], op["chosen"]["device"]), n)
        for name, pick in BACKENDS.items():
            add(name, _time(op, pick(op["kernel"])), n)
        for scheduler in AUTO:
            variant = f"halide.auto.{scheduler}"
            fallback = OWN_HALIDE.get(op["kernel"], "halide")
            value = _time(op, variant)
            add(f"halide.auto.{scheduler}", value if value is not None
                else _time(op, fallback), n)
    return {name: None if None in values else sum(values)  # type: ignore[arg-type]
            for name, values in totals.items()}


def prediction_errors(report: dict) -> list[float]:
    """|predicted − measured| / measured of every op's chosen candidate."""
    errors = []
    for op in report["ops"]:
        for c in op["candidates"]:
            if ((c["variant"], c["device"]) == (op["chosen"]["variant"], op["chosen"]["device"])
                    and c["predicted_s"] and c["measured_s"]):
                errors.append(abs(c["predicted_s"] - c["measured_s"]) / c["measured_s"])
    return errors


def chosen_over_best(report: dict) -> list[float]:
    ratios = []
    for op in report["ops"]:
        measured = [c["measured_s"] for c in op["candidates"] if c["measured_s"]]
        chosen = _time(op, op["chosen"]["variant"], op["chosen"]["device"])
        if measured and chosen:
            ratios.append(chosen / min(measured))
    return ratios


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else float("nan")


def run_case(example: str, params: dict[str, int], console: Console) -> dict:
    module = compile_file(EXAMPLES / f"{example}.ann", params=params, targets=["cpu"],
                          emit="ir")
    assert isinstance(module, ModuleOp)
    plan = plan_selection(module)
    report = tune(module, None, 120.0, console, plan)
    trips = [op.site.trips for op in plan.ops]
    return {"example": example, "params": params, "models": plan.models,
            "totals": strategies(report, trips), "errors": prediction_errors(report),
            "ratios": chosen_over_best(report), "tune": report}


def markdown(cases: list[dict]) -> str:
    names = ["annc", "oracle", *BACKENDS, *(f"halide.auto.{s}" for s in AUTO)]
    lines = ["| example | sizes | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for case in cases:
        sizes = ", ".join(f"{k}={v}" for k, v in case["params"].items())
        cells = []
        for name in names:
            value = case["totals"].get(name)
            cells.append("-" if value is None else f"{value * 1e3:.4g} ms")
        lines.append(f"| {case['example']} | {sizes} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios_summary(cases: list[dict]) -> list[str]:
    lines = []
    for name in ["oracle", *BACKENDS, *(f"halide.auto.{s}" for s in AUTO)]:
        ratios = [case["totals"][name] / case["totals"]["annc"] for case in cases
                  if case["totals"].get(name) and case["totals"].get("annc")]
        if ratios:
            lines.append(f"| {name} | {geomean(ratios):.3f} | {max(ratios):.3f} | "
                         f"{min(ratios):.3f} |")
    return ["| strategy | geomean of its time / annc's | max | min |", "|---|---|---|---|",
            *lines]


def plot(cases: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["oracle", *BACKENDS, *(f"halide.auto.{s}" for s in AUTO)]
    labels = [f"{c['example']}\n{'/'.join(str(v) for v in c['params'].values())}" for c in cases]
    figure, ax = plt.subplots(figsize=(max(8, 1.1 * len(cases)), 4.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [(c["totals"][name] / c["totals"]["annc"])
                  if c["totals"].get(name) and c["totals"].get("annc") else 0 for c in cases]
        ax.bar([x + i * width for x in range(len(cases))], values, width, label=name)
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("time / annc's time")
    ax.set_xticks([x + 0.4 for x in range(len(cases))], labels, fontsize=7)
    ax.legend(fontsize=7, ncols=3)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two tiny cases, a smoke test")
    parser.add_argument("--examples", help="only these examples (comma-separated)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else SIZES
    if args.examples:
        sizes = {k: v for k, v in sizes.items() if k in args.examples.split(",")}
    console = Console(stderr=True)
    cases = []
    for example, variants in sizes.items():
        for params in variants:
            console.print(f"{example} {params}")
            cases.append(run_case(example, params, console))
    stem = "selection_quick" if args.quick else "selection"
    errors = [e for c in cases for e in c["errors"]]
    ratios = [r for c in cases for r in c["ratios"]]
    machine = fingerprint()
    text = "\n".join([
        "# Selection against the oracle and the peers", "",
        f"Machine `{machine.id}` ({machine.cpu_model}, {machine.cores} cores); "
        f"{datetime.date.today().isoformat()}; models: {cases[0]['models'] if cases else '-'}. "
        "Command: `python benchmarks/selection.py`. Each total is Σ over ops of trip count × "
        "the median time of that op's pick, measured alone on its real shapes by `annc "
        "tune` (CPU only).", "",
        markdown(cases), "",
        *ratios_summary(cases), "",
        f"Per op, measured(chosen) / measured(best candidate): geometric mean "
        f"{geomean(ratios):.3f}, worst {max(ratios, default=float('nan')):.2f} over "
        f"{len(ratios)} ops.",
        f"MAPE of annc's predictions for the chosen candidates against these "
        f"measurements: {100 * statistics.fmean(errors) if errors else float('nan'):.1f}% "
        f"(median {100 * statistics.median(errors) if errors else float('nan'):.1f}%).", "",
        f"![selection]({stem}.png)", "",
    ])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(cases, indent=1))
    plot(cases, RESULTS / f"{stem}.png")
    print(text)


if __name__ == "__main__":
    main()
