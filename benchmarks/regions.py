"""annc against whole-program `jax.jit` and idiomatic numpy + scipy on realistic workloads.

    .venv/bin/python benchmarks/regions.py [--workloads heat,wave] [--repeats 3] [--small]
        [--target cpu] [--out PATH]

Six examples at realistic sizes: heat and wave (N=1024, 200 steps), conjugate
gradients and power iteration (2000², 100 iterations), detector smoothing (a 2048²
image, a 15×15 kernel, the example's 3 passes) and the Gram matrix of 4000 snapshots
of 500 points. Each workload's inputs are drawn once from a fixed seed (physically
sensible: a hot spot, a plucked membrane, an SPD stiffness matrix, a Hamiltonian with
a bound state, Poisson pixel counts and a normalised Gaussian kernel, mean-free
snapshots), saved to an `.npz` and given to all three implementations:

1. annc: `annc run EXAMPLE -D ... --inputs IN.npz --save OUT.npz --report json
   --target cpu` in a fresh process, three times one after the other in a fresh
   `$ANNC_HOME`, recording on, as a new user would, and that `--repeats` times (a new
   home each time): medians over the repeats of the first run (nothing kept, builds
   made beside it) and of the third (which starts on what the first two built): the
   report's `execute_s` (execution, start-up and compilation excluded), `startup_s`,
   `compile_s` and the process's wall time. Each run waits for the builds it made
   beside itself before it exits (`ANNC_WAIT_FOR_BUILDS=1`), so that the next run
   finds them whatever the machine's speed.
2. `jax.jit` (`benchmarks/regions_jax.py`): the whole program in one jitted function,
   its loop a `lax.fori_loop`; steady state is the median of `--repeats` calls after
   one compiling call, each ended by `block_until_ready`. Its end-to-end time is the
   wall time of a fresh process that imports JAX, loads the inputs, runs once (tracing
   and compiling), saves the outputs and exits; median over `--repeats` processes.
3. numpy + scipy: `scipy.signal.convolve2d` for the 3×3 stencils,
   `scipy.signal.fftconvolve` for the wide kernel, `@` for the products; median of
   `--repeats` calls after one warm-up call.

Every output of annc and of JAX (in process and in its own process) is compared with
numpy's: the largest relative error ‖x − x_numpy‖ / ‖x_numpy‖ over a workload's outputs
(CG's residual relative to ‖f‖); agreement is an error under 1e-4 (f32) or 1e-8 (f64).
With `--target cpu` (the default) JAX runs on the CPU too (`JAX_PLATFORMS=cpu`).
Writes `benchmarks/results/regions.md` and `.json` (`regions_small.*` with `--small`),
stamped with the machine's fingerprint, the date and the command line. Run it on a
quiet machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from harness import EXAMPLES, RESULTS, ROOT, geomean
from scipy.signal import convolve2d, fftconvolve

JAX_SCRIPT = Path(__file__).resolve().parent / "regions_jax.py"
SEED = 20261125
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-8}
RUNS = 3
"""annc's runs per fresh home: the first (nothing kept) and the third are reported."""
"""The largest relative error against numpy that counts as agreement, by output dtype."""

Arrays = dict[str, np.ndarray]
Params = dict[str, int]


# --- inputs ---------------------------------------------------------------------------

def _bump(n: int, width: float, dtype: type) -> np.ndarray:
    """A Gaussian bump of the given width (in grid points) centred on an n×n grid."""
    x = np.arange(n) - (n - 1) / 2
    return np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * width**2)).astype(dtype)


def heat_inputs(p: Params, rng: np.random.Generator) -> Arrays:
    """A hot spot of width N/8 on a plate with 1% noise; alpha = 0.2."""
    n = p["N"]
    T = _bump(n, n / 8, np.float32) + 0.01 * rng.random((n, n), dtype=np.float32)
    return {"T": T, "alpha": np.array(0.2, np.float32)}


def wave_inputs(p: Params, rng: np.random.Generator) -> Arrays:
    """A membrane plucked off centre (a bump of width N/16), at rest: U_prev = U."""
    n = p["N"]
    x = np.arange(n) - n / 3
    U = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (n / 16) ** 2)).astype(np.float32)
    U += 1e-3 * rng.standard_normal((n, n), dtype=np.float32)
    return {"U": U, "U_prev": U.copy()}


def conjugate_gradients_inputs(p: Params, rng: np.random.Generator) -> Arrays:
    """K = A Aᵀ / N + 0.05 I (SPD, spectrum in [0.05, 4.05], condition number about 80:
    CG is still converging after 100 iterations, ‖r‖/‖f‖ ≈ 1e-10), loads uniform in
    [0, 1)."""
    n = p["N"]
    A = rng.standard_normal((n, n))
    K = A @ A.T / n + 0.05 * np.eye(n)
    return {"K": (K + K.T) / 2, "f": rng.random(n)}


def power_iteration_inputs(p: Params, rng: np.random.Generator) -> Arrays:
    """A disordered Hamiltonian (a GOE matrix, spectrum in [−2, 2]) with a bound state
    of strength 3 (eigenvalue about 3.3, well separated); a random starting vector."""
    n = p["N"]
    B = rng.standard_normal((n, n)) / math.sqrt(n)
    bound = rng.standard_normal(n)
    bound /= np.linalg.norm(bound)
    H = (B + B.T) / math.sqrt(2) + 3.0 * np.outer(bound, bound)
    v = rng.random(n)
    return {"H": (H + H.T) / 2, "v": v / np.linalg.norm(v)}


def detector_smoothing_inputs(p: Params, rng: np.random.Generator) -> Arrays:
    """Poisson pixel counts (a flat background of 2 and a few showers) and a normalised
    Gaussian point-spread kernel of width P/5."""
    n, k = p["N"], p["P"]
    rate = np.full((n, n), 2.0)
    for _ in range(8):
        i, j = rng.integers(0, n, 2)
        x, y = np.arange(n) - i, np.arange(n) - j
        rate += 50 * np.exp(-(x[:, None] ** 2 + y[None, :] ** 2) / (2 * (n / 100 + 1) ** 2))
    image = rng.poisson(rate).astype(np.float32)
    W = _bump(k, k / 5, np.float64)
    return {"image": image, "W": (W / W.sum()).astype(np.float32)}


def gram_matrix_inputs(p: Params, rng: np.random.Generator) -> Arrays:
    """S snapshots of a field of P points: a few smooth modes with random amplitudes
    plus noise, the mean field removed."""
    s, points = p["S"], p["P"]
    x = np.linspace(0, 1, points)
    modes = np.stack([np.sin(np.pi * (m + 1) * x) for m in range(8)])
    amplitudes = rng.standard_normal((s, 8)) / (1 + np.arange(8))
    X = amplitudes @ modes + 0.05 * rng.standard_normal((s, points))
    return {"X": X - X.mean(axis=0)}


# --- numpy + scipy --------------------------------------------------------------------

def heat_numpy(p: Params) -> Callable[[Arrays], Arrays]:
    def run(x: Arrays) -> Arrays:
        T = x["T"]
        L = LAPLACIAN.astype(T.dtype)
        c = np.float32(0.2) * x["alpha"]
        for _ in range(p["STEPS"]):
            T = T + c * convolve2d(T, L, mode="same")
        return {"T": T, "E": np.sum(T * T)}
    return run


def wave_numpy(p: Params) -> Callable[[Arrays], Arrays]:
    def run(x: Arrays) -> Arrays:
        U, U_prev = x["U"], x["U_prev"]
        L = LAPLACIAN.astype(U.dtype)
        for _ in range(p["STEPS"]):
            U, U_prev = 2 * U - U_prev + np.float32(0.25) * convolve2d(U, L, mode="same"), U
        return {"U": U, "energy": np.sum(U * U)}
    return run


def conjugate_gradients_numpy(p: Params) -> Callable[[Arrays], Arrays]:
    def run(x: Arrays) -> Arrays:
        K, f = x["K"], x["f"]
        u = np.zeros_like(f)
        r = f - K @ u
        d = r
        rr = r @ r
        for _ in range(p["ITERATIONS"]):
            Kd = K @ d
            alpha = rr / (d @ Kd)
            u = u + alpha * d
            r = r - alpha * Kd
            rr_next = r @ r
            d = r + (rr_next / rr) * d
            rr = rr_next
        return {"u": u, "residual": np.sqrt(rr)}
    return run


def power_iteration_numpy(p: Params) -> Callable[[Arrays], Arrays]:
    def run(x: Arrays) -> Arrays:
        H, v = x["H"], x["v"]
        for _ in range(p["ITERATIONS"]):
            w = H @ v
            v = w / np.linalg.norm(w)
        return {"v": v, "energy": v @ (H @ v)}
    return run


def detector_smoothing_numpy(p: Params) -> Callable[[Arrays], Arrays]:
    def run(x: Arrays) -> Arrays:
        image, W = x["image"], x["W"]
        smooth = image
        for _ in range(p["PASSES"]):
            smooth = fftconvolve(smooth, W, mode="same")
        return {"smooth": smooth, "signal": np.sum(smooth),
                "contrast": np.linalg.norm(smooth - image)}
    return run


def gram_matrix_numpy(p: Params) -> Callable[[Arrays], Arrays]:
    def run(x: Arrays) -> Arrays:
        X = x["X"]
        return {"G": X @ X.T, "energy": np.sum(X * X)}
    return run


@dataclass(frozen=True)
class Workload:
    name: str
    params: Params
    small: Params
    inputs: Callable[[Params, np.random.Generator], Arrays]
    numpy: Callable[[Params], Callable[[Arrays], Arrays]]
    scale_by: tuple[tuple[str, str], ...] = ()
    """(output, input): that output's error is taken relative to the input's norm, not
    its own (CG's recurrence residual agrees to ~1e-11 of ‖f‖, but only to a few
    percent of itself once it is that small)."""

    def scales(self, inputs: Arrays) -> dict[str, float]:
        return {out: float(np.linalg.norm(inputs[name])) for out, name in self.scale_by}

    @property
    def example(self) -> Path:
        return EXAMPLES / f"{self.name}.ann"


WORKLOADS = {w.name: w for w in [
    Workload("heat", {"N": 1024, "STEPS": 200}, {"N": 64, "STEPS": 5},
             heat_inputs, heat_numpy),
    Workload("wave", {"N": 1024, "STEPS": 200}, {"N": 64, "STEPS": 5},
             wave_inputs, wave_numpy),
    Workload("conjugate_gradients", {"N": 2000, "ITERATIONS": 100},
             {"N": 64, "ITERATIONS": 10}, conjugate_gradients_inputs, conjugate_gradients_numpy,
             scale_by=(("residual", "f"),)),
    Workload("power_iteration", {"N": 2000, "ITERATIONS": 100}, {"N": 64, "ITERATIONS": 10},
             power_iteration_inputs, power_iteration_numpy),
    Workload("detector_smoothing", {"N": 2048, "P": 15, "PASSES": 3},
             {"N": 64, "P": 5, "PASSES": 2}, detector_smoothing_inputs,
             detector_smoothing_numpy),
    Workload("gram_matrix", {"S": 4000, "P": 500}, {"S": 64, "P": 32},
             gram_matrix_inputs, gram_matrix_numpy),
]}


# --- running --------------------------------------------------------------------------

def environment(target: str, home: Path | None = None) -> dict[str, str]:
    """The subprocesses' environment: this checkout importable, JAX on the CPU where
    annc is confined to it, annc's home where given (runs wait for their builds)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if target == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    if home is not None:
        env.update(ANNC_HOME=str(home), ANNC_WAIT_FOR_BUILDS="1")
        env.pop("ANNC_NO_RECORD", None)
    return env


def load(path: Path) -> Arrays:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def relative_error(outputs: Arrays, reference: Arrays,
                   scales: dict[str, float] | None = None) -> float:
    """The largest ‖x − x_ref‖ / ‖x_ref‖ over the outputs (all of them must be there),
    or ‖x − x_ref‖ / scale for the outputs given a scale."""
    errors = []
    for name, ref in reference.items():
        ref64 = np.asarray(ref, np.float64)
        diff = np.linalg.norm(np.asarray(outputs[name], np.float64) - ref64)
        scale = (scales or {}).get(name, np.linalg.norm(ref64))
        errors.append(float(diff / scale) if scale else float(diff))
    return max(errors)


def tolerance(reference: Arrays) -> float:
    return max(TOLERANCE.get(np.asarray(v).dtype, 1e-4) for v in reference.values())


def run_annc(workload: Workload, params: Params, inputs: Path, outputs: Path,
             target: str, ops: list[dict] | None = None, home: Path | None = None
             ) -> dict[str, float]:
    """One `annc run` in a fresh process: its report's times and the process's wall time
    (and its ops, each with its variant, device and time, appended to `ops`)."""
    defines = [arg for name, value in params.items() for arg in ("-D", f"{name}={value}")]
    command = [sys.executable, "-m", "annc", "run", str(workload.example), *defines,
               "--inputs", str(inputs), "--save", str(outputs), "--report", "json",
               "--target", target]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True,
                          env=environment(target, home), cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if ops is not None:
        ops += [{key: op[key] for key in ("kernel", "variant", "device", "executions",
                                          "measured_s")} for op in report["ops"]]
        ops += [{"kernel": region["kind"], "variant": region["variant"],
                 "device": region["device"], "executions": region["executions"],
                 "measured_s": region["measured_s"], "ops": region["kernels"]}
                for region in report.get("regions", [])]
    return {"execute_s": report["execute_s"], "startup_s": report["startup_s"],
            "compile_s": report["compile_s"], "process_s": wall,
            "tiers": len(report.get("tiers", [])),
            "switched": sum(1 for t in report.get("tiers", []) if t["switched"])}


def run_jax_process(workload: Workload, params: Params, inputs: Path, outputs: Path,
                    target: str) -> dict[str, float]:
    """One end-to-end JAX process: its wall time and its own phase times."""
    command = [sys.executable, str(JAX_SCRIPT), workload.name, str(inputs), str(outputs),
               *(f"{name}={value}" for name, value in params.items())]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment(target),
                          cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "process_s": wall}


def steady(function: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    """Seconds of `repeats` calls after one warm-up call, and the warm-up's result."""
    result = function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times, result


def summary(values: list[float]) -> dict[str, float | list[float]]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}


def measure(workload: Workload, params: Params, repeats: int, target: str,
            folder: Path, log: Callable[[str], None]) -> dict:
    """Every implementation of one workload: times and agreement with numpy."""
    import jax
    import regions_jax

    inputs = workload.inputs(params, np.random.default_rng(SEED))
    inputs_path = folder / f"{workload.name}_inputs.npz"
    np.savez(inputs_path, **inputs)

    numpy_run = workload.numpy(params)
    numpy_times, reference = steady(lambda: numpy_run(inputs), repeats)
    assert isinstance(reference, dict)
    log(f"  numpy {statistics.median(numpy_times):.4g} s")

    jitted = regions_jax.BUILDERS[workload.name](params)
    on_device = regions_jax.on_device(inputs)
    jax_times, jax_out = steady(lambda: jax.block_until_ready(jitted(on_device)), repeats)
    assert isinstance(jax_out, dict)
    log(f"  jax.jit {statistics.median(jax_times):.4g} s")

    sequences: list[list[dict[str, float]]] = []
    jax_processes, annc_ops = [], []
    annc_out = folder / f"{workload.name}_annc.npz"
    jax_process_out = folder / f"{workload.name}_jax.npz"
    for sequence in range(repeats):  # a new user each time: a fresh home, three runs
        home = folder / f"home_{workload.name}_{sequence}"
        runs = []
        for _ in range(RUNS):
            annc_ops.clear()
            runs.append(run_annc(workload, params, inputs_path, annc_out, target, annc_ops,
                                 home))
        sequences.append(runs)
        jax_processes.append(run_jax_process(workload, params, inputs_path,
                                             jax_process_out, target))
        log(f"  annc execute, runs 1..{RUNS}: "
            + ", ".join(f"{r['execute_s']:.4g}" for r in runs) + " s")

    scales = workload.scales(inputs)
    errors = {"annc": relative_error(load(annc_out), reference, scales),
              "jax.jit": relative_error({k: np.asarray(v) for k, v in jax_out.items()},
                                        reference, scales),
              "jax process": relative_error(load(jax_process_out), reference, scales)}
    allowed = tolerance(reference)
    log("  relative error against numpy: "
        + ", ".join(f"{k} {v:.2g}" for k, v in errors.items())
        + ("" if max(errors.values()) <= allowed else f"  (over {allowed:g}!)"))
    firsts, thirds = [runs[0] for runs in sequences], [runs[2] for runs in sequences]
    return {
        "workload": workload.name, "params": params,
        "annc": {key: summary([r[key] for r in thirds]) for key in
                 ("execute_s", "startup_s", "compile_s", "process_s")},
        "annc_first": {key: summary([r[key] for r in firsts]) for key in
                       ("execute_s", "startup_s", "compile_s", "process_s")},
        "annc_sequences": sequences, "annc_ops": annc_ops,
        "jax_jit_s": summary(jax_times),
        "jax_process": {key: summary([r[key] for r in jax_processes])
                        for key in jax_processes[0]},
        "numpy_s": summary(numpy_times),
        "relative_errors": errors, "tolerance": allowed,
        "agree": max(errors.values()) <= allowed,
    }


def agreement(name: str, target: str = "cpu") -> dict[str, float]:
    """The relative errors of annc and JAX against numpy on the small sizes, untimed."""
    import regions_jax

    workload = WORKLOADS[name]
    params = workload.small
    inputs = workload.inputs(params, np.random.default_rng(SEED))
    reference = workload.numpy(params)(inputs)
    jax_out = regions_jax.BUILDERS[name](params)(regions_jax.on_device(inputs))
    with tempfile.TemporaryDirectory() as folder:
        inputs_path, out = Path(folder) / "in.npz", Path(folder) / "out.npz"
        np.savez(inputs_path, **inputs)
        run_annc(workload, params, inputs_path, out, target)
        annc_out = load(out)
    scales = workload.scales(inputs)
    return {"annc": relative_error(annc_out, reference, scales),
            "jax.jit": relative_error({k: np.asarray(v) for k, v in jax_out.items()},
                                      reference, scales),
            "tolerance": tolerance(reference)}


# --- report ---------------------------------------------------------------------------

def _seconds(s: dict) -> str:
    """A median with its spread: ±half the range, as a percentage of the median."""
    median = s["median"]
    spread = 100 * (s["max"] - s["min"]) / 2 / median if median else 0.0
    return f"{median:.4g} ±{spread:.0f}%"


def table(cases: list[dict]) -> list[str]:
    lines = ["| workload | sizes | annc 1st run s | annc 3rd run s (spread) "
             "| jax.jit s | numpy s | jit/annc 1st | jit/annc 3rd | numpy/annc 3rd "
             "| annc 3rd process s | jax process s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    columns: dict[str, list[float]] = {}
    for case in cases:
        first = case["annc_first"]["execute_s"]["median"]
        third = case["annc"]["execute_s"]["median"]
        jit, numpy_s = case["jax_jit_s"]["median"], case["numpy_s"]["median"]
        values = {"first": first, "third": third, "jit": jit, "numpy": numpy_s,
                  "jit/first": jit / first, "jit/third": jit / third,
                  "numpy/third": numpy_s / third,
                  "annc process": case["annc"]["process_s"]["median"],
                  "jax process": case["jax_process"]["process_s"]["median"]}
        for key, value in values.items():
            columns.setdefault(key, []).append(value)
        sizes = ", ".join(f"{k}={v}" for k, v in case["params"].items())
        lines.append(
            f"| {case['workload']} | {sizes} | {_seconds(case['annc_first']['execute_s'])} | "
            f"{_seconds(case['annc']['execute_s'])} | "
            f"{_seconds(case['jax_jit_s'])} | {_seconds(case['numpy_s'])} | "
            f"{values['jit/first']:.2f} | {values['jit/third']:.2f} | "
            f"{values['numpy/third']:.2f} | "
            f"{_seconds(case['annc']['process_s'])} | "
            f"{_seconds(case['jax_process']['process_s'])} |")
    if cases:
        g = {key: geomean(values) for key, values in columns.items()}
        lines.append(f"| **geomean** | | {g['first']:.4g} | {g['third']:.4g} "
                     f"| {g['jit']:.4g} | {g['numpy']:.4g} | **{g['jit/first']:.2f}** | "
                     f"**{g['jit/third']:.2f}** | **{g['numpy/third']:.2f}** | "
                     f"{g['annc process']:.4g} | {g['jax process']:.4g} |")
    return lines


def details(cases: list[dict]) -> list[str]:
    lines = ["| workload | annc startup_s (3rd) | annc compile_s (3rd) | annc 1st process s "
             "| jax import s | jax first call s (trace + compile + run) "
             "| max rel. error vs numpy: annc / jax.jit / jax process |",
             "|---|---|---|---|---|---|---|"]
    for case in cases:
        e = case["relative_errors"]
        flag = "" if case["agree"] else f" **over {case['tolerance']:g}**"
        lines.append(
            f"| {case['workload']} | {_seconds(case['annc']['startup_s'])} | "
            f"{_seconds(case['annc']['compile_s'])} | "
            f"{_seconds(case['annc_first']['process_s'])} | "
            f"{_seconds(case['jax_process']['import_s'])} | "
            f"{_seconds(case['jax_process']['first_call_s'])} | "
            f"{e['annc']:.1e} / {e['jax.jit']:.1e} / {e['jax process']:.1e}{flag} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", help="only these workloads (comma-separated): "
                        + ", ".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="tiny sizes, a smoke test")
    parser.add_argument("--target", default="cpu",
                        help="annc's --target (default cpu; JAX then runs on the CPU too)")
    parser.add_argument("--out", type=Path,
                        help="the Markdown file (default benchmarks/results/regions.md, "
                        "regions_small.md with --small); the JSON goes beside it")
    args = parser.parse_args()
    names = args.workloads.split(",") if args.workloads else list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    if args.target == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    from annc.hardware.devices.fingerprint import fingerprint

    out = args.out or RESULTS / ("regions_small.md" if args.small else "regions.md")
    command = shlex.join(["python", "benchmarks/regions.py", *sys.argv[1:]])

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    cases = []
    with tempfile.TemporaryDirectory(prefix="annc_regions_") as folder:
        for name in names:
            workload = WORKLOADS[name]
            params = workload.small if args.small else workload.params
            log(f"{name} {params}")
            cases.append(measure(workload, params, args.repeats, args.target, Path(folder),
                                 log))
    machine = fingerprint()
    date = datetime.datetime.now().isoformat(timespec="minutes")
    jax_devices = ", ".join(str(d) for d in jax.devices())
    lines = [
        "# annc against whole-program jax.jit and numpy + scipy", "",
        f"Machine `{machine.id}` ({machine.cpu_model}, {machine.cores} cores, BLAS "
        f"{machine.blas}); {date}. Command: `{command}`. annc `--target {args.target}`; "
        f"JAX on {jax_devices}. Median of {args.repeats} runs, ± half their range.", "",
        "annc: the report's `execute_s` (start-up and compilation excluded), each run in a "
        "fresh `annc run` process, the runs of a workload one after the other in a fresh "
        "`$ANNC_HOME`: the first (nothing kept; builds made beside it), the third, and the "
        "median of the third and later (the JSON lists every run and its ops' variants). "
        "jax.jit: one jitted function per program "
        "(loop in `lax.fori_loop`), steady state after a compiling call. numpy: "
        "`scipy.signal.convolve2d` for the 3×3 stencils, `fftconvolve` for the 15×15 "
        "kernel, `@` for products. Speed-ups above 1 mean annc is faster. Process times "
        "are end-to-end: interpreter start, imports, loading the inputs, compiling, "
        "running, saving the outputs.", "",
        *table(cases), "",
        *details(cases), "",
        "Each JAX process compiles from scratch; annc's later runs load what its earlier "
        "ones built (its build cache and XLA's, in the workload's own `$ANNC_HOME`).", "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps(
        {"machine": machine.as_dict(), "date": date, "command": command,
         "target": args.target, "jax_devices": jax_devices, "repeats": args.repeats,
         "seed": SEED, "cases": cases}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
