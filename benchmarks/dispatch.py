"""What running an op costs beyond its kernel: the executable plan's dispatch overhead.

    .venv/bin/python benchmarks/dispatch.py [--repeats 21] [--out PATH]

Two programs of 1000 op executions on a 16-element f32 vector: a straight chain
of 1000 element-wise ops, and a loop of 10 element-wise ops run 100 times. Each
is compiled to IR (every op runs `numpy.reference` on the CPU), made into a plan
once, run twice to warm up, then `--repeats` times. The dispatch overhead per op
is (the run's wall time − the sum of the ops' measured times) / op executions,
the median over the repeats. The same IR run by xDSL's interpreter (the tests'
reference, `tests/reference_interpreter.py`, which is what ran programs before
plans) is timed too; having no per-op times, its overhead is estimated with the
plan's kernel times. The cost of timing itself (a `perf_counter_ns` pair and an
append per op) is measured alone. Writes `benchmarks/results/dispatch.md`.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from harness import RESULTS
from xdsl.dialects.builtin import ModuleOp

from annc.compiler import compile_source
from annc.hardware.devices.available import CPU
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.execution.plan import ExecutablePlan
from annc.hardware.execution.planning import compile_plan
from annc.hardware.execution.rundata import generated_inputs, input_specs

TESTS = Path(__file__).resolve().parent.parent / "tests"
OPS = ("+", "*", "-")
DEVICES = {"cpu": CPU}


def chain(n_ops: int) -> str:
    """n element-wise ops, each reading the one before it and the input."""
    lines = ["input x : f32[16]", "y0 = x + x"]
    lines += [f"y{i} = y{i - 1} {OPS[i % 3]} x" for i in range(1, n_ops)]
    return "\n".join([*lines, f"output y{n_ops - 1}", ""])


def loop(n_ops: int, trips: int) -> str:
    """A loop of n element-wise ops carrying one value, run `trips` times."""
    body = [f"  y = y {OPS[i % 3]} x" for i in range(n_ops)]
    return "\n".join(["input x : f32[16]", "y = x", f"repeat {trips} {{", *body, "}",
                      "output y", ""])


def plan_overhead_ns(plan: ExecutablePlan, arrays: list[np.ndarray],
                     repeats: int) -> tuple[float, float]:
    """Median dispatch overhead per op execution and median kernel time per execution."""
    overheads, kernels = [], []
    for repeat in range(repeats + 2):
        start = time.perf_counter_ns()
        plan.run(arrays)
        wall = time.perf_counter_ns() - start
        kernel = sum(sum(op.times_ns) for op in plan.ops)
        executions = sum(len(op.times_ns) for op in plan.ops)
        if repeat >= 2:  # after two warm-up runs
            overheads.append((wall - kernel) / executions)
            kernels.append(kernel / executions)
    return statistics.median(overheads), statistics.median(kernels)


def interpreter_wall_ns(module: ModuleOp, arrays: list[np.ndarray], repeats: int,
                        executions: int) -> float:
    """Median wall time per op execution of xDSL's interpreter on the same IR."""
    sys.path.insert(0, str(TESTS))
    from reference_interpreter import interpret

    walls = []
    for repeat in range(repeats + 2):
        start = time.perf_counter_ns()
        interpret(module, arrays, DEVICES)
        if repeat >= 2:
            walls.append((time.perf_counter_ns() - start) / executions)
    return statistics.median(walls)


def timing_cost_ns(n: int = 200_000) -> float:
    """Nanoseconds of the per-op timing alone: two clock reads and an append."""
    clock, times = time.perf_counter_ns, []
    record = times.append

    def timed() -> None:
        start = clock()
        end = clock()
        record(end - start)

    def untimed() -> None:
        pass

    def loop_ns(body: Callable[[], None]) -> float:
        start = time.perf_counter_ns()
        for _ in range(n):
            body()
        return (time.perf_counter_ns() - start) / n

    return statistics.median(loop_ns(timed) - loop_ns(untimed) for _ in range(5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--out", type=Path, default=RESULTS / "dispatch.md")
    args = parser.parse_args()
    rows = []
    for name, text, executions in (("chain of 1000 ops", chain(1000), 1000),
                                   ("loop: 10 ops × 100 trips", loop(10, 100), 1000)):
        module = compile_source(text, filename="dispatch.ann", emit="ir")
        assert isinstance(module, ModuleOp)
        arrays = generated_inputs(input_specs(module), seed=0)
        start = time.perf_counter()
        plan = compile_plan(module, DEVICES)
        plan_s = time.perf_counter() - start
        overhead, kernel = plan_overhead_ns(plan, arrays, args.repeats)
        interpreted = interpreter_wall_ns(module, arrays, args.repeats, executions)
        rows.append((name, plan_s, overhead, kernel, interpreted - kernel))
        print(rows[-1], file=sys.stderr, flush=True)
    timing = timing_cost_ns()
    machine = fingerprint()
    lines = [
        "# Dispatch overhead per op", "",
        f"Machine `{machine.id}` ({machine.cpu_model}, {machine.cores} cores); "
        f"{datetime.date.today().isoformat()}. Command: `python benchmarks/dispatch.py`. "
        f"1000 op executions on f32[16], `numpy.reference` on the CPU; median of "
        f"{args.repeats} runs after 2 warm-up runs.", "",
        "An op's measured time (the report's `measured_s`) spans its operands' lookup and "
        "copies and its kernel call; the dispatch overhead is everything else.", "",
        "| program | making the plan | plan: dispatch per op | measured time per op "
        "| xDSL interpreter: dispatch per op (est.) |",
        "|---|---|---|---|---|",
    ]
    for name, plan_s, overhead, kernel, interpreted in rows:
        lines.append(f"| {name} | {plan_s * 1e3:.0f} ms | {overhead / 1e3:.2f} µs | "
                     f"{kernel / 1e3:.2f} µs | {interpreted / 1e3:.1f} µs |")
    lines += ["", f"Timing each op (two `perf_counter_ns` reads and an append) costs "
              f"{timing:.0f} ns of that overhead.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
