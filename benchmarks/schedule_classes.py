"""Would one Adams2019 schedule per shape class do? Matrix products and convolutions.

    .venv/bin/python benchmarks/schedule_classes.py [--kernel matmul|conv2d]
        [--scheduler adams2019] [--configs N]

Issue 15 asks, for Adams2019, whose search takes seconds, for a schedule cached per
shape class or a statement of why not. For each held-out matrix-product
configuration of the calibration plan this benchmark builds two pipelines in one
process: one scheduled for the exact shape (what annc's variant does) and one
scheduled for the shape's class, every extent rounded down to a power of two (so
that no split is wider than the extent it splits; a convolution's stencil is kept,
since it is the reduction's domain), then bound to the exact shape.
Both are checked against numpy and timed side by side, alternating, three rounds
of a 50 ms median each. It reports the class schedule's time over the exact one's,
the searches' seconds, and how many searches a class cache would save over the
calibration plan's configurations of the kernel. JIT-compiled: both sides the same
way. Writes `benchmarks/results/schedule_classes[_conv2d].md` and `.json`. Run it on
a quiet machine.
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

from hardware.calibration.sampling import configurations, plan_size
from hardware.devices.allocator import aligned_empty
from hardware.devices.fingerprint import fingerprint
from hardware.variants import get_variant, load_library
from hardware.variants.halide.algorithms import define
from hardware.variants.halide.cpu import JitFunction
from hardware.variants.halide.pipeline import (
    autoschedule,
    bind_shapes,
    halide_type,
    result_shape,
)
from hardware.variants.halide.scheduling import cpu_target
from hardware.variants.reference import REFERENCE_FUNCTIONS

RESULTS = Path(__file__).resolve().parent / "results"
Shapes = tuple[tuple[int, ...], ...]


def shape_class(kernel: str, shapes: Shapes) -> Shapes:
    """Every extent rounded down to a power of two (a convolution's stencil kept)."""
    rounded = tuple(tuple(1 << (e.bit_length() - 1) for e in shape) for shape in shapes)
    return (rounded[0], shapes[1]) if kernel == "conv2d" else rounded


def build(kernel: str, shapes: Shapes, dtype: np.dtype, scheduled_for: Shapes,
          scheduler: str) -> tuple[JitFunction, float]:
    """The kernel for `shapes`, scheduled for `scheduled_for`; and the search's seconds."""
    definition = define(kernel, (2, 2), halide_type(dtype))
    output = result_shape(kernel, shapes)
    if scheduled_for == shapes:  # as annc's variant does: bounds first, then the search
        bind_shapes(definition, shapes, output)
    schedule = autoschedule(definition, scheduled_for, result_shape(kernel, scheduled_for),
                            scheduler, cpu_target())
    bind_shapes(definition, shapes, output)
    pipeline = hl.Pipeline(definition.output)
    return JitFunction(pipeline.compile_to_callable(list(definition.inputs), cpu_target())), \
        schedule.seconds


def shapes_text(shapes: Shapes) -> str:
    return ", ".join("×".join(str(e) for e in shape) for shape in shapes)


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


def compare(kernel: str, shapes: Shapes, dtype: np.dtype, scheduler: str,
            rng: np.random.Generator) -> dict:
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    out = aligned_empty(result_shape(kernel, shapes), dtype)
    exact, exact_search = build(kernel, shapes, dtype, shapes, scheduler)
    by_class, class_search = build(kernel, shapes, dtype, shape_class(kernel, shapes),
                                   scheduler)
    expected = REFERENCE_FUNCTIONS[kernel](a, b)
    tolerance = 1e-3 if dtype == np.float32 else 1e-9
    for function in (exact, by_class):
        function(a, b, out)
        np.testing.assert_allclose(out, expected, rtol=tolerance,
                                   atol=tolerance * math.prod(shapes[1]) * max(shapes[0]))
    exact_s, class_s = [], []
    for _ in range(3):
        exact_s.append(median_time(exact, (a, b, out)))
        class_s.append(median_time(by_class, (a, b, out)))
    return {"dtype": dtype.name, "shapes": shapes, "class": shape_class(kernel, shapes),
            "exact_s": statistics.median(exact_s), "class_s": statistics.median(class_s),
            "exact_search_s": exact_search, "class_search_s": class_search}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", choices=("matmul", "conv2d"), default="matmul")
    parser.add_argument("--scheduler", default="adams2019")
    parser.add_argument("--configs", type=int,
                        help="held-out configurations to compare (default: the plan's)")
    args = parser.parse_args()
    os.environ.setdefault("ANNC_HOME", tempfile.mkdtemp(prefix="annc-classes-"))
    load_library()
    size = plan_size(get_variant(args.kernel, f"halide.auto.{args.scheduler}", "cpu"))
    train, test = configurations(args.kernel)
    plan = train[:size.train] + test[:size.test]
    classes = {(c.dtype, shape_class(args.kernel, c.shapes)) for c in plan}
    rng = np.random.default_rng(0)
    rows = []
    for config in test[:args.configs or size.test]:
        row = compare(args.kernel, config.shapes, np.dtype(config.dtype), args.scheduler, rng)
        rows.append(row)
        print(f"{row['dtype']} {row['shapes']}: exact {row['exact_s'] * 1e3:.3f} ms, class "
              f"{row['class_s'] * 1e3:.3f} ms", flush=True)
    ratios = [r["class_s"] / r["exact_s"] for r in rows]
    geomean = math.exp(statistics.fmean(math.log(r) for r in ratios))
    searches = [r["exact_search_s"] for r in rows]
    table = ["| dtype | shapes | class | exact schedule | class schedule | class / exact |",
             "|---|---|---|---|---|---|"]
    for r, ratio in sorted(zip(rows, ratios, strict=True), key=lambda t: t[1]):
        table.append(f"| {r['dtype']} | {shapes_text(r['shapes'])} | "
                     f"{shapes_text(r['class'])} | {r['exact_s'] * 1e3:.3f} ms | "
                     f"{r['class_s'] * 1e3:.3f} ms | {ratio:.2f} |")
    summary = {
        "kernel": args.kernel, "scheduler": args.scheduler, "configs": len(rows),
        "geomean_class_over_exact": geomean,
        "worst": max(ratios), "best": min(ratios),
        "slower_by_10pct": sum(r > 1.1 for r in ratios),
        "faster_by_10pct": sum(r < 1 / 1.1 for r in ratios),
        "search_s_median": statistics.median(searches), "search_s_max": max(searches),
        "plan_configs": len(plan), "plan_classes": len(classes),
    }
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M")
    text = "\n".join([
        f"# One {args.scheduler} schedule per shape class, {args.kernel}", "",
        f"Machine `{fingerprint().id}`; {stamp} UTC. Command: `python "
        f"benchmarks/schedule_classes.py --kernel {args.kernel} --scheduler "
        f"{args.scheduler} --configs {len(rows)}`. Each held-out configuration built twice "
        "in one process, scheduled for its exact shape and for its class (every extent "
        "rounded down to a power of two, a stencil kept), both checked against numpy and "
        "timed side by side (median of three alternating rounds).", "",
        f"- class schedule / exact schedule: geomean **{geomean:.3f}**, from "
        f"{min(ratios):.2f} to {max(ratios):.2f}; slower by more than 10% on "
        f"{summary['slower_by_10pct']} of {len(rows)}, faster by more than 10% on "
        f"{summary['faster_by_10pct']};",
        f"- the exact shape's search took {statistics.median(searches):.2f} s (median), at "
        f"most {max(searches):.2f} s;",
        f"- the calibration plan's {len(plan)} {args.kernel} configurations fall in "
        f"{len(classes)} classes.", "", *table, ""])
    RESULTS.mkdir(exist_ok=True)
    stem = "schedule_classes" + ("" if args.kernel == "matmul" else f"_{args.kernel}")
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(
        json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
