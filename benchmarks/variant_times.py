"""Median time of every matmul and conv2d variant at three sizes, side by side in one run.

    .venv/bin/python benchmarks/variant_times.py [--quick]

Writes `benchmarks/results/variant_times.md`, stamped with the machine's
fingerprint and the date, and prints it. Also measures this machine's peak
FLOP/s (numpy/BLAS matmul at 2048, f32 and f64) for context. Run it on a quiet
machine: every timing is the median of repeats after a warm-up, and the spread
((p90 - p10) / median) is shown beside it.
"""

from __future__ import annotations

import argparse
import datetime
import sys

import numpy as np
from harness import RESULTS

from annc.hardware.devices.allocator import available_bytes
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.measure.settings import TimingSettings
from annc.hardware.measure.timing import time_variant
from annc.hardware.variants import get_variant, load_library, variants_for

MATMUL_SIZES = (64, 256, 1024)
CONV_IMAGES = (64, 256, 1024)
CONV_KERNELS = (3, 31)


def _cell(variant, shapes, dtype, max_seconds: float) -> str:
    itemsize = np.dtype(dtype).itemsize
    if not variant.applies(shapes, np.dtype(dtype)):
        return "n/a"
    if variant.workspace_bytes(shapes, itemsize) > available_bytes() / 4:
        return "skipped (memory)"
    try:
        timing = time_variant(variant, shapes, dtype,
                              settings=TimingSettings(min_repeats=3, min_seconds=0.3,
                                                      max_repeats=1000, max_seconds=max_seconds))
    except Exception as error:  # a benchmark reports a failing variant and goes on
        return f"failed: {type(error).__name__}"
    return f"{timing.median_s * 1e3:.3g} ms (±{timing.spread * 100:.0f}%)"


def _table(kernel: str, configs: list[tuple[str, tuple]], dtype, max_seconds: float) -> str:
    variants = [v for v in variants_for(kernel) if v.device in ("cpu", "opencl")]
    header = "| variant | device | " + " | ".join(label for label, _ in configs) + " |"
    rule = "|---|---|" + "---|" * len(configs)
    rows = [header, rule]
    for variant in variants:
        cells = [_cell(variant, shapes, dtype, max_seconds) for _, shapes in configs]
        rows.append(f"| {variant.name} | {variant.device} | " + " | ".join(cells) + " |")
        print(rows[-1], file=sys.stderr, flush=True)
    return "\n".join(rows)


def peak_flops(dtype) -> float:
    n = 2048
    timing = time_variant(get_variant("matmul", "numpy"), ((n, n), (n, n)), dtype,
                          settings=TimingSettings(min_repeats=5, min_seconds=1.0,
                                                  max_repeats=1000, max_seconds=30.0))
    return 2 * n**3 / timing.median_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only, for a smoke test")
    parser.add_argument("--max-seconds", type=float, default=10.0,
                        help="time spent timing one cell at most")
    args = parser.parse_args()
    load_library()
    sizes = MATMUL_SIZES[:1] if args.quick else MATMUL_SIZES
    images = CONV_IMAGES[:1] if args.quick else CONV_IMAGES
    matmul = [(f"{n}x{n}", ((n, n), (n, n))) for n in sizes]
    conv = [(f"{n}x{n} * {k}x{k}", ((n, n), (k, k))) for n in images for k in CONV_KERNELS]
    machine = fingerprint()
    lines = [
        "# Variant times, side by side",
        "",
        f"Machine fingerprint `{machine.id}` ({machine.cpu_model}, {machine.cores} cores, "
        f"{machine.blas}); {datetime.date.today().isoformat()}. "
        "Median of repeats after warm-up, f32, operands resident on the variant's device; "
        "(±x%) is (p90 − p10) / median. Command: `python benchmarks/variant_times.py`.",
        "",
        "## matmul (f32)",
        _table("matmul", matmul, np.float32, args.max_seconds),
        "",
        "## conv2d (f32)",
        _table("conv2d", conv, np.float32, args.max_seconds),
        "",
    ]
    if not args.quick:
        f32, f64 = peak_flops(np.float32), peak_flops(np.float64)
        lines += ["## Peak", "",
                  f"numpy/BLAS matmul 2048x2048: {f32 / 1e9:.1f} GFLOP/s (f32), "
                  f"{f64 / 1e9:.1f} GFLOP/s (f64).", ""]
    text = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    name = "variant_times_quick.md" if args.quick else "variant_times.md"
    (RESULTS / name).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
