"""annc's run of single-pass linear-algebra programs against numpy and jax.jit.

    .venv/bin/python benchmarks/linear_algebra.py [--runs 5] [--programs gemm,chain]
        [--out PATH]

Six programs at realistic sizes, all f64, each a single pass with no loop: a scaled
product with an update (`C = alpha·A·B + beta·C`), a chain of two products, a
least-squares normal matrix (`Xᵀ X`), a Gram matrix (`X Xᵀ`), matrix–vector products
with a transpose and their sum, and a residual with its norm. These are BLAS-bound:
there is little for annc to choose, so what it adds to the BLAS calls is what shows.
Each program's inputs are drawn once, saved to an `.npz` and given to all three:

1. annc: `annc run PROGRAM --inputs IN.npz --report json` in a fresh process,
   `--runs` times one after the other in one fresh `$ANNC_HOME`, recording on (a new
   user's first run, then their later ones; builds beside a run are waited for,
   `ANNC_WAIT_FOR_BUILDS=1`); the report's `execute_s` (the execution's wall time).
2. numpy: the same expressions in a fresh Python process that loads the inputs and
   times its first and only call (`--runs` processes).
3. `jax.jit`: the same expressions jitted, in this process, steady state: the median
   of `--runs` calls after a compiling call.

Processes alternate (annc, numpy, annc, ...) so that a drift of the machine reaches
both. Every output is checked against numpy's (relative error under 1e-10). Ratios
above 1 mean annc is faster. Writes `benchmarks/results/linear_algebra.md` and `.json`.
Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from harness import RESULTS, ROOT, environment, heading, log, stamp, write

SEED = 20261207


@dataclass(frozen=True)
class Program:
    name: str
    text: str
    """The annc program; its inputs and outputs are the names of `expression`."""
    expression: str
    """The same computation in numpy (`@`, `.T`, `np.linalg.norm`) over the inputs,
    assigning every output; also run by jax.jit with `np` meaning `jax.numpy`."""
    shapes: dict[str, tuple[int, ...]]


PROGRAMS = {p.name: p for p in [
    Program("gemm", "input A : f64[1000, 1200]\ninput B : f64[1200, 1100]\n"
            "input C : f64[1000, 1100]\ninput alpha : f64\ninput beta : f64\n"
            "C = matmul(alpha * A, B) + beta * C\noutput C\n",
            "C = (alpha * A) @ B + beta * C",
            {"A": (1000, 1200), "B": (1200, 1100), "C": (1000, 1100), "alpha": (),
             "beta": ()}),
    Program("chain", "input A : f64[1500, 1000]\ninput B : f64[1000, 1200]\n"
            "input C : f64[1200, 800]\nD = matmul(matmul(A, B), C)\noutput D\n",
            "D = (A @ B) @ C",
            {"A": (1500, 1000), "B": (1000, 1200), "C": (1200, 800)}),
    Program("normal", "input X : f64[6000, 500]\ninput y : f64[6000]\n"
            "G = matmul(transpose(X), X)\nb = matvec(transpose(X), y)\noutput G, b\n",
            "G = X.T @ X; b = X.T @ y",
            {"X": (6000, 500), "y": (6000,)}),
    Program("gram", "input X : f64[2000, 1500]\nG = matmul(X, transpose(X))\noutput G\n",
            "G = X @ X.T", {"X": (2000, 1500)}),
    Program("matvecs", "input A : f64[4000, 4000]\ninput x : f64[4000]\n"
            "input z : f64[4000]\ny = matvec(A, x) + matvec(transpose(A), z)\n"
            "s = sum(y)\noutput y, s\n",
            "y = A @ x + A.T @ z; s = np.sum(y)",
            {"A": (4000, 4000), "x": (4000,), "z": (4000,)}),
    Program("residual", "input A : f64[5000, 5000]\ninput u : f64[5000]\n"
            "input f : f64[5000]\nr = f - matvec(A, u)\nn = norm(r)\noutput r, n\n",
            "r = f - A @ u; n = np.linalg.norm(r)",
            {"A": (5000, 5000), "u": (5000,), "f": (5000,)}),
]}

NUMPY_SCRIPT = """
import json, sys, time
import numpy as np
with np.load(sys.argv[1], allow_pickle=False) as archive:
    values = {name: archive[name] for name in archive.files}
start = time.perf_counter()
exec(sys.argv[2], {"np": np}, values)
seconds = time.perf_counter() - start
np.savez(sys.argv[3], **{k: v for k, v in values.items() if k in sys.argv[4].split(",")})
print(json.dumps({"seconds": seconds}))
"""


def outputs_of(program: Program) -> list[str]:
    last = program.text.strip().splitlines()[-1]
    return [name.strip() for name in last.removeprefix("output").split(",")]


def inputs_for(program: Program, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {name: rng.standard_normal(shape) for name, shape in program.shapes.items()}


def run_annc(source: Path, inputs: Path, outputs: Path, home: Path) -> dict:
    command = [sys.executable, "-m", "annc", "run", str(source), "--inputs", str(inputs),
               "--save", str(outputs), "--report", "json", "--target", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, env=environment(home),
                          cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"execute_s": report["execute_s"], "startup_s": report["startup_s"],
            "compile_s": report["compile_s"],
            "variants": sorted({op["variant"] for op in report["ops"]}
                               | {f"region:{r['variant']}" for r in report["regions"]}),
            "tiers": len(report["tiers"])}


def run_numpy(program: Program, inputs: Path, outputs: Path, home: Path) -> float:
    command = [sys.executable, "-c", NUMPY_SCRIPT, str(inputs),
               program.expression.replace("; ", "\n"), str(outputs),
               ",".join(outputs_of(program))]
    done = subprocess.run(command, capture_output=True, text=True, env=environment(home))
    if done.returncode:
        raise RuntimeError(f"numpy for {program.name} failed:\n{done.stderr}")
    return float(json.loads(done.stdout)["seconds"])


def jax_steady(program: Program, values: dict[str, np.ndarray], runs: int
               ) -> tuple[list[float], dict[str, np.ndarray]]:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    names = outputs_of(program)

    def compute(**arrays: jax.Array) -> dict[str, jax.Array]:
        scope = dict(arrays)
        exec(program.expression.replace("; ", "\n"), {"np": jnp}, scope)
        return {name: scope[name] for name in names}

    jitted = jax.jit(compute)
    on_device = {k: jnp.asarray(v) for k, v in values.items()}
    result = jax.block_until_ready(jitted(**on_device))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        jax.block_until_ready(jitted(**on_device))
        times.append(time.perf_counter() - start)
    return times, {k: np.asarray(v) for k, v in result.items()}


def error(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> float:
    return max(float(np.linalg.norm(got[k] - want[k]) / max(np.linalg.norm(want[k]), 1e-300))
               for k in want)


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def measure(program: Program, runs: int, folder: Path, log) -> dict:
    values = inputs_for(program, np.random.default_rng(SEED))
    inputs = folder / f"{program.name}_in.npz"
    np.savez(inputs, **values)
    os.sync()  # the archive's writing back must not overlap the first timed run
    source = folder / f"{program.name}.ann"
    source.write_text(program.text)
    home = folder / f"home_{program.name}"
    annc_runs, numpy_runs = [], []
    annc_out, numpy_out = folder / "annc_out.npz", folder / "numpy_out.npz"
    for _ in range(runs):
        annc_runs.append(run_annc(source, inputs, annc_out, home))
        numpy_runs.append(run_numpy(program, inputs, numpy_out, home))
    jax_times, jax_out = jax_steady(program, values, runs)
    reference = load(numpy_out)
    errors = {"annc": error(load(annc_out), reference), "jax.jit": error(jax_out, reference)}
    annc_first = annc_runs[0]["execute_s"]
    annc_later = statistics.median(r["execute_s"] for r in annc_runs[1:]) if runs > 1 \
        else annc_first
    numpy_s = statistics.median(numpy_runs)
    jit_s = statistics.median(jax_times)
    log(f"  annc first {annc_first * 1e3:.1f} ms, later {annc_later * 1e3:.1f} ms; numpy "
        f"{numpy_s * 1e3:.1f} ms; jax.jit {jit_s * 1e3:.1f} ms; errors {errors}")
    return {"program": program.name, "annc_runs": annc_runs, "numpy_s": numpy_runs,
            "jax_jit_s": jax_times, "errors": errors,
            "annc_first_s": annc_first, "annc_later_s": annc_later,
            "numpy_median_s": numpy_s, "jax_jit_median_s": jit_s}


def spread(values: list[float]) -> str:
    median = statistics.median(values)
    return f"±{100 * (max(values) - min(values)) / 2 / median:.0f}%" if median else ""


def table(cases: list[dict]) -> list[str]:
    lines = ["| program | annc first run ms | annc later runs ms | numpy ms (fresh process) "
             "| jax.jit ms (steady) | numpy / annc first | numpy / annc later "
             "| jit / annc later | annc ran |", "|---|---|---|---|---|---|---|---|---|"]
    for case in cases:
        later = [r["execute_s"] for r in case["annc_runs"][1:]] or [case["annc_first_s"]]
        lines.append(
            f"| {case['program']} | {case['annc_first_s'] * 1e3:.1f} | "
            f"{case['annc_later_s'] * 1e3:.1f} {spread(later)} | "
            f"{case['numpy_median_s'] * 1e3:.1f} {spread(case['numpy_s'])} | "
            f"{case['jax_jit_median_s'] * 1e3:.1f} {spread(case['jax_jit_s'])} | "
            f"{case['numpy_median_s'] / case['annc_first_s']:.2f} | "
            f"{case['numpy_median_s'] / case['annc_later_s']:.2f} | "
            f"{case['jax_jit_median_s'] / case['annc_later_s']:.2f} | "
            f"{', '.join(case['annc_runs'][-1]['variants'])} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--programs", help="only these (comma-separated): " + ", ".join(PROGRAMS))
    parser.add_argument("--out", type=Path, default=RESULTS / "linear_algebra.md")
    args = parser.parse_args()
    names = args.programs.split(",") if args.programs else list(PROGRAMS)
    cases = []
    with tempfile.TemporaryDirectory(prefix="annc_linalg_") as folder:
        for name in names:
            log(name)
            cases.append(measure(PROGRAMS[name], args.runs, Path(folder), log))
    stamped = stamp("linear_algebra.py")
    machine = stamped["machine"]
    worst = max(max(c["errors"].values()) for c in cases)
    lines = [
        *heading("Single-pass linear algebra: annc against numpy and jax.jit", stamped),
        f"BLAS {machine['blas']}; f64; {args.runs} runs each (median; ± half the range). "
        "annc: the report's `execute_s`, each run in a fresh process, all runs of a "
        "program in one fresh `$ANNC_HOME` (first run, then the median of the later "
        "ones); numpy: the same expressions' first call in a fresh process; jax.jit: "
        "steady state. Ratios above 1: annc is faster. Largest relative error against "
        f"numpy: {worst:.1e}.", "",
        *table(cases), "",
    ]
    write(args.out, lines, {**stamped, "runs": args.runs, "seed": SEED, "cases": cases})

if __name__ == "__main__":
    main()
