"""How long selection takes as programs grow, against measuring them with `tune`.

    .venv/bin/python benchmarks/overhead.py [--sizes 10,100,1000,10000] [--tune-up-to 100]
                                            [--fresh-ops 1000] [--processes 5]

A generated program of n kernel ops (matrix products, matrix–vector products,
convolutions and element-wise ops on varied shapes) is compiled to IR, then
selected; the selection overhead is the time of `--emit selected` minus that of
`--emit ir`, per op, measured two ways:
- warm: in this process, after a warm-up (median of 3);
- fresh: each compile in a process of its own that has imported annc and nothing
  else has run (`--processes` of each, interleaved; medians), for `--fresh-ops` ops.
  This counts what the first selection of a process pays once: importing the
  variant library (Halide) and probing the devices, reading the models. Run it
  where Python keeps its bytecode (PYTHONDONTWRITEBYTECODE unset, or with
  PYTHONPYCACHEPREFIX): else every process compiles annc's modules again.
Both time the compile alone (not printing the IR). `tune` is timed on the programs
up to `--tune-up-to` ops. Writes `benchmarks/results/overhead.md` and `overhead.png`.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import RESULTS
from rich.console import Console
from xdsl.dialects.builtin import ModuleOp

from annc.commands.tune import tune
from annc.compiler import compile_source, select
from annc.hardware.devices.fingerprint import fingerprint
from annc.passes.select_variants import plan_selection
from annc.passes.sites import data_flow


def program(n_ops: int) -> str:
    """A straight-line program of about n kernel ops on a few dozen different shapes."""
    lines = ["input A : f32[64, 64]", "input v : f32[64]", "input K : f32[5, 5]"]
    for size in (16, 32, 48, 64, 96, 128):
        lines += [f"input M{size} : f32[{size}, {size}]", f"input I{size} : f32[{size}, {size}]"]
    ops = 0
    step = 0
    while ops < n_ops:
        size = (16, 32, 48, 64, 96, 128)[step % 6]
        lines += [
            f"P{step} = matmul(M{size}, M{size})",
            f"Q{step} = conv2d(I{size}, K) + P{step}",
            f"w{step} = matvec(A, v) * 2",
        ]
        ops += 5
        step += 1
    outputs = ", ".join(f"Q{i}" for i in range(step))
    return "\n".join([*lines, f"output {outputs}, w{step - 1}", ""])


def timed(action, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


FRESH = """
import sys, time
from annc.compiler import compile_program
text = sys.stdin.read()
start = time.perf_counter()
compile_program(text, emit=sys.argv[1], targets=["cpu"], record=False)
print(time.perf_counter() - start)
"""
"""A fresh process's compile of the program on stdin to the stage argv[1]; prints seconds."""


def fresh_seconds(text: str, emit: str) -> float:
    done = subprocess.run([sys.executable, "-c", FRESH, emit], input=text, text=True,
                          check=True, capture_output=True)
    return float(done.stdout)


def fresh_selection(text: str, processes: int) -> tuple[float, float]:
    """Medians over fresh processes of compiling to `ir` and to `selected` (interleaved,
    so that a machine that slows down slows both)."""
    if sys.flags.dont_write_bytecode:
        print("warning: Python keeps no bytecode here; fresh processes compile annc's "
              "modules again and count it", file=sys.stderr)
    fresh_seconds(text, "selected")  # Python's bytecode caches, the OS's file cache
    times: dict[str, list[float]] = {"ir": [], "selected": []}
    for _ in range(processes):
        for emit, seconds in times.items():
            seconds.append(fresh_seconds(text, emit))
    return statistics.median(times["ir"]), statistics.median(times["selected"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--tune-up-to", type=int, default=100)
    parser.add_argument("--fresh-ops", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    warm = compile_source(program(10), emit="ir", targets=["cpu"])
    assert isinstance(warm, ModuleOp)
    select(warm)
    rows = []
    for n in sizes:
        text = program(n)
        ir_s = timed(lambda text=text: compile_source(text, emit="ir", targets=["cpu"]))
        selected_s = timed(lambda text=text: compile_source(text, emit="selected",
                                                            targets=["cpu"]))
        module = compile_source(text, emit="ir", targets=["cpu"])
        assert isinstance(module, ModuleOp)
        plan = plan_selection(module)
        n_ops = len(plan.ops)
        tune_s = None
        if n <= args.tune_up_to:
            start = time.perf_counter()
            tune(module, None, 120.0, Console(stderr=True, quiet=True), plan)
            tune_s = time.perf_counter() - start
        rows.append((n_ops, ir_s, selected_s, tune_s))
        print(rows[-1], file=sys.stderr, flush=True)
    fresh_text = program(args.fresh_ops)
    fresh_module = compile_source(fresh_text, emit="ir", targets=["cpu"])
    assert isinstance(fresh_module, ModuleOp)
    fresh_ops = len(data_flow(fresh_module).sites)
    fresh_ir, fresh_selected = fresh_selection(fresh_text, args.processes)
    machine = fingerprint()
    lines = [
        "# Selection overhead", "",
        f"Machine `{machine.id}` ({machine.cpu_model}, {machine.cores} cores); "
        f"{datetime.date.today().isoformat()}. Command: `python benchmarks/overhead.py`. "
        "Target cpu. Warm, in one process, median of 3; `tune` measures every candidate "
        "of every op.", "",
        "| ops | --emit ir | --emit selected | selection per op | tune |",
        "|---|---|---|---|---|",
    ]
    for n_ops, ir_s, selected_s, tune_s in rows:
        per_op = (selected_s - ir_s) / n_ops
        tuned = "-" if tune_s is None else f"{tune_s:.1f} s"
        lines.append(f"| {n_ops} | {ir_s * 1e3:.0f} ms | {selected_s * 1e3:.0f} ms | "
                     f"{per_op * 1e6:.0f} µs | {tuned} |")
    fresh_per_op = (fresh_selected - fresh_ir) / fresh_ops
    lines += ["", f"Fresh, each compile in a process of its own (median of {args.processes} "
              f"processes each), {fresh_ops} ops: `--emit ir` {fresh_ir * 1e3:.0f} ms, "
              f"`--emit selected` {fresh_selected * 1e3:.0f} ms, selection "
              f"{fresh_per_op * 1e6:.0f} µs per op. This includes what the first selection "
              "of a process pays once (the variant library with Halide, the device probes, "
              "the models).", "", "![overhead](overhead.png)", ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overhead.md").write_text("\n".join(lines))
    _plot(rows, RESULTS / "overhead.png")
    print("\n".join(lines))


def _plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6, 4))
    ops = [r[0] for r in rows]
    ax.loglog(ops, [r[2] - r[1] for r in rows], "o-", label="selection (selected − ir)")
    tuned = [(r[0], r[3]) for r in rows if r[3] is not None]
    if tuned:
        ax.loglog(*zip(*tuned, strict=True), "s-", label="tune (measure every candidate)")
    ax.set_xlabel("kernel ops in the program")
    ax.set_ylabel("seconds")
    ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


if __name__ == "__main__":
    main()
