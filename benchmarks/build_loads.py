"""What a build costs the first time and after, and what a loop's traced trip count costs.

    .venv/bin/python benchmarks/build_loads.py [--processes 5] [--quick]

1. Halide builds: heat's and wave's loop bodies (N=512, f32) as regions under annc's
   schedule and Mullapudi2016's, and two kernels (which were kept before). Seconds of
   `build_halide` or `Variant.build` in a fresh process: JIT-compiled
   (no C compiler, which every process paid before regions were kept), compiled
   ahead of time into a cache that holds only Halide's runtime, and loaded from the
   cache. Before the clock, each process pays what it pays once, whatever it builds:
   LLVM's start (a trivial JIT compile; selection charges it as Halide's back end
   start), the machine's fingerprint (which an annc process has for its models
   anyway) and loading Halide's runtime.
2. JAX builds: heat's and wave's whole loops (N=512, f32) and three kernels, by
   `build_jax` and `Variant.build` in a fresh process, XLA's cache empty (compile)
   and holding the build (load: trace, lower and the cache hit). JAX's import and
   the start of its CPU client come before the clock (selection charges them as
   JAX's back end start), and so does the fingerprint.
3. A whole loop's trips as an argument: heat's loop at N=1024 and wave's at N=512
   (f32), time per trip of the compiled loop with its trip count traced against the
   same loop compiled for a fixed count, calls alternated in one process (the median
   of 11 calls each), in each of 3 fresh processes; the ratio traced / fixed is the
   median over the pairs of calls made one after the other (the machine's load
   changes from second to second).

Each build figure is the median over `--processes` fresh processes, with the range.
The regions are what `annc` lowers from `examples/heat.ann` and `examples/wave.ann`,
sent to each process as JSON (`RegionSpec.to_json`). Writes
`benchmarks/results/build_loads.md` (`--quick`: tiny sizes, `build_loads_quick.md`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import EXAMPLES, RESULTS, ROOT

HALIDE_BUILD = """
import json, sys, time
import halide as hl
from annc.hardware.variants.regions.halide_region import build_halide
from annc.hardware.variants.regions.spec import RegionSpec
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.variants.halide.aot import aot_target, c_compiler, ensure_runtime
from annc.hardware.variants.halide.scheduling import cpu_target
x, f = hl.Var("x"), hl.Func("warm")
f[x] = x
f.compile_jit()  # outside the clock: LLVM's start,
fingerprint()  # the machine's fingerprint (every annc process has it for its models)
if c_compiler():  # and Halide's runtime, loaded once per process
    ensure_runtime(aot_target(cpu_target()), c_compiler())
import numpy as np
from annc.hardware.variants import load_variant
job = json.loads(sys.argv[1])
if "spec" in job:
    spec = RegionSpec.from_json(job["spec"])
    start = time.perf_counter()
    build_halide(spec, job["schedule"])
else:
    variant = load_variant(job["kernel"], job["variant"])
    shapes = tuple(tuple(s) for s in job["shapes"])
    start = time.perf_counter()
    variant.build(shapes, np.dtype(np.float32))
print(time.perf_counter() - start)
"""

JAX_BUILD = """
import json, sys, time
import numpy as np
from annc.hardware.devices import jax_runtime
import jax.numpy as jnp
from annc.hardware.variants import load_variant
from annc.hardware.variants.regions.jax_region import build_jax
from annc.hardware.variants.regions.spec import RegionSpec
from annc.hardware.devices.fingerprint import fingerprint
jnp.zeros(1).block_until_ready()  # outside the clock: JAX's start,
fingerprint()  # and the machine's fingerprint (every annc process has it for its models)
job = json.loads(sys.argv[1])
if "spec" in job:
    spec = RegionSpec.from_json(job["spec"])
    start = time.perf_counter()
    build_jax(spec)
else:
    variant = load_variant(job["kernel"], job["variant"])
    shapes = tuple(tuple(s) for s in job["shapes"])
    start = time.perf_counter()
    variant.build(shapes, np.dtype(np.float32))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "xla": dict(jax_runtime.cache_events)}))
"""

TRIPS = """
import json, sys, time
import numpy as np
from annc.hardware.devices import jax_runtime
import jax
from annc.hardware.variants.regions.jax_region import body_function, build_jax, numpy_dtype
from annc.hardware.variants.regions.spec import RegionSpec
job = json.loads(sys.argv[1])
spec = RegionSpec.from_json(job["spec"])
trips, calls = job["trips"], job["calls"]
dtype = numpy_dtype(spec)
device = jax_runtime.cpu_device()
sharding = jax.sharding.SingleDeviceSharding(device)
once = body_function(spec)

def fixed(*inputs):
    carried, invariant = tuple(inputs[: spec.carried]), tuple(inputs[spec.carried :])
    return jax.lax.fori_loop(0, trips, lambda _, c: once(c + invariant), carried)

arguments = [jax.ShapeDtypeStruct(s, dtype, sharding=sharding) for s in spec.inputs]
fixed_compiled = jax.jit(fixed, in_shardings=sharding, out_shardings=sharding).lower(
    *arguments).compile()
traced = build_jax(spec)
rng = np.random.default_rng(0)
inputs = [rng.uniform(0.0, 1.0, s).astype(dtype) for s in spec.inputs]
for n, values in spec.constants:
    inputs[n] = np.array(values, dtype).reshape(spec.inputs[n])

def run_fixed():
    return [np.asarray(r) for r in jax.block_until_ready(fixed_compiled(*inputs))]

def run_traced():
    return traced(*inputs, trips=trips)

assert all(np.array_equal(a, b) for a, b in zip(run_fixed(), run_traced()))
times = {"fixed": [], "traced": []}
order = [("fixed", run_fixed), ("traced", run_traced)]
for _ in range(calls):
    order.reverse()  # neither always first
    for name, call in order:
        start = time.perf_counter()
        call()
        times[name].append((time.perf_counter() - start) / trips)
ratios = [t / f for t, f in zip(times["traced"], times["fixed"])]  # each pair side by side
print(json.dumps({**{k: float(np.median(v)) for k, v in times.items()},
                  "ratio": float(np.median(ratios))}))
"""

SIZES = {"heat": {"N": 512, "STEPS": 100}, "wave": {"N": 512, "STEPS": 100}}
TRIP_SIZES = {"heat": ({"N": 1024, "STEPS": 100}, 100), "wave": ({"N": 512, "STEPS": 200}, 200)}
QUICK_SIZES = {"heat": {"N": 64, "STEPS": 4}, "wave": {"N": 64, "STEPS": 4}}
QUICK_TRIP_SIZES = {"heat": ({"N": 64, "STEPS": 4}, 20), "wave": ({"N": 64, "STEPS": 4}, 20)}
HALIDE_KERNELS = {
    "matmul 256², halide.tiled": ("matmul", "halide.tiled", [[256, 256], [256, 256]]),
    "conv2d 512², 9×9, halide.direct": ("conv2d", "halide.direct", [[512, 512], [9, 9]]),
}
KERNELS = {"matmul 256²": ("matmul", "jax", [[256, 256], [256, 256]]),
           "conv2d 512², 9×9": ("conv2d", "fft.jax", [[512, 512], [9, 9]]),
           "add 512²": ("add", "jax", [[512, 512], [512, 512]])}


def region_specs(example: str, params: dict[str, int]) -> tuple[dict, dict]:
    """The example's whole loop and its body, as `annc` lowers them, in JSON."""
    from annc.compiler import compile_program

    text = (EXAMPLES / f"{example}.ann").read_text()
    plan = compile_program(text, f"{example}.ann", params, ["cpu"], "selected",
                           measure="never", record=False).selection
    loop = next(r for r in plan.regions if r.kind.startswith("loop."))
    body = next(r for r in plan.regions if r.kind.startswith("region.") and r.kind != loop.kind
                and "conv2d" in r.kernels)
    return loop.lowered.spec.to_json(), body.lowered.spec.to_json()


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "ANNC_HOME": str(home), "ANNC_NO_RECORD": "1",
            "PYTHONPATH": str(ROOT), **extra}


def in_process(script: str, job: dict, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", script, json.dumps(job)], capture_output=True,
                          text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return done.stdout.strip().splitlines()[-1]


def halide_figures(job: dict, processes: int, scratch: Path,
                   runtime: Path) -> dict[str, list[float]]:
    """JIT, ahead-of-time build and load seconds, one of each per fresh home."""
    empty = scratch / "no-cc-bin"
    empty.mkdir(exist_ok=True)
    times: dict[str, list[float]] = {"jit": [], "aot_build": [], "aot_load": []}
    for _ in range(processes):
        home = Path(tempfile.mkdtemp(dir=scratch))
        times["jit"].append(float(in_process(HALIDE_BUILD, job,
                                             _env(home, PATH=str(empty), CC=""))))
        (home / "builds").mkdir(parents=True, exist_ok=True)
        shutil.copy(runtime, home / "builds" / runtime.name)
        times["aot_build"].append(float(in_process(HALIDE_BUILD, job, _env(home))))
        times["aot_load"].append(float(in_process(HALIDE_BUILD, job, _env(home))))
    return times


def jax_figures(job: dict, processes: int, scratch: Path) -> dict[str, list[float]]:
    """Compile (XLA's cache empty) and load (XLA's cache holding it) seconds."""
    times: dict[str, list[float]] = {"compile": [], "load": []}
    for _ in range(processes):
        home = Path(tempfile.mkdtemp(dir=scratch))
        cold = json.loads(in_process(JAX_BUILD, job, _env(home)))
        warm = json.loads(in_process(JAX_BUILD, job, _env(home)))
        assert warm["xla"].get("hit") and not warm["xla"].get("miss"), warm
        times["compile"].append(cold["seconds"])
        times["load"].append(warm["seconds"])
    return times


def halide_runtime(scratch: Path) -> Path:
    """The Halide runtime's cache entry, built once, for every build home to start with."""
    home = scratch / "runtime-home"
    in_process("from hardware.variants.halide.aot import aot_target, c_compiler, "
               "ensure_runtime\nfrom hardware.variants.halide.scheduling import cpu_target\n"
               "ensure_runtime(aot_target(cpu_target()), c_compiler())\nprint('ok')",
               {}, _env(home))
    (runtime,) = (home / "builds").glob("*.runtime")
    return runtime


def _spread(values: list[float], scale: float = 1e3, digits: int = 1) -> str:
    return (f"{statistics.median(values) * scale:.{digits}f} "
            f"({min(values) * scale:.{digits}f}–{max(values) * scale:.{digits}f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=5,
                        help="fresh processes per figure (default 5)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    args = parser.parse_args()
    sizes = QUICK_SIZES if args.quick else SIZES
    trip_sizes = QUICK_TRIP_SIZES if args.quick else TRIP_SIZES
    lines = ["# Builds that outlive the run", "",
             f"{datetime.date.today()}, `python benchmarks/build_loads.py"
             f"{' --quick' if args.quick else ''} --processes {args.processes}`; "
             "milliseconds, median (min–max) over fresh processes.", ""]
    with tempfile.TemporaryDirectory(prefix="annc-loads-") as folder:
        scratch = Path(folder)
        specs = {name: region_specs(name, params) for name, params in sizes.items()}
        runtime = halide_runtime(scratch)
        lines += ["| Halide build | JIT, every process | AOT build, once | AOT load |",
                  "|---|---|---|---|"]
        halide_jobs = {f"{name} body N={sizes[name]['N']}, {schedule}":
                       {"spec": body, "schedule": schedule}
                       for name, (_, body) in specs.items()
                       for schedule in ("annc", "mullapudi2016")}
        if not args.quick:
            halide_jobs |= {name: {"kernel": k, "variant": v, "shapes": s}
                            for name, (k, v, s) in HALIDE_KERNELS.items()}
        halide_loads = []
        for name, job in halide_jobs.items():
            t = halide_figures(job, args.processes, scratch, runtime)
            halide_loads += t["aot_load"]
            lines.append(f"| {name} | {_spread(t['jit'])} | {_spread(t['aot_build'])} | "
                         f"{_spread(t['aot_load'], digits=2)} |")
            print(lines[-1], file=sys.stderr)
        lines += ["", f"Every Halide load: {_spread(halide_loads, digits=2)} ms."]
        lines += ["", "| JAX build | compile | load (trace, lower, XLA cache hit) |",
                  "|---|---|---|"]
        jobs = {f"{name} loop N={sizes[name]['N']}": {"spec": loop}
                for name, (loop, _) in specs.items()}
        if not args.quick:
            jobs |= {name: {"kernel": k, "variant": v, "shapes": s}
                     for name, (k, v, s) in KERNELS.items()}
        loads = []
        for name, job in jobs.items():
            t = jax_figures(job, args.processes, scratch)
            loads += t["load"]
            lines.append(f"| {name} | {_spread(t['compile'])} | {_spread(t['load'])} |")
            print(lines[-1], file=sys.stderr)
        lines += ["", f"Every JAX load: {_spread(loads)} ms.", "",
                  "| whole loop, f32 | trips per call | fixed µs/trip | traced µs/trip | "
                  "traced / fixed |", "|---|---|---|---|---|"]
        for name, (params, trips) in trip_sizes.items():
            loop, _ = region_specs(name, params)
            runs = [json.loads(in_process(TRIPS, {"spec": loop, "trips": trips, "calls": 11},
                                          _env(scratch / "trips-home"))) for _ in range(3)]
            ratios = [r["ratio"] for r in runs]
            lines.append(f"| {name} N={params['N']} | {trips} | "
                         f"{_spread([r['fixed'] for r in runs], 1e6)} | "
                         f"{_spread([r['traced'] for r in runs], 1e6)} | "
                         f"{_spread(ratios, 1, 3)} |")
            print(lines[-1], file=sys.stderr)
    name = "build_loads_quick.md" if args.quick else "build_loads.md"
    (RESULTS / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
