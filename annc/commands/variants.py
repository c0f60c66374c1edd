"""`annc variants`: list the variant library (built-in and plugins' variants, each with
its origin) and, with --check, verify every variant against its kernel's reference."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

from rich.console import Console
from rich.table import Table

from annc.commands.tables import add_wide_argument, console_for
from annc.dsl.errors import AnncError
from annc.hardware.variants import (
    KERNELS,
    Variant,
    all_variants,
    load_library,
    missing_library_notes,
    origin_of,
    plugin_notes,
)
from annc.hardware.variants.check import CHECK_SHAPES, DTYPES, CheckResult, check_variant

HELP = "list every kernel variant on this machine; --check verifies each against the reference"

Checks = dict[tuple[str, str, str], list[CheckResult]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="run every variant on odd and degenerate sizes in f32 and f64 "
                        "and compare with the numpy reference; exit 1 if any is wrong")
    parser.add_argument("--report", choices=("table", "json"), default="table",
                        help="a table (default) or one JSON object on standard output")
    add_wide_argument(parser)
    parser.add_argument("--kernels", metavar="K,...",
                        help="only these kernels, e.g. matmul,conv2d")
    parser.add_argument("--devices", metavar="DEV,...",
                        help="only variants on these devices, e.g. gpu")
    parser.add_argument("--variants", metavar="NAME,...",
                        help="only variants of these names, e.g. a plugin's")


def comma_names(text: str | None) -> list[str] | None:
    """The names of a comma-separated option; None when the option is absent."""
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def selected_kernels(text: str | None) -> tuple[str, ...]:
    """The kernels named in --kernels (all when absent); an unknown name is an error."""
    if text is None:
        return KERNELS
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in KERNELS]
    if unknown or not names:
        raise AnncError(f"--kernels: unknown kernel {', '.join(unknown) or '(none given)'} "
                        f"(known: {', '.join(KERNELS)})")
    return names


def run_checks(variants: list[Variant]) -> Checks:
    """Every variant on its kernel's check shapes in both dtypes; a spinner on a terminal."""
    jobs = [(v, dtype, shapes) for v in variants for dtype in DTYPES
            for shapes in CHECK_SHAPES[v.kernel]]
    results: Checks = defaultdict(list)
    console = Console(stderr=True)
    with console.status("checking variants") as status:
        for done, (variant, dtype, shapes) in enumerate(jobs, start=1):
            status.update(f"checking {variant.kernel} {variant.name} on {variant.device} "
                          f"({done}/{len(jobs)})")
            results[variant.key].append(check_variant(variant, shapes, dtype))
    return results


def summary(results: list[CheckResult]) -> dict[str, object]:
    """Counts of passed, failed and not-applicable checks, and each failure in words."""
    applicable = [r for r in results if r.applicable]
    failed = [r.describe() for r in applicable if not r.passed]
    return {"passed": len(applicable) - len(failed), "failed": len(failed),
            "skipped": len(results) - len(applicable), "failures": failed}


def run(args: argparse.Namespace) -> int:
    load_library()
    for note in [*missing_library_notes(), *plugin_notes()]:
        print(note, file=sys.stderr)
    kernels = selected_kernels(args.kernels)
    devices = comma_names(args.devices)
    names = comma_names(args.variants)
    variants = sorted((v for v in all_variants()
                       if v.kernel in kernels and (devices is None or v.device in devices)
                       and (names is None or v.name in names)),
                      key=lambda v: (KERNELS.index(v.kernel), v.device, v.name))
    if devices is not None and not variants:
        raise AnncError(f"--devices: no variant on {', '.join(devices) or '(none given)'} "
                        "here")
    if names is not None:
        known = {v.name for v in all_variants()}
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise AnncError(f"--variants: no variant named {', '.join(unknown) or '(none given)'}"
                            " here (`annc variants` lists them)")
    checks = run_checks(variants) if args.check else None
    rows: list[dict[str, object]] = [
        {"kernel": v.kernel, "variant": v.name, "device": v.device, "backend": v.backend,
         "origin": origin_of(v)}
        for v in variants
    ]
    if checks is not None:
        for row, variant in zip(rows, variants, strict=True):
            row["check"] = summary(checks[variant.key])
    if args.report == "json":
        print(json.dumps({"variants": rows}))
    else:
        print_table(rows, checks, console_for(args))
    if checks is None:
        return 0
    failures = [r.describe() for results in checks.values() for r in results
                if r.applicable and not r.passed]
    if failures:
        print(f"{len(failures)} check(s) failed:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


def print_table(rows: list[dict[str, object]], checks: Checks | None,
                console: Console) -> None:
    table = Table("kernel", "variant", "device", "backend", "origin")
    if checks is not None:
        table.add_column("check")
    failing = 0
    for row in rows:
        cells = [str(row[key]) for key in ("kernel", "variant", "device", "backend", "origin")]
        if checks is not None:
            results = checks[(str(row["kernel"]), str(row["variant"]), str(row["device"]))]
            bad = sum(1 for r in results if r.applicable and not r.passed)
            done = sum(1 for r in results if r.applicable)
            failing += bad > 0
            cells.append(f"{'[red]FAIL[/]' if bad else '[green]pass[/]'} {done - bad}/{done}")
        table.add_row(*cells)
    console.print(table)
    if checks is not None:
        console.print(f"{len(rows) - failing} of {len(rows)} variants pass every check")
