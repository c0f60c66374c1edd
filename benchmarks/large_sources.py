"""Large sources: a `const` of a million numbers, and programs of many statements.

    .venv/bin/python benchmarks/large_sources.py [--consts 200x1000,1000x1000]
        [--statements 10000,50000,100000,400000] [--shapes mixed,chain]
        [--commands compile,run] [--repeats 3] [--timeout 600] [--checkout PATH]
        [--out PATH]

Each program is written to a temporary folder, and each command runs it as a fresh
process in a fresh `$ANNC_HOME`: `compile` is `annc compile FILE -o OUT` (the IR, written
to a file), `selected` is the same with `--emit selected`, `run` is `annc run FILE
--builds never` (nothing built: a build of a program's code is no cost of its size).
Every command targets the CPU. Each is timed as wall time and peak resident memory of
its process (GNU time's `%M`); medians of `--repeats`, with their range. A run of
a const checks its output against numpy's sum of the same numbers.

The programs:
- `const R×C`: `const C : f64[R, C] = [[...], ...]` of uniform numbers in [-1, 1)
  written with 6 significant digits, then `S = sum(C)`, `output S`.
- `mixed N`: N statements on 8×8 f64 matrices, each reading the one before and every
  other one reading a value from half-way back (so values live long and data flow is
  real): matrix products, convolutions, transposes, norms and element-wise operations,
  about 1.8 kernel ops a statement, in fused chains of a few ops.
- `chain N`: N element-wise statements `X_i = X_(i-1) * 0.5 + A` on an 8×8 matrix: one
  fusable chain of 2N ops, the longest a program can ask the fusion pass for.

Two baselines say what any run pays whatever its size: a fresh process importing JAX,
xDSL and Lark, and `annc run` of a one-statement program. `--checkout PATH` runs annc
from another checkout (say, the main branch before a change), for a before and after.
Writes `benchmarks/results/large_sources.md` and `.json`.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from harness import RESULTS, ROOT, environment, heading, log, stamp, write

COMMANDS = {
    "compile": ["compile", "{file}", "--target", "cpu", "-o", "{folder}/out.mlir"],
    "selected": ["compile", "{file}", "--target", "cpu", "--emit", "selected", "-o",
                 "{folder}/out.mlir"],
    "run": ["run", "{file}", "--target", "cpu", "--builds", "never", "--save",
            "{folder}/out.npz"],
}
IMPORTS = {"import jax": "import jax.numpy",
           "import xdsl and lark": "import xdsl.dialects.builtin, lark"}


@dataclass
class Program:
    kind: str
    size: int
    """Elements of a const; statements of the others."""
    text: str
    expected: float | None = None
    """The output S where the benchmark knows it (a const's sum)."""

    @property
    def label(self) -> str:
        return self.kind if "×" in self.kind else f"{self.kind} {self.size:,}"


def const_program(rows: int, columns: int) -> Program:
    values = np.random.default_rng(0).uniform(-1, 1, (rows, columns))
    written = [", ".join(f"{v:.6g}" for v in row) for row in values]
    body = "],\n  [".join(written)
    text = f"const C : f64[{rows}, {columns}] = [\n  [{body}]]\nS = sum(C)\noutput S\n"
    exact = np.array([[float(f"{v:.6g}") for v in row] for row in values])
    return Program(f"const {rows}×{columns}", rows * columns, text, float(exact.sum()))


MIXED = ("X{i} = matmul(X{p}, A) * 0.125", "X{i} = X{p} + X{h} * 0.5",
         "X{i} = conv2d(X{p}, K) * 0.1", "X{i} = transpose(X{p}) - X{h}",
         "s{i} = norm(X{p})", "X{i} = X{p} / (1 + s{s})")
"""The mixed program's statements in turn: p is the matrix before, h one half-way back,
s the last norm."""


def mixed_program(statements: int) -> Program:
    lines = ["input A : f64[8, 8]", "input K : f64[3, 3]", "X0 = A * 0.5"]
    matrices, norm = [0], 1
    lines.append("s1 = norm(X0)")
    for i in range(2, statements):
        line = MIXED[i % len(MIXED)].format(i=i, p=matrices[-1], h=matrices[len(matrices) // 2],
                                            s=norm)
        lines.append(line)
        if line.startswith("s"):
            norm = i
        else:
            matrices.append(i)
    lines.append(f"output X{matrices[-1]}")
    return Program("mixed", statements, "\n".join(lines) + "\n")


def chain_program(statements: int) -> Program:
    lines = ["input A : f64[8, 8]", "X0 = A * 0.5"]
    lines += [f"X{i} = X{i - 1} * 0.5 + A" for i in range(1, statements)]
    lines.append(f"output X{statements - 1}")
    return Program("chain", statements, "\n".join(lines) + "\n")


SHAPES: dict[str, Callable[[int], Program]] = {"mixed": mixed_program, "chain": chain_program}


@dataclass
class Timed:
    seconds: float
    peak_mb: float
    status: str
    """"ok", "timed out", or the process's error."""


TIME = "/usr/bin/time"
"""GNU time, which forks the command and reports its peak RSS (`%M`): the kernel counts
in a process's peak what the process that started it held when it did (the copy it
made of it before exec), so a command started by this script, which holds its programs'
text, would count that too."""


def timed_process(command: list[str], env: dict[str, str], timeout: float,
                  folder: Path, checkout: Path = ROOT) -> Timed:
    """Runs the command; its wall time and peak resident memory (of that process alone,
    measured by GNU time)."""
    errors, peak = folder / "stderr.txt", folder / "peak_kb.txt"
    with errors.open("w") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen([TIME, "-f", "%M", "-o", str(peak), *command], env=env,
                                   cwd=checkout, stdout=subprocess.DEVNULL, stderr=stderr,
                                   start_new_session=True)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # time and the command under it
            process.wait()
            return Timed(time.perf_counter() - start, math.nan, "timed out")
        seconds = time.perf_counter() - start
    peak_mb = int(peak.read_text().split()[-1]) / 1024
    if process.returncode:
        return Timed(seconds, peak_mb, errors.read_text().strip().splitlines()[-1][:200])
    return Timed(seconds, peak_mb, "ok")


def annc_command(name: str, file: Path, folder: Path) -> list[str]:
    return [sys.executable, "-m", "annc",
            *(a.format(file=file, folder=folder) for a in COMMANDS[name])]


def checked(program: Program, command: str, folder: Path, result: Timed) -> Timed:
    """A run of a const whose output is not the sum of its numbers is no result."""
    if result.status != "ok" or command != "run" or program.expected is None:
        return result
    saved = float(np.load(folder / "out.npz")["S"])
    if abs(saved - program.expected) > 1e-9 * max(1.0, abs(program.expected)):
        return Timed(result.seconds, result.peak_mb,
                     f"wrong output {saved!r}, expected {program.expected!r}")
    return result


def measure(program: Program, command: str, args: argparse.Namespace,
            folder: Path) -> dict[str, Any]:
    file = folder / f"{program.kind.split()[0]}_{program.size}.ann"
    file.write_text(program.text)
    results = []
    for repeat in range(args.repeats):
        home = folder / f"home_{command}_{program.size}_{repeat}"
        env = environment(home, args.checkout)
        result = timed_process(annc_command(command, file, folder), env, args.timeout, folder,
                               args.checkout)
        results.append(checked(program, command, folder, result))
        if results[-1].status != "ok":
            break  # one failure or timeout says enough about this size
    return row(program.label, program.size, command, results)


def row(label: str, size: int, command: str, results: list[Timed]) -> dict[str, Any]:
    ok = [r for r in results if r.status == "ok"]
    seconds = [r.seconds for r in ok]
    row = {"program": label, "size": size, "command": command,
           "seconds": seconds, "peak_mb": [r.peak_mb for r in ok],
           "status": results[-1].status if len(ok) < len(results) else "ok",
           "failed_after_s": results[-1].seconds if len(ok) < len(results) else None}
    if seconds:
        row["median_s"] = statistics.median(seconds)
        row["median_peak_mb"] = statistics.median(row["peak_mb"])
    log(f"  {label} {command}: " + (
        f"{row['median_s']:.2f} s ({min(seconds):.2f}–{max(seconds):.2f}), "
        f"{row['median_peak_mb']:.0f} MB" if row["status"] == "ok"
        else f"{row['status']} after {row['failed_after_s']:.0f} s"))
    return row


def baselines(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    """Fresh processes that import JAX, and xDSL and Lark; `annc run` of one statement."""
    tiny = folder / "tiny.ann"
    tiny.write_text("input A : f64[8, 8]\nB = A * 2\noutput B\n")
    commands = [(label, [sys.executable, "-c", code]) for label, code in IMPORTS.items()]
    commands.append(("one statement", annc_command("run", tiny, folder)))
    rows = []
    for label, command in commands:
        results = [timed_process(command, environment(folder / f"home_base_{r}",
                                                      args.checkout), args.timeout, folder,
                                 args.checkout)
                   for r in range(args.repeats)]
        rows.append(row(label, 1, "run" if "annc" in command else "python -c", results))
    return rows


def table(rows: list[dict[str, Any]], base_s: float, base_mb: float) -> list[str]:
    lines = ["| program | command | wall s (range) | peak RSS MB | beyond one statement's "
             "run | per statement or element |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['program']} | {r['command']} | {r['status']} after "
                         f"{r['failed_after_s']:.0f} s | | | |")
            continue
        seconds = r["seconds"]
        beyond = (f"{r['median_s'] - base_s:+.2f} s, {r['median_peak_mb'] - base_mb:+.0f} MB"
                  if r["command"] == "run" and r["size"] > 1 else "")
        each = f"{r['median_s'] / r['size'] * 1e6:.1f} µs" if r["size"] > 1 else ""
        lines.append(f"| {r['program']} | {r['command']} | {r['median_s']:.2f} "
                     f"({min(seconds):.2f}–{max(seconds):.2f}) | {r['median_peak_mb']:.0f} | "
                     f"{beyond} | {each} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consts", default="200x1000,1000x1000",
                        help="const shapes, ROWSxCOLUMNS, comma-separated ('' for none)")
    parser.add_argument("--statements", default="10000,50000,100000,400000")
    parser.add_argument("--shapes", default="mixed,chain", help=", ".join(SHAPES))
    parser.add_argument("--commands", default="compile,run", help=", ".join(COMMANDS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one process may take")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="the annc checkout to run (default: this one)")
    parser.add_argument("--out", type=Path, default=RESULTS / "large_sources.md")
    args = parser.parse_args()
    programs = [const_program(*map(int, shape.split("x")))
                for shape in args.consts.split(",") if shape]
    programs += [SHAPES[shape](int(n)) for shape in args.shapes.split(",") if shape
                 for n in args.statements.split(",") if n]
    commands = args.commands.split(",")
    with tempfile.TemporaryDirectory(prefix="annc_large_") as name:
        folder = Path(name)
        log("baselines")
        base = baselines(args, folder)
        rows = []
        for program in programs:
            log(f"{program.label}: {len(program.text) / 1e6:.1f} MB of source")
            rows += [measure(program, command, args, folder) for command in commands]
    run_base = base[-1]
    stamped = stamp("large_sources.py")
    lines = [*heading("Large sources", stamped),
             f"Checkout `{args.checkout}`. Fresh processes, fresh `$ANNC_HOME`, target cpu; "
             f"medians of {args.repeats} with their range; peak RSS is the process's own.",
             "", "Baselines: " + "; ".join(
                 f"{r['program']} {r.get('median_s', float('nan')):.2f} s, "
                 f"{r.get('median_peak_mb', float('nan')):.0f} MB" for r in base)
             + " (`annc run` of one statement: what every run pays whatever its size).", "",
             *table(rows, run_base.get("median_s", 0.0), run_base.get("median_peak_mb", 0.0))]
    write(args.out, lines, {**stamped, "checkout": str(args.checkout), "baselines": base,
                            "rows": rows})


if __name__ == "__main__":
    main()
