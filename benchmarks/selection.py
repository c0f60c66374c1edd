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
import statistics
from pathlib import Path

from harness import AUTO, EXAMPLES, OWN_HALIDE, RESULTS, example_sizes, geomean
from rich.console import Console
from xdsl.dialects.builtin import ModuleOp

from annc.commands.tune import tune
from annc.compiler import compile_file
from annc.hardware.devices.fingerprint import fingerprint
from annc.passes.select_variants import plan_selection

BACKENDS = {
    "numpy": lambda kernel: {"conv2d": "shifted"}.get(kernel, "numpy"),
    "jax": lambda kernel: {"conv2d": "jax.lax"}.get(kernel, "jax"),
    "halide (annc's schedules)": lambda kernel: OWN_HALIDE.get(kernel, "halide"),
}


def _candidate(op: dict, variant: str, device: str = "cpu") -> dict | None:
    for c in op["candidates"]:
        if (c["variant"], c["device"]) == (variant, device) and c["measured_s"] is not None:
            return c
    return None


def _time(op: dict, variant: str, device: str = "cpu") -> float | None:
    c = _candidate(op, variant, device)
    return None if c is None else c["measured_s"]


def _cost(c: dict | None, trips: int, with_compile: bool) -> float | None:
    if c is None:
        return None
    return trips * c["measured_s"] + ((c["compile_s"] or 0.0) if with_compile else 0.0)


def strategies(report: dict, trips: list[int], with_compile: bool) -> dict[str, float | None]:
    """Total measured seconds of each strategy (trips × run time, plus each op's build
    time `with_compile`); None where one of its picks failed."""
    totals: dict[str, list[float | None]] = {}

    def add(name: str, value: float | None) -> None:
        totals.setdefault(name, []).append(value)

    for op, n in zip(report["ops"], trips, strict=True):
        costs = [_cost(c, n, with_compile) for c in op["candidates"]
                 if c["measured_s"] is not None]
        add("oracle", min(costs) if costs else None)
        add("annc", _cost(_candidate(op, op["chosen"]["variant"], op["chosen"]["device"]), n,
                          with_compile))
        for name, pick in BACKENDS.items():
            add(name, _cost(_candidate(op, pick(op["kernel"])), n, with_compile))
        for scheduler in AUTO:
            auto = _candidate(op, f"halide.auto.{scheduler}")
            own = _candidate(op, OWN_HALIDE.get(op["kernel"], "halide"))
            add(f"halide.auto.{scheduler}", _cost(auto or own, n, with_compile))
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


def chosen_over_best(report: dict, trips: list[int], with_compile: bool) -> list[float]:
    """Per op: the chosen candidate's measured cost over the least measured cost."""
    ratios = []
    for op, n in zip(report["ops"], trips, strict=True):
        costs = [_cost(c, n, with_compile) for c in op["candidates"] if c["measured_s"]]
        chosen = _cost(_candidate(op, op["chosen"]["variant"], op["chosen"]["device"]), n,
                       with_compile)
        if costs and chosen:
            ratios.append(chosen / min(costs))  # type: ignore[type-var]
    return ratios


def run_case(example: str, params: dict[str, int], console: Console) -> dict:
    module = compile_file(EXAMPLES / f"{example}.ann", params=params, targets=["cpu"],
                          emit="ir")
    assert isinstance(module, ModuleOp)
    plan = plan_selection(module)
    report = tune(module, None, 120.0, console, plan)
    trips = [op.site.trips for op in plan.ops]
    return {"example": example, "params": params, "models": plan.models,
            "totals": strategies(report, trips, with_compile=True),
            "run_only": strategies(report, trips, with_compile=False),
            "errors": prediction_errors(report), "trips": trips,
            "ratios": chosen_over_best(report, trips, with_compile=False),
            "cost_ratios": chosen_over_best(report, trips, with_compile=True),
            "tune": report}


def markdown(cases: list[dict], key: str = "totals") -> str:
    names = ["annc", "oracle", *BACKENDS, *(f"halide.auto.{s}" for s in AUTO)]
    lines = ["| example | sizes | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for case in cases:
        sizes = ", ".join(f"{k}={v}" for k, v in case["params"].items())
        cells = []
        for name in names:
            value = case[key].get(name)
            cells.append("-" if value is None else f"{value * 1e3:.4g} ms")
        lines.append(f"| {case['example']} | {sizes} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios_summary(cases: list[dict], key: str = "totals") -> list[str]:
    lines = []
    for name in ["oracle", *BACKENDS, *(f"halide.auto.{s}" for s in AUTO)]:
        ratios = [case[key][name] / case[key]["annc"] for case in cases
                  if case[key].get(name) and case[key].get("annc")]
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
    sizes = example_sizes(args.quick, args.examples)
    console = Console(stderr=True)
    cases = []
    for example, variants in sizes.items():
        for params in variants:
            console.print(f"{example} {params}")
            cases.append(run_case(example, params, console))
    stem = "selection_quick" if args.quick else "selection"
    errors = [e for c in cases for e in c["errors"]]
    ratios = [r for c in cases for r in c["ratios"]]
    cost_ratios = [r for c in cases for r in c["cost_ratios"]]
    machine = fingerprint()
    text = "\n".join([
        "# Selection against the oracle and the peers", "",
        f"Machine `{machine.id}` ({machine.cpu_model}, {machine.cores} cores); "
        f"{datetime.date.today().isoformat()}; models: {cases[0]['models'] if cases else '-'}. "
        "Command: `python benchmarks/selection.py`. Each total is Σ over ops of (trip count "
        "× the median time of that op's pick + the time it took to build it), measured alone "
        "on its real shapes by `annc tune` (CPU only): what one run of the program costs, "
        "compilation included, which is what annc minimises. The oracle takes, per op, the "
        "candidate of least measured cost.", "",
        markdown(cases), "",
        *ratios_summary(cases), "",
        "Run time only (compilation left out, as if every pipeline were already compiled):",
        "",
        markdown(cases, "run_only"), "",
        *ratios_summary(cases, "run_only"), "",
        f"Per op, measured(chosen) / measured(best candidate), counting each op's build "
        f"time once beside its trip count × run time (what annc minimises): geometric mean "
        f"{geomean(cost_ratios):.3f}, worst {max(cost_ratios, default=float('nan')):.2f} over "
        f"{len(cost_ratios)} ops. Per execution alone (build time left out): geometric mean "
        f"{geomean(ratios):.3f}, worst {max(ratios, default=float('nan')):.2f}; there annc "
        "loses where it declined a compiled variant whose build would not pay for itself "
        "within the program's trip count.",
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
