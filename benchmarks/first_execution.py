"""A process's first execution of a program against its later ones, builds kept.

    .venv/bin/python benchmarks/first_execution.py [--processes 7] [--out PATH]

Two programs whose builds are kept (one process builds them, in a fresh `$ANNC_HOME`):
heat at 1024² × 200 steps with its whole loop compiled by JAX (forced: where JAX's
start is not worth it selection picks Halide's stencil step instead), and a scaled
product with an update (`C = alpha·A·B + beta·C`, 1000×1200 @ 1200×1100, f64), run
as a user runs it (its one region as numpy). In each of `--processes` fresh
processes, the program runs three times; the first run's `execute_s` is compared
with the median of the other two (aim: within 1.15x for the compiled loop, 1.05x
for numpy). Medians over processes, with their range. Writes
`benchmarks/results/first_execution.md` and `.json`. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import RESULTS, ROOT, environment, heading, log, stamp, write

GEMM = ("input A : f64[1000, 1200]\ninput B : f64[1200, 1100]\ninput C : f64[1000, 1100]\n"
        "input alpha : f64\ninput beta : f64\nC = matmul(alpha * A, B) + beta * C\n"
        "output C\n")

RUNS = """
import json, sys, annc
from xdsl.dialects.builtin import StringAttr
from annc.compiler import compile_program, read_source
from annc.running import run_module
from annc.dsl.dialect import RegionOp
from annc.hardware.execution.warm import WarmUp

path, params, loop = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "loop"
if not loop:  # as a user runs it
    times = [annc.run_file(path, params=params, targets=["cpu"]).report["execute_s"]
             for _ in range(3)]
else:  # its outermost loop compiled whole (what selection picks where JAX pays)
    module = compile_program(read_source(path), path, params, ["cpu"], "selected",
                             "never", record=False).ir
    for op in module.walk():
        outer = op.parent_op()
        if isinstance(op, RegionOp) and outer is not None and outer.name == "func.func" \
                and any(inner.name == "scf.for" for inner in op.walk()):
            op.attributes["kernel.variant"] = StringAttr("jax")
            op.attributes.pop("kernel.start_variant", None)
    times = []
    for _ in range(3):  # each made ready as `run_file` makes it (hardware.execution.warm)
        warm = WarmUp()
        warm.start(module)
        times.append(run_module(module.clone(), builds="first", warm=warm).report["execute_s"])
print(json.dumps(times))
"""


def measure(name: str, path: Path, params: dict[str, int], loop: bool, processes: int,
            folder: Path, log) -> dict:
    home = folder / f"home_{name}"
    defines = [a for k, v in params.items() for a in ("-D", f"{k}={v}")]
    subprocess.run([sys.executable, "-m", "annc", "build", str(path), *defines, "--target",
                    "cpu"], check=True, capture_output=True, env=environment(home), cwd=ROOT)
    firsts, laters, ratios = [], [], []
    for _ in range(processes + 1):  # the first process builds what `annc build` did not
        done = subprocess.run([sys.executable, "-c", RUNS, str(path), json.dumps(params),
                               "loop" if loop else "user"],
                              capture_output=True, text=True, env=environment(home), cwd=ROOT)
        if done.returncode:
            raise RuntimeError(done.stderr)
        if _ == 0:
            continue
        first, *later = json.loads(done.stdout.strip().splitlines()[-1])
        firsts.append(first)
        laters.append(statistics.median(later))
        ratios.append(first / statistics.median(later))
    row = {"program": name, "params": params, "first_s": firsts, "later_s": laters,
           "ratios": ratios, "ratio": statistics.median(ratios)}
    log(f"  {name}: first {statistics.median(firsts) * 1e3:.1f} ms, later "
        f"{statistics.median(laters) * 1e3:.1f} ms, ratio {row['ratio']:.3f} "
        f"({min(ratios):.2f}–{max(ratios):.2f})")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS / "first_execution.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="annc_first_") as folder:
        gemm = Path(folder) / "gemm.ann"
        gemm.write_text(GEMM)
        rows = [measure("heat (its loop compiled by JAX)", ROOT / "examples" / "heat.ann",
                        {"N": 1024, "STEPS": 200}, True, args.processes, Path(folder), log),
                measure("gemm (numpy)", gemm, {}, False, args.processes, Path(folder), log)]
    stamped = stamp("first_execution.py")
    lines = [*heading("A process's first execution against its later ones", stamped),
             f"Builds kept beforehand; in each of {args.processes} fresh processes three "
             "runs; `execute_s`.", "",
             "| program | first execution ms | later ms | first / later (range) |",
             "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['program']} | {statistics.median(row['first_s']) * 1e3:.1f} | "
                     f"{statistics.median(row['later_s']) * 1e3:.1f} | {row['ratio']:.3f} "
                     f"({min(row['ratios']):.2f}–{max(row['ratios']):.2f}) |")
    write(args.out, lines, {**stamped, "rows": rows})

if __name__ == "__main__":
    main()
