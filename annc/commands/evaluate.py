"""`annc evaluate`: held-out accuracy of every model, side by side with the baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from annc.commands.tables import add_wide_argument, console_for
from annc.dsl.errors import AnncError
from annc.evaluation import adaptation_curve, evaluate, plot
from annc.modeling import measurement_source, roofline_peaks, to_training_rows

HELP = "held-out accuracy of the performance models against the baselines"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", choices=("table", "json"), default="table",
                        help="a table (default) or one JSON object on standard output")
    add_wide_argument(parser)
    parser.add_argument("--plot", metavar="OUT.png",
                        help="also plot predicted against measured times, per kernel")
    parser.add_argument("--db", metavar="PATH",
                        help="evaluate on this machine's measurements in this database "
                        "(default: the package's reference data)")
    parser.add_argument("--machine", metavar="FINGERPRINT",
                        help="evaluate on the shipped reference data of that machine "
                        "(a lent GPU machine) instead of the reference machine's")
    parser.add_argument("--against", metavar="PATH",
                        help="instead: score the models selection uses on this database's "
                        "measurements (another day or machine), before and after adapting "
                        "to 0, 5, 10 and 25 of its rows per combination, and against models "
                        "retrained on all of them")


def run(args: argparse.Namespace) -> int:
    if args.against:
        return _against(args)
    if args.machine and args.db:
        raise AnncError("evaluate: --machine names shipped reference data, --db a database: "
                        "give one")
    source = measurement_source(Path(args.db) if args.db else None, reference=not args.db,
                                machine=args.machine)
    rows = to_training_rows(source.stored)
    result = evaluate(rows, source.noise, roofline_peaks(rows))
    if args.plot:
        plot(result, rows, Path(args.plot))
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    if args.report == "json":
        print(json.dumps(public))
        return 0
    _print_table(console_for(args), public, source.description)
    return 0


def _against(args: argparse.Namespace) -> int:
    from annc.passes.models import load_models

    notes: list[str] = []
    chosen = load_models(notes)
    source = measurement_source(Path(args.against), reference=False)
    result = adaptation_curve(chosen.trained, to_training_rows(source.stored))
    result["models"] = chosen.description
    result["measurements"] = f"{source.description} in {args.against}"
    if args.report == "json":
        print(json.dumps(result))
        return 0
    console = console_for(args)
    table = Table(title=f"median MAPE (%) over {result['combinations']} combinations on the "
                  f"held-out rows of {result['measurements']}, models: {result['models']}")
    table.add_column("corrections")
    ks = list(dict.fromkeys(point["k"] for point in result["curve"]))
    for k in ks:
        table.add_column(f"k={k}", justify="right")
    for name in dict.fromkeys(point["corrections"] for point in result["curve"]):
        values = {p["k"]: p["median_mape"] for p in result["curve"] if p["corrections"] == name}
        table.add_row(name, *(_percent(values.get(k)) for k in ks))
    console.print(table)
    return 0


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print_table(console: Console, result: dict, description: str) -> None:
    names = sorted({name for c in result["combos"] for name in c["baselines"]})
    table = Table(title=f"held-out MAPE (%) on {description}")
    for column in ("kernel", "variant", "device", "params", "train", "test", "noise",
                   "augmented", "x noise", *names):
        table.add_column(column, justify="left" if column in ("kernel", "variant", "device")
                         else "right")
    for c in result["combos"]:
        table.add_row(c["kernel"], c["variant"], c["device"], str(c["params"]),
                      str(c["train_n"]), str(c["test_n"]), _percent(c["noise_mape"]),
                      _percent(c["mape"]), _ratio(c["noise_ratio"]),
                      *(_percent(c["baselines"].get(n)) for n in names))
    console.print(table)
    s = result["summary"]
    console.print(
        f"{s['combinations']} combinations: median MAPE {_percent(s['median_mape'])}%, worst "
        f"{_percent(s['worst_mape'])}%; noise floor {_percent(s['noise_floor_mape'])}% "
        f"(median over combinations {_percent(s['median_noise_mape'])}%); held-out error "
        f"over the combination's noise floor: median {_ratio(s['median_noise_ratio'])}; "
        f"at most {s['max_params']} parameters and {s['max_train_n']} training rows; "
        f"beats the plain MLP on {100 * (s['beats_plain_mlp_share'] or 0):.0f}% of "
        f"combinations; training took {s['train_seconds']:.1f} s; "
        f"{s['seconds_per_prediction'] * 1e6:.2f} µs per prediction in a batch"
    )
    medians = ", ".join(f"{k} {v:.1f}%" for k, v in s["baseline_medians"].items())
    console.print(f"baseline medians: {medians}")
