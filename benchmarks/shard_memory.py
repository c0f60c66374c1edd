"""Peak memory per process of a distributed heat run: one process of 8 simulated CPU
devices against two processes of 4, for this checkout and another (e.g. before a
change).

    python benchmarks/shard_memory.py [--n 8192] [--steps 10] [--before PATH]
        [--gather-limit BYTES] [--out PATH]

Runs `examples/heat.ann` with its field declared f64 (an 8192² field is 512 MiB) as
`annc run --distributed --shard-regions --save`, each process started by this script
with `JAX_NUM_CPU_DEVICES` devices, and reads every process's peak resident memory
from the kernel: the largest `VmHWM` (`/proc/PID/status`, the peak that `ru_maxrss`
reports) of the process and its descendants (the one `annc.supervisor` watches),
read every `POLL_S` until they end, so that checkouts without a memory report compare
alike. Outputs over `--gather-limit`
(default 1 MB: the field) are written per process. Each run's outputs are checked
against the first run's. `--before PATH` names another checkout (e.g. made with
`git worktree add` or `git archive`) to run the same way. The simulated devices share
this machine's cores: the times are not a speed-up; memory and correctness are the
point. Writes `benchmarks/results/shard_memory.md` and `.json`.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

POLL_S = 0.05

LAYOUTS = ((1, 8), (2, 4))
"""(processes, devices per process): 8 devices in all."""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def _peak_kib(pid: int) -> int:
    """The largest `VmHWM` now among the process and its descendants, in KiB."""
    peak = 0
    for member in [pid, *_descendants(pid)]:
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [d for c in children for d in (int(c), *_descendants(int(c)))]


def _program(folder: Path) -> Path:
    """heat.ann with its field in f64."""
    text = (ROOT / "examples" / "heat.ann").read_text().replace("f32", "f64")
    path = folder / "heat64.ann"
    path.write_text(text)
    return path


def run(tree: Path, processes: int, devices: int, n: int, steps: int, limit: int,
        folder: Path) -> dict[str, Any]:
    """One distributed run of `tree`'s annc: each process's peak memory, the wall time,
    the outputs."""
    port = _port()
    out = folder / f"out-{tree.name}-{processes}.npz"
    running = []
    began = time.perf_counter()
    for index in range(processes):
        home = folder / f"home-{tree.name}-{processes}-{index}"  # nothing kept from before
        home.mkdir()
        env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices), "JAX_PLATFORMS": "cpu",
               "ANNC_HOME": str(home), "ANNC_NO_RECORD": "1",
               "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")])}
        running.append(subprocess.Popen(
            [sys.executable, "-m", "annc", "run", str(_program(folder)), "-D", f"N={n}",
             "-D", f"STEPS={steps}", "--distributed", "--coordinator", f"localhost:{port}",
             "--processes", str(processes), "--process-id", str(index), "--timeout", "300",
             "--shard-regions", "--save", str(out), "--gather-limit", str(limit)],
            stdout=subprocess.DEVNULL, stderr=(folder / f"{home.name}.stderr").open("w"), env=env,
            cwd=tree))  # `-m` puts the working folder first on the path
    peaks = [0] * processes
    while any(process.poll() is None for process in running):
        peaks = [max(peak, _peak_kib(process.pid)) for peak, process in zip(
            peaks, running, strict=True)]
        time.sleep(POLL_S)
    seconds = time.perf_counter() - began
    for index, process in enumerate(running):
        error = (folder / f"home-{tree.name}-{processes}-{index}.stderr").read_text()
        if process.returncode != 0:
            raise SystemExit(f"{tree}: process failed: {error[-2000:]}")
    peaks = [peak * 1024 for peak in peaks]
    return {"peaks": peaks, "seconds": seconds, "outputs": _outputs(out)}


def _outputs(out: Path) -> dict[str, np.ndarray]:
    """The outputs, whole or from their parts."""
    if out.exists():
        return dict(np.load(out))
    import json

    index = json.loads(out.with_name(out.name.removesuffix(".npz") + ".index.json").read_text())
    found = {}
    for name, entry in index["outputs"].items():
        parts = [np.load(out.with_name(part["file"]))[name] for part in entry["parts"]]
        found[name] = parts[0] if entry["shape"] == [] else np.concatenate(parts)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--before", type=Path, default=None)
    parser.add_argument("--gather-limit", type=int, default=1 << 20)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                        "shard_memory.md")
    args = parser.parse_args()
    from harness import heading, log, stamp, write

    trees = [("before", args.before)] if args.before else []
    trees.append(("this checkout", ROOT))
    data: dict[str, Any] = {"stamp": stamp("shard_memory.py"), "runs": []}
    reference = None
    field = args.n * args.n * 8
    with tempfile.TemporaryDirectory() as scratch:
        for label, tree in trees:
            for processes, devices in LAYOUTS:
                log(f"{label}: {processes} x {devices} devices")
                done = run(tree, processes, devices, args.n, args.steps, args.gather_limit,
                           Path(scratch))
                outputs = done.pop("outputs")
                reference = reference or outputs
                error = max(float(np.max(np.abs(outputs[k] - v))) /
                            max(float(np.max(np.abs(v))), 1e-30) for k, v in reference.items())
                data["runs"].append({"tree": label, "processes": processes,
                                     "devices": devices, **done, "error": error})
    lines = heading(f"Peak memory per process: heat {args.n}² f64, {args.steps} steps, "
                    "sharded over 8 simulated CPU devices", data["stamp"])
    lines += ["", f"One field is {field / 2**20:.0f} MiB. 2 cores, simulated devices: memory "
              "and correctness, not speed.", "",
              "| checkout | processes × devices | peak memory per process (MiB) | "
              "in fields | wall s | largest relative error against the first run |",
              "|---|---|---|---|---:|---:|"]
    for r in data["runs"]:
        peaks = ", ".join(f"{p / 2**20:.0f}" for p in r["peaks"])
        fields = ", ".join(f"{p / field:.2f}" for p in r["peaks"])
        lines.append(f"| {r['tree']} | {r['processes']} × {r['devices']} | {peaks} | "
                     f"{fields} | {r['seconds']:.1f} | {r['error']:.1e} |")
    write(args.out, lines, data)


if __name__ == "__main__":
    main()
