"""What an installed variant plugin costs the commands that do not use it.

    .venv/bin/python benchmarks/plugin_overhead.py [--repeats 7]

Installs the example plugin `examples/plugins/annc-blas-sum` with pip into a folder of
its own, then times fresh `annc` processes with that folder on the path and without,
interleaved (`--repeats` of each; medians): `annc variants --report json` and `annc run
examples/heat.ann -D N=64 -D STEPS=10`. Both read the `annc.variants` entry points
(every process that builds the variant library does). Also times the entry-point scan
alone, in this process. Writes `benchmarks/results/plugin_overhead.md` (and `.json`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

from harness import RESULTS, ROOT, environment, heading, log, stamp, write

PLUGIN = ROOT / "examples" / "plugins" / "annc-blas-sum"
COMMANDS = {
    "annc variants --report json": ["variants", "--report", "json"],
    "annc run examples/heat.ann -D N=64 -D STEPS=10": [
        "run", "examples/heat.ann", "-D", "N=64", "-D", "STEPS=10", "--no-record"],
}


def seconds(arguments: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "annc", *arguments], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="annc-plugin-"))
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), str(PLUGIN)], check=True, cwd=work)
    plain = environment(work / "home")
    with_plugin = dict(plain, PYTHONPATH=f"{site}:{plain['PYTHONPATH']}")
    times: dict[str, dict[str, list[float]]] = {c: {"without": [], "with": []}
                                                 for c in COMMANDS}
    for name, arguments in COMMANDS.items():
        seconds(arguments, plain)  # the first run of a home pays for its builds
        seconds(arguments, with_plugin)
        for repeat in range(args.repeats):
            for label, env in (("without", plain), ("with", with_plugin)):
                times[name][label].append(seconds(arguments, env))
            log(f"{name}: repeat {repeat + 1}/{args.repeats}")
    scans = []
    for _ in range(20):
        start = time.perf_counter()
        list(entry_points(group="annc.variants"))
        scans.append(time.perf_counter() - start)
    stamped = stamp("plugin_overhead.py")
    lines = heading("Fresh processes with and without a variant plugin installed", stamped)
    lines += ["", f"Medians of {args.repeats} fresh processes each, interleaved; the "
              "machine may have been loaded by other work.", "",
              "| command | without (s) | with the plugin (s) | difference |", "|---|---|---|---|"]
    for name, by_label in times.items():
        without = statistics.median(by_label["without"])
        with_ = statistics.median(by_label["with"])
        lines.append(f"| `{name}` | {without:.3f} | {with_:.3f} | "
                     f"{(with_ - without) * 1e3:+.0f} ms ({with_ / without - 1:+.1%}) |")
    scan = statistics.median(scans)
    lines += ["", f"Reading the `annc.variants` entry points of this environment, in a "
              f"warm process: {scan * 1e3:.2f} ms (median of 20)."]
    write(RESULTS / "plugin_overhead.md", lines,
          {**stamped, "times": times, "entry_point_scan_s": scans})


if __name__ == "__main__":
    main()
