"""Would one Adams2019 schedule per shape class do? Measured on the matrix product.

    .venv/bin/python benchmarks/schedule_classes.py [--scheduler adams2019] [--configs 40]

Issue 15 asks, for Adams2019, whose search takes seconds, for a schedule cached per
shape class or a statement of why not. For each held-out matrix-product
configuration of the calibration plan this benchmark builds two pipelines in one
process: one scheduled for the exact shape (what annc's variant does) and one
scheduled for the shape's class, every extent rounded down to a power of two (so
that no split is wider than the extent it splits), then bound to the exact shape.
Both are checked against numpy and timed side by side, alternating, three rounds
of a 50 ms median each. It reports the class schedule's time over the exact one's,
the searches' seconds, and how many searches a class cache would save over the
calibration plan's matrix products. JIT-compiled: both sides the same way. Writes
`benchmarks/results/schedule_classes.md` and `.json`. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import halide as hl
import numpy as np

from hardware.calibration.sampling import PLAN_SIZES, configurations
from hardware.devices.allocator import aligned_empty
from hardware.devices.fingerprint import fingerprint
from hardware.variants.halide.algorithms import define
from hardware.variants.halide.cpu import JitFunction, cpu_target
from hardware.variants.halide.pipeline import (
    autoschedule,
    bind_shapes,
    halide_type,
    result_shape,
)

RESULTS = Path(__file__).resolve().parent / "results"
Shapes = tuple[tuple[int, ...], ...]


def shape_class(shapes: Shapes) -> Shapes:
    """Every extent rounded down to a power of two."""
    return tuple(tuple(1 << (e.bit_length() - 1) for e in shape) for shape in shapes)


def build(shapes: Shapes, dtype: np.dtype, scheduled_for: Shapes,
          scheduler: str) -> tuple[JitFunction, float]:
    """The product for `shapes`, scheduled for `scheduled_for`; and the search's seconds."""
    definition = define("matmul", (2, 2), halide_type(dtype))
    output = result_shape("matmul", shapes)
    if scheduled_for == shapes:  # as annc's variant does: bounds first, then the search
        bind_shapes(definition, shapes, output)
    schedule = autoschedule(definition, scheduled_for, result_shape("matmul", scheduled_for),
                            scheduler, cpu_target())
    bind_shapes(definition, shapes, output)
    pipeline = hl.Pipeline(definition.output)
    return JitFunction(pipeline.compile_to_callable(list(definition.inputs), cpu_target())), \
        schedule.seconds


def median_time(function: JitFunction, arrays: tuple[np.ndarray, ...],
                seconds: float = 0.05) -> float:
    function(*arrays)
    times: list[float] = []
    end = time.perf_counter() + seconds
    while len(times) < 3 or (time.perf_counter() < end and len(times) < 200):
        start = time.perf_counter()
        function(*arrays)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(shapes: Shapes, dtype: np.dtype, scheduler: str,
            rng: np.random.Generator) -> dict:
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    out = aligned_empty(result_shape("matmul", shapes), dtype)
    exact, exact_search = build(shapes, dtype, shapes, scheduler)
    by_class, class_search = build(shapes, dtype, shape_class(shapes), scheduler)
    tolerance = 1e-3 if dtype == np.float32 else 1e-9
    for function in (exact, by_class):
        function(a, b, out)
        np.testing.assert_allclose(out, a @ b, rtol=tolerance, atol=tolerance * shapes[0][1])
    exact_s, class_s = [], []
    for _ in range(3):
        exact_s.append(median_time(exact, (a, b, out)))
        class_s.append(median_time(by_class, (a, b, out)))
    return {"dtype": dtype.name, "shapes": shapes, "class": shape_class(shapes),
            "exact_s": statistics.median(exact_s), "class_s": statistics.median(class_s),
            "exact_search_s": exact_search, "class_search_s": class_search}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", default="adams2019")
    parser.add_argument("--configs", type=int, default=PLAN_SIZES["autoscheduled"].test)
    args = parser.parse_args()
    os.environ.setdefault("ANNC_HOME", tempfile.mkdtemp(prefix="annc-classes-"))
    size = PLAN_SIZES["autoscheduled"]
    train, test = configurations("matmul")
    plan = train[:size.train] + test[:size.test]
    classes = {(c.dtype, shape_class(c.shapes)) for c in plan}
    rng = np.random.default_rng(0)
    rows = []
    for config in test[:args.configs]:
        row = compare(config.shapes, np.dtype(config.dtype), args.scheduler, rng)
        rows.append(row)
        print(f"{row['dtype']} {row['shapes']}: exact {row['exact_s'] * 1e3:.3f} ms, class "
              f"{row['class_s'] * 1e3:.3f} ms", flush=True)
    ratios = [r["class_s"] / r["exact_s"] for r in rows]
    geomean = math.exp(statistics.fmean(math.log(r) for r in ratios))
    searches = [r["exact_search_s"] for r in rows]
    table = ["| dtype | m×k×n | class | exact schedule | class schedule | class / exact |",
             "|---|---|---|---|---|---|"]
    for r, ratio in sorted(zip(rows, ratios, strict=True), key=lambda t: t[1]):
        (m, k), (_, n) = r["shapes"]
        (cm, ck), (_, cn) = r["class"]
        table.append(f"| {r['dtype']} | {m}×{k}×{n} | {cm}×{ck}×{cn} | "
                     f"{r['exact_s'] * 1e3:.3f} ms | {r['class_s'] * 1e3:.3f} ms | {ratio:.2f} |")
    summary = {
        "scheduler": args.scheduler, "configs": len(rows), "geomean_class_over_exact": geomean,
        "worst": max(ratios), "best": min(ratios),
        "slower_by_10pct": sum(r > 1.1 for r in ratios),
        "faster_by_10pct": sum(r < 1 / 1.1 for r in ratios),
        "search_s_median": statistics.median(searches), "search_s_max": max(searches),
        "plan_configs": len(plan), "plan_classes": len(classes),
    }
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M")
    text = "\n".join([
        f"# One {args.scheduler} schedule per shape class, matrix product", "",
        f"Machine `{fingerprint().id}`; {stamp} UTC. Command: `python "
        f"benchmarks/schedule_classes.py --scheduler {args.scheduler} --configs "
        f"{args.configs}`. Each held-out configuration built twice in one process, "
        "scheduled for its exact shape and for its class (every extent rounded down to "
        "a power of two), both checked against numpy and timed side by side (median of "
        "three alternating rounds).", "",
        f"- class schedule / exact schedule: geomean **{geomean:.3f}**, from "
        f"{min(ratios):.2f} to {max(ratios):.2f}; slower by more than 10% on "
        f"{summary['slower_by_10pct']} of {len(rows)}, faster by more than 10% on "
        f"{summary['faster_by_10pct']};",
        f"- the exact shape's search took {statistics.median(searches):.2f} s (median), at "
        f"most {max(searches):.2f} s;",
        f"- the calibration plan's {len(plan)} product configurations fall in "
        f"{len(classes)} classes.", "", *table, ""])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "schedule_classes.md").write_text(text)
    (RESULTS / "schedule_classes.json").write_text(
        json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
