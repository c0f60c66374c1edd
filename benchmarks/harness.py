"""What the benchmarks share (benchmarks/README.md): the examples and their sizes, the
processes' environment, `annc tune`'s passes read back as the models' queries, and how a
result is stamped and written. A benchmark imports this module and no other benchmark.

A benchmark's annc processes run this checkout, on the CPU, in the `$ANNC_HOME` given,
recording on as a user's do, each waiting for the builds it made beside itself so that
the next run finds them however fast the machine is (`ANNC_WAIT_FOR_BUILDS=1`). A
result is a Markdown file and a JSON file beside it, both stamped with the machine's
fingerprint, the date and the command that made them. annc itself is imported only by
the helpers that need it, so a benchmark that only starts annc processes stays light.
"""

from __future__ import annotations

import datetime
import gzip
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from annc.dsl.records import Query
    from annc.passes.select_variants import Plan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RESULTS = Path(__file__).resolve().parent / "results"
TUNE_PASS = RESULTS / "tune_passes" / "2026-11-26T1250.json.gz"
"""`annc tune`'s measurements of every candidate of the examples at `SIZES` on the
reference machine, 2026-11-26 12:50 UTC (kept in git with the day's other passes): the
data of the paper's claims 2 and 3 in docs/results.md."""

SIZES: dict[str, list[dict[str, int]]] = {
    "heat": [{"N": 512, "STEPS": 500}, {"N": 1024, "STEPS": 500}],
    "wave": [{"N": 512, "STEPS": 500}, {"N": 1024, "STEPS": 500}],
    "poisson": [{"N": 512, "SWEEPS": 1000}, {"N": 1024, "SWEEPS": 1000}],
    "power_iteration": [{"N": 800, "ITERATIONS": 200}, {"N": 1500, "ITERATIONS": 200}],
    "conjugate_gradients": [{"N": 500, "ITERATIONS": 100}, {"N": 1000, "ITERATIONS": 100}],
    "detector_smoothing": [{"N": 512, "P": 15, "PASSES": 3}, {"N": 1024, "P": 31, "PASSES": 3}],
    "gram_matrix": [{"S": 400, "P": 1000}, {"S": 800, "P": 2000}],
    "markov_chain": [{"M": 400, "SQUARINGS": 12}, {"M": 800, "SQUARINGS": 12}],
}
"""Every example at two realistic sizes."""
QUICK: dict[str, list[dict[str, int]]] = {
    "heat": [{"N": 64, "STEPS": 3}],
    "gram_matrix": [{"S": 40, "P": 60}],
}
"""Two tiny cases, to try a benchmark out."""

OWN_HALIDE = {"matmul": "halide.tiled", "matvec": "halide.tiled", "transpose": "halide.tiled",
              "conv2d": "halide.direct"}
"""annc's own Halide schedule of each kernel (`halide` for the others)."""
AUTO = ("mullapudi2016", "li2018", "adams2019")
"""Halide's auto-schedulers, as annc's variants name them (`halide.auto.NAME`)."""


def example_sizes(quick: bool, examples: str | None) -> dict[str, list[dict[str, int]]]:
    """A benchmark's cases: `QUICK` with `quick`, else `SIZES`; only the comma-separated
    `examples` if given."""
    sizes = QUICK if quick else SIZES
    if examples:
        sizes = {k: v for k, v in sizes.items() if k in examples.split(",")}
    return sizes


def geomean(values: list[float]) -> float:
    """The geometric mean; nan for no values."""
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else float("nan")


def environment(home: Path, checkout: Path = ROOT) -> dict[str, str]:
    """The environment of an annc process of a benchmark (see the module); `checkout`
    is the annc it runs (another one for a before and after: run it there too, since
    `python -m` reads its working folder first)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    env.update(ANNC_HOME=str(home), ANNC_WAIT_FOR_BUILDS="1", JAX_PLATFORMS="cpu")
    env.pop("ANNC_NO_RECORD", None)
    return env


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def stamp(script: str) -> dict[str, Any]:
    """The machine (its fingerprint's fields), the date and this script's command line."""
    from annc.hardware.devices.fingerprint import fingerprint

    return {"machine": fingerprint().as_dict(),
            "date": datetime.datetime.now().isoformat(timespec="minutes"),
            "command": shlex.join(["python", f"benchmarks/{script}", *sys.argv[1:]])}


def heading(title: str, stamped: dict[str, Any]) -> list[str]:
    """A result's title and its line of machine, date and command."""
    machine = stamped["machine"]
    return [f"# {title}", "",
            f"Machine `{machine['id']}` ({machine['cpu_model']}, {machine['cores']} cores); "
            f"{stamped['date']}. Command: `{stamped['command']}`."]


def write(out: Path, lines: list[str], data: dict[str, Any]) -> None:
    """The Markdown result at `out`, its data as JSON beside it; the Markdown printed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(data, indent=1))
    print("\n".join(lines))


def quick_calibration(budget: float, console: Console) -> float:
    """Wall seconds of `annc calibrate --quick` in a fresh process."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "annc", "calibrate", "--quick", "--budget",
                           f"{budget:g}"], capture_output=True, text=True)
    seconds = time.perf_counter() - began
    console.print(done.stderr.strip())
    if done.returncode != 0:
        raise SystemExit(f"calibrate --quick failed: {done.stderr}")
    return seconds


def predictions(plan: Plan) -> dict[tuple[int, str, str], float]:
    """Each candidate's predicted time alone: tune times a kernel without the plan step
    around it, so the step's own time (`ModelSet.step_overhead_s`, which selection adds
    to every prediction) is taken off."""
    step = plan.chosen_models.step_overhead_s if plan.chosen_models else 0.0
    return {(op.site.index, c.variant, c.device): c.predicted_s - step
            for op in plan.ops for c in op.candidates if c.predicted_s is not None}


def passes_of(path: Path) -> list[list[dict]]:
    """The `tune` passes of a file, each a list of cases (`example`, `params`, `tune`),
    every op with its dtype from the compiled example: one pass from
    `adaptation.py`'s file (or one of `results/tune_passes/`, gzipped), two
    (`first`, `second`) from `workloads.py`'s."""
    from annc.compiler import compile_file
    from annc.hardware.variants import load_library
    from annc.passes.sites import data_flow

    load_library()
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else (
        path.read_text())
    cases = json.loads(text)["cases"]
    keys = ["tune"] if "tune" in cases[0] else ["first", "second"]
    passes: list[list[dict]] = [[] for _ in keys]
    for case in cases:
        module = compile_file(EXAMPLES / f"{case['example']}.ann", params=case["params"],
                              targets=["cpu"], emit="ir")
        sites = data_flow(module).sites
        for found, key in zip(passes, keys, strict=True):
            for op in case[key]["ops"]:
                op["dtype"] = sites[op["index"]].dtype
            found.append({"example": case["example"], "params": case["params"],
                          "tune": case[key]})
    return passes


def configuration_of(op: dict, candidate: dict) -> Query:
    """The models' query for one candidate of one op, traits included."""
    from annc.hardware.variants import get_variant

    shapes = tuple(tuple(s) for s in op["shapes"])
    return get_variant(op["kernel"], candidate["variant"], candidate["device"]).query(
        shapes, op["dtype"])


def candidate_queries(cases: list[dict]) -> list[tuple[tuple, Query, float]]:
    """(combination, configuration, measured seconds) of every candidate a pass measured."""
    return [((op["kernel"], c["variant"], c["device"]), configuration_of(op, c),
             c["measured_s"])
            for case in cases for op in case["tune"]["ops"] for c in op["candidates"]
            if c["measured_s"]]
