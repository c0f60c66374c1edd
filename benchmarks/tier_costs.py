"""What tiers cost a run, and how fast a compiled loop answers Ctrl-C.

    .venv/bin/python benchmarks/tier_costs.py [--repeats 7] [--out PATH]

1. **Chunks**: heat's compiled whole loop (f32, 1024² × 200 trips and 512² × 2,000),
   run as `hardware.execution.loops.run_chunks` does (chunks of about 0.2 s) against
   one call for all its trips, alternately in one process; medians.
2. **Steps that could switch**: a plan of a chain of 1,000 small element-wise ops on
   16 floats, every op a plain step against every op a tiered step whose build never
   arrives (`hardware.execution.tiers`); the run's wall time per op, medians.
3. **A build beside a busy run**: a BLAS-bound loop (20 products of 1000² f64) with
   the build helper compiling Halide kernels beside it, against the same loop alone,
   alternately; medians of the loop's time.
4. **Ctrl-C in a compiled loop**: heat 256² with 10⁸ steps compiled as one loop
   (built first); SIGINT a second into the loop; seconds from the signal to the
   `KeyboardInterrupt` in the run (`--repeats` fresh processes).

Writes `benchmarks/results/tier_costs.md` and `.json`. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import RESULTS, ROOT, heading, log, stamp, write

HEAT = ROOT / "examples" / "heat.ann"


def heat_loop(n: int, steps: int):
    """Heat's whole loop as compiled by annc (JAX), with its inputs."""
    from annc.compiler import compile_program, read_source
    from annc.dsl.dialect import RegionOp
    from annc.hardware.variants.regions import catalogue
    from annc.hardware.variants.regions.from_ir import lower_region

    module = compile_program(read_source(HEAT), str(HEAT), {"N": n, "STEPS": steps}, ["cpu"],
                             "fused", "never", record=False).ir
    (loop,) = [op for op in module.walk() if isinstance(op, RegionOp)
               and lower_region(op).spec.is_loop]
    spec = lower_region(loop).spec
    function = catalogue.built(spec, "jax")
    rng = np.random.default_rng(0)
    inputs = [rng.random(shape, dtype=np.float32) for shape in spec.inputs]
    return function, inputs, spec


def chunks(repeats: int, log) -> list[dict]:
    from annc.hardware.execution.loops import ChunkSizer, run_chunks

    rows = []
    for n, steps in ((1024, 200), (512, 2000)):
        function, inputs, spec = heat_loop(n, steps)
        carried, invariant = inputs[:spec.carried], inputs[spec.carried:]
        function(*inputs)  # the first call of the process, left out
        whole, chunked, calls = [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            function(*inputs)
            whole.append(time.perf_counter() - start)
            sizer = ChunkSizer(whole[-1] / steps)
            counted: list[int] = []
            start = time.perf_counter()
            run_chunks(function, list(carried), invariant, steps, sizer, counted.append)
            chunked.append(time.perf_counter() - start)
            calls.append(len(counted))
        row = {"n": n, "steps": steps, "one_call_s": statistics.median(whole),
               "chunked_s": statistics.median(chunked), "chunks": statistics.median(calls)}
        row["ratio"] = row["chunked_s"] / row["one_call_s"]
        log(f"  chunks {n}² × {steps}: {row}")
        rows.append(row)
    return rows


def steps_cost(repeats: int, log) -> dict:
    from xdsl.dialects.builtin import StringAttr

    from annc.compiler import compile_program
    from annc.hardware.devices.available import CPU
    from annc.hardware.execution import planning
    from annc.hardware.execution.planning import compile_plan
    from annc.hardware.execution.tiers import Tier, tiered_kernel_step

    lines = ["input x : f32[16]", "y = x"] + ["y = y * 1.0001 + 0.5"] * 500 + ["output y"]
    module = compile_program("\n".join(lines) + "\n", "chain.ann", None, ["cpu"], "selected",
                             "never", record=False).ir
    for region in module.walk():
        if region.name == "kernel.region":  # every op a step of its own
            region.attributes["kernel.variant"] = StringAttr("ops")
            region.attributes.pop("kernel.start_variant", None)
    devices = {"cpu": CPU}
    x = np.ones(16, np.float32)
    plain = compile_plan(module, devices)
    original = planning.kernel_step

    def tiered(built, operands, result, shape, dtype, device, devices_, align, times, copying):
        tier = Tier(built, "numpy", align=align, target="never")
        return tiered_kernel_step(tier, operands, result, shape, dtype, device, devices_,
                                  times, copying)

    planning.kernel_step = tiered
    try:
        switching = compile_plan(module, devices)
    finally:
        planning.kernel_step = original
    ops = len(plain.ops)
    results: dict[str, list[float]] = {"plain": [], "tiered": []}
    for _ in range(repeats * 20):
        for name, plan in (("plain", plain), ("tiered", switching)):
            start = time.perf_counter()
            plan.run([x])
            results[name].append((time.perf_counter() - start) / ops)
    row = {name: statistics.median(values) for name, values in results.items()}
    row["ops"] = ops
    row["ratio"] = row["tiered"] / row["plain"]
    log(f"  steps: {row}")
    return row


def beside_a_busy_run(repeats: int, log) -> dict:
    from annc.hardware.execution.beside import Beside
    from annc.hardware.execution.builds import kernel_job
    from annc.hardware.variants import load_variant

    a = np.random.default_rng(0).random((1000, 1000))

    def loop() -> float:
        start = time.perf_counter()
        for _ in range(20):
            a @ a
        return time.perf_counter() - start

    loop()
    alone, beside = [], []
    sizes = iter(range(100, 100 + 10 * repeats, 10))
    for _ in range(repeats):
        alone.append(loop())
        helper = Beside(load=False, delay_s=0)
        n = next(sizes)  # a shape never built: the helper compiles while the loop runs
        for kernel, name in (("conv2d", "halide.direct"), ("matmul", "halide.tiled")):
            shapes = ((n, n), (3, 3)) if kernel == "conv2d" else ((n, n), (n, n))
            helper.submit(kernel_job(load_variant(kernel, name), shapes, np.dtype("float32")),
                          lambda kernel: None)
        time.sleep(0.3)  # the helper has started and is compiling
        beside.append(loop())
        helper.finish(wait=True)
    row = {"alone_s": statistics.median(alone), "beside_s": statistics.median(beside)}
    row["ratio"] = row["beside_s"] / row["alone_s"]
    log(f"  beside a busy run: {row}")
    return row


INTERRUPT = """
import os, signal, sys, threading, time
from xdsl.dialects.builtin import StringAttr
from annc.compiler import compile_program, read_source
from annc.running import run_module
from annc.dsl.dialect import RegionOp
from annc.hardware.execution.progress import RunProgress

path = sys.argv[1]
module = compile_program(read_source(path), path, {"N": 256, "STEPS": 100000000}, ["cpu"],
                         "selected", "never", record=False).ir
for op in module.walk():
    outer = op.parent_op()
    if isinstance(op, RegionOp) and outer is not None and outer.name == "func.func":
        op.attributes["kernel.variant"] = StringAttr("jax")
        op.attributes.pop("kernel.start_variant", None)
sent = []

class InterruptOnce(RunProgress):
    def advance(self, trips):
        super().advance(trips)
        if not sent:
            sent.append(None)
            def interrupt():
                sent[0] = time.monotonic()
                os.kill(os.getpid(), signal.SIGINT)
            threading.Timer(1.0, interrupt).start()

try:
    run_module(module, builds="first", progress=InterruptOnce(0, show=False))
except KeyboardInterrupt:
    print(time.monotonic() - sent[0])
"""


def interrupt(repeats: int, log) -> dict:
    latencies = []
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "ANNC_HOME": home}
        for _ in range(repeats):
            done = subprocess.run([sys.executable, "-c", INTERRUPT, str(HEAT)],
                                  capture_output=True, text=True, env=env, cwd=ROOT,
                                  timeout=600)
            latencies.append(float(done.stdout.strip().splitlines()[-1]))
    row = {"median_s": statistics.median(latencies), "max_s": max(latencies),
           "values": latencies}
    log(f"  Ctrl-C: {row}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS / "tier_costs.md")
    args = parser.parse_args()
    results = {"chunks": chunks(args.repeats, log), "steps": steps_cost(args.repeats, log),
               "beside": beside_a_busy_run(args.repeats, log),
               "interrupt": interrupt(args.repeats, log)}
    stamped = stamp("tier_costs.py")
    steps, beside, stop = results["steps"], results["beside"], results["interrupt"]
    lines = [
        *heading("What tiers cost a run", stamped), f"Medians of {args.repeats} repeats.",
        "",
        "| what | with tiers | without | ratio |", "|---|---|---|---|",
        *(f"| heat loop {r['n']}² × {r['steps']}: chunks ({r['chunks']:.0f}) against one call "
          f"| {r['chunked_s'] * 1e3:.1f} ms | {r['one_call_s'] * 1e3:.1f} ms "
          f"| {r['ratio']:.3f} |" for r in results["chunks"]),
        f"| a chain of {steps['ops']} small ops: steps that could switch, per op "
        f"| {steps['tiered'] * 1e6:.2f} µs | {steps['plain'] * 1e6:.2f} µs "
        f"| {steps['ratio']:.3f} |",
        f"| 20 products of 1000² f64 with Halide compiling beside them "
        f"| {beside['beside_s'] * 1e3:.0f} ms | {beside['alone_s'] * 1e3:.0f} ms "
        f"| {beside['ratio']:.3f} |", "",
        f"Ctrl-C in heat's compiled loop (256², chunks of about 0.2 s): the run stopped "
        f"{stop['median_s']:.2f} s after the signal (median; at most {stop['max_s']:.2f} s).",
        "",
    ]
    write(args.out, lines, {**stamped, **results})

if __name__ == "__main__":
    main()
