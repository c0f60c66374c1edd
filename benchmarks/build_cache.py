"""What the persistent build cache saves, and how long `annc run` takes to start.

    .venv/bin/python benchmarks/build_cache.py [--quick] [--examples heat,wave] [--tune]

In one fresh `$ANNC_HOME`, every example at a realistic size is built twice, each
time in a fresh process: every Halide CPU variant that applies to one of its ops
(what `tune` builds; the auto-schedulers' searches included), then one `annc run`.
Reported per example: the build seconds of the second pass against the first (the
cache's aim: at most 5%), and the run's `compile_s` both times. Then `annc run` of
a small program (heat, N=32, one step), wall time, median of 5: cold (each run in
an empty home) and warm (the same home, after one run). Then the cache's size
after all examples. With `--tune`, `annc tune` on the second pass gives the
per-execution figure: the geometric mean over ops of measured(chosen) /
measured(best). Writes `benchmarks/results/build_cache.md` (`--quick`: tiny sizes,
`build_cache_quick.md`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import EXAMPLES, RESULTS, ROOT

SIZES: dict[str, dict[str, int]] = {
    "heat": {"N": 512, "STEPS": 500},
    "wave": {"N": 512, "STEPS": 500},
    "poisson": {"N": 512, "SWEEPS": 1000},
    "power_iteration": {"N": 800, "ITERATIONS": 200},
    "conjugate_gradients": {"N": 500, "ITERATIONS": 100},
    "detector_smoothing": {"N": 512, "P": 15, "PASSES": 3},
    "gram_matrix": {"S": 400, "P": 1000},
    "markov_chain": {"M": 400, "SQUARINGS": 12},
}
"""The first realistic size of each example, as in `benchmarks/selection.py`."""
QUICK: dict[str, dict[str, int]] = {"heat": {"N": 24, "STEPS": 2},
                                    "gram_matrix": {"S": 12, "P": 20}}
SMALL = ("heat", {"N": 32, "STEPS": 1})

BUILD_ALL = """
import json, sys, time
import numpy as np
from annc.compiler import compile_file
from annc.hardware.variants.compiled import compiled
from annc.hardware.variants import load_library, variants_for
from annc.passes.sites import data_flow
load_library()
module = compile_file(sys.argv[1], params=json.loads(sys.argv[2]), emit="ir")
seen, total = set(), 0.0
for site in data_flow(module).sites:
    dtype = np.dtype(np.float32 if site.dtype == "f32" else np.float64)
    for variant in variants_for(site.kernel, "cpu"):
        key = (variant.key, site.shapes, dtype.name)
        if variant.backend != "halide" or key in seen or not variant.applies(site.shapes, dtype):
            continue
        seen.add(key)
        total += compiled(variant, site.shapes, dtype).compile_s
print(json.dumps({"builds": len(seen), "seconds": total}))
"""


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "ANNC_HOME": str(home), "ANNC_NO_RECORD": "1",
            "PYTHONPATH": str(ROOT)}


def _defines(params: dict[str, int]) -> list[str]:
    return [arg for name, value in params.items() for arg in ("-D", f"{name}={value}")]


def build_all(example: str, params: dict[str, int], home: Path) -> dict:
    """Every Halide CPU variant of every op built once in a fresh process."""
    done = subprocess.run([sys.executable, "-c", BUILD_ALL, str(EXAMPLES / f"{example}.ann"),
                           json.dumps(params)], capture_output=True, text=True, check=True,
                          env=_env(home), cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def annc(args: list[str], home: Path) -> tuple[float, str]:
    """Wall seconds of one `annc` command in a fresh process, and its standard output."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "annc", *args], capture_output=True,
                          text=True, check=True, env=_env(home), cwd=ROOT)
    return time.perf_counter() - start, done.stdout


def run_report(example: str, params: dict[str, int], home: Path) -> dict:
    _, out = annc(["run", str(EXAMPLES / f"{example}.ann"), *_defines(params), "--report",
                   "json"], home)
    return json.loads(out)


def per_execution_geomean(report: dict) -> float:
    """Geomean over ops of measured(chosen) / measured(best), per execution."""
    ratios = []
    for op in report["ops"]:
        times = {(c["variant"], c["device"]): c["measured_s"] for c in op["candidates"]
                 if c["measured_s"]}
        chosen = times.get((op["chosen"]["variant"], op["chosen"]["device"]))
        if chosen and times:
            ratios.append(chosen / min(times.values()))
    return math.exp(statistics.fmean(map(math.log, ratios))) if ratios else float("nan")


def startup(repeats: int, scratch: Path) -> tuple[float, float]:
    """Median wall seconds of `annc run` of a small program: cold (empty homes), warm."""
    example, params = SMALL
    args = ["run", str(EXAMPLES / f"{example}.ann"), *_defines(params)]
    cold = [annc(args, scratch / f"cold-{i}")[0] for i in range(repeats)]
    warm_home = scratch / "warm"
    annc(args, warm_home)
    warm = [annc(args, warm_home)[0] for _ in range(repeats)]
    return statistics.median(cold), statistics.median(warm)


def cache_bytes(home: Path) -> int:
    folder = home / "builds"
    return sum(p.stat().st_size for p in folder.iterdir()) if folder.is_dir() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--examples", help="only these examples (comma-separated)")
    parser.add_argument("--tune", action="store_true",
                        help="also run `annc tune` on the second pass (slow)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else SIZES
    if args.examples:
        sizes = {k: v for k, v in sizes.items() if k in args.examples.split(",")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="annc-bench-") as scratch:
        home = Path(scratch) / "home"
        for example, params in sizes.items():
            first, second = build_all(example, params, home), build_all(example, params, home)
            run_first, run_second = (run_report(example, params, home) for _ in range(2))
            geomean = None
            if args.tune:
                _, out = annc(["tune", str(EXAMPLES / f"{example}.ann"), *_defines(params),
                               "--report", "json"], home)
                geomean = per_execution_geomean(json.loads(out))
            rows.append((example, params, first, second, run_first["compile_s"],
                         run_second["compile_s"], geomean))
            print(f"{example}: {first['builds']} builds {first['seconds']:.2f} s, then "
                  f"{second['seconds']:.3f} s", file=sys.stderr)
        size = cache_bytes(home)
        cold, warm = startup(2 if args.quick else 5, Path(scratch))
    write(rows, size, cold, warm, args)


def write(rows: list, size: int, cold: float, warm: float, args: argparse.Namespace) -> None:
    lines = [
        "# Build cache and start-up", "",
        f"{datetime.date.today()}, `python benchmarks/build_cache.py"
        f"{' --quick' if args.quick else ''}{' --tune' if args.tune else ''}`; "
        "each example built twice in one fresh `$ANNC_HOME`, each pass a fresh process.", "",
        "| example | sizes | Halide builds | first pass s | second pass s | second / first "
        "| run compile_s first | second | tune per-execution geomean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for example, params, first, second, run1, run2, geomean in rows:
        ratio = second["seconds"] / first["seconds"] if first["seconds"] else float("nan")
        ratios.append(ratio)
        sizes = " ".join(f"{k}={v}" for k, v in params.items())
        lines.append(f"| {example} | {sizes} | {first['builds']} | {first['seconds']:.2f} | "
                     f"{second['seconds']:.3f} | {ratio:.1%} | {run1:.3f} | {run2:.3f} | "
                     f"{'-' if geomean is None else f'{geomean:.3f}'} |")
    total_first = sum(r[2]["seconds"] for r in rows)
    total_second = sum(r[3]["seconds"] for r in rows)
    lines += [
        "", f"All examples: {total_first:.2f} s of builds, then {total_second:.3f} s "
        f"({total_second / total_first:.1%})." if total_first else "",
        "", f"Cache size after all examples: {size / 2**20:.1f} MB.", "",
        f"`annc run` of {SMALL[0]} ({' '.join(f'{k}={v}' for k, v in SMALL[1].items())}), "
        f"wall time, median of {2 if args.quick else 5}: cold {cold:.2f} s, warm {warm:.2f} s.",
    ]
    name = "build_cache_quick.md" if args.quick else "build_cache.md"
    (RESULTS / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
