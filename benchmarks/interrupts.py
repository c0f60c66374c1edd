"""How fast annc answers Ctrl-C inside every kind of step that can run long.

    python benchmarks/interrupts.py [--repeats 3] [--only NAME,...] [--out PATH]

Each case starts `python -m annc ...` (this checkout, a fresh `$ANNC_HOME` for every
run, in a process group of its own, as a terminal runs its foreground job), waits until
annc, or a process it started, enters the case's step, waits `delay` seconds more so
that the step is well under way, then sends SIGINT to the whole process group, as a
terminal's Ctrl-C does, and times until annc has exited. Reported per case: the median
seconds from the signal to the exit (and the least and most), the exit statuses, whether
any standard error showed a traceback, and the processes of the group left behind.

How the benchmark knows where annc is: it puts a `sitecustomize` module first on the
annc processes' path (helpers inherit it), which wraps the case's function, when its
module is imported, to append one line to a file on entry (the process id, the
function, the time on the monotonic clock, which every process of the machine shares).
annc's own code is unchanged. The steps:

- compiled loops: heat's loop (256², 10⁹ steps) built first, built beside the run
  (after its switch), loaded from the cache; the same loop run op by op; a compiled
  loop inside a loop run op by op; a scalar loop of 10¹² trips;
- one long kernel: a 4000² f64 product in a loop, each product a few seconds;
- builds in the foreground (`--builds first`): Adams2019's auto-schedule of a
  convolution, Halide's ahead-of-time compile, its JIT compile (no C compiler), the C
  compiler and linker (a `$CC` that takes 30 s), XLA's compile of a loop;
- `annc build` (its helper compiling), `annc tune` and `annc calibrate` (their measuring
  worker inside Adams2019's auto-schedule).

Writes `benchmarks/results/interrupts.md` and `.json`. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import RESULTS, ROOT, environment, heading, log, stamp, write

HEAT = str(ROOT / "examples" / "heat.ann")

PROGRAMS = {
    "conv.ann": "param N = 1024\ninput A : f32[N, N]\ninput K : f32[5, 5]\n"
                "B = conv2d(A, K)\noutput B\n",
    "scalar.ann": "input x : f32\nrepeat 1000000000000 {\n  x = x * 0.5 + 1\n}\noutput x\n",
    "nested.ann": "param N = 256\ninput T : f32[N, N]\ninput alpha : f32\n"
                  "const L : f32[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]\n"
                  "repeat 1000000 {\n  repeat 1000 {\n    T = T + 0.2 * alpha * conv2d(T, L)\n"
                  "  }\n  T = T * 0.5\n}\noutput T\n",
    "matmul.ann": "param N = 4000\ninput A : f64[N, N]\ninput B : f64[N, N]\n"
                  "repeat 100 {\n  A = matmul(A, B) * 0.0001\n}\noutput A\n",
    "slow_cc": "#!/bin/sh\nsleep 30\nexec cc \"$@\"\n",
}
"""The programs (and the slow C compiler) the cases run, written to a scratch folder."""

SITECUSTOMIZE = '''
"""Marks the entry of the functions named in $ANNC_BENCH_MARK (module:qualname,...) by
appending "pid function monotonic-time its-string-arguments" to the file
$ANNC_BENCH_MARKS."""
import functools, importlib.abc, os, sys, time

_FILE = os.environ.get("ANNC_BENCH_MARKS")
_WANTED = {}
for _entry in filter(None, os.environ.get("ANNC_BENCH_MARK", "").split(",")):
    _module, _, _name = _entry.partition(":")
    _WANTED.setdefault(_module, []).append(_name)


def _mark(name, function):
    @functools.wraps(function)
    def marked(*args, **kwargs):
        words = " ".join(a for a in args if isinstance(a, str) and a.isprintable())
        line = f"{os.getpid()} {name} {time.monotonic()} {words}\\n".encode()
        descriptor = os.open(_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(descriptor, line)
        os.close(descriptor)
        return function(*args, **kwargs)
    return marked


def _wrap(module):
    for name in _WANTED.get(module.__name__, ()):
        owner, _, attribute = name.rpartition(".")
        holder = module
        for part in filter(None, owner.split(".")):
            holder = getattr(holder, part)
        setattr(holder, attribute, _mark(f"{module.__name__}:{name}",
                                         getattr(holder, attribute)))


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in _WANTED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                execute = spec.loader.exec_module

                def exec_module(module, execute=execute):
                    execute(module)
                    _wrap(module)

                spec.loader.exec_module = exec_module
                return spec
        return None


if _FILE and _WANTED:
    sys.meta_path.insert(0, _Finder())
'''


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    argv: tuple[str, ...]
    """annc's arguments; `{dir}` is the scratch folder of the programs."""
    mark: str
    """`module:qualname` of the function whose entry starts the clock."""
    delay_s: float = 1.0
    """Seconds between the entry and the signal."""
    argument: str = ""
    """A string argument the marked call must have (e.g. the auto-scheduler's name)."""
    env: dict[str, str] = field(default_factory=dict)
    setup: tuple[str, ...] = ()
    """annc's arguments of a run made first in the same home, not interrupted."""


LOOPS = "annc.hardware.execution.loops:run_chunks"
AUTOSCHEDULE = "annc.hardware.variants.halide.pipeline:autoschedule"
HEAT_HUGE = (HEAT, "-D", "N=256", "-D", "STEPS=1000000000")

CASES = (
    Case("loop first", "heat's compiled loop, built first", ("run", *HEAT_HUGE, "--builds",
                                                             "first"), LOOPS),
    Case("loop beside", "heat's compiled loop, after its switch from the ops",
         ("run", *HEAT_HUGE), LOOPS),
    Case("loop cached", "heat's compiled loop, loaded from the caches", ("run", *HEAT_HUGE),
         LOOPS, setup=("run", HEAT, "-D", "N=256", "--builds", "first")),
    Case("loop ops", "heat's loop run op by op (--variant conv2d=shifted)",
         ("run", *HEAT_HUGE, "--variant", "conv2d=shifted"),
         "annc.hardware.execution.steps:run_trip"),
    Case("loop nested", "a compiled loop inside a loop run op by op",
         ("run", "{dir}/nested.ann", "--builds", "first"), LOOPS),
    Case("loop 10^12", "a scalar loop of 10^12 trips", ("run", "{dir}/scalar.ann"), LOOPS),
    Case("long kernel", "a 4000² f64 product, each a few seconds",
         ("run", "{dir}/matmul.ann", "--variant", "matmul=numpy"),
         "annc.hardware.execution.plan:ExecutablePlan.run", delay_s=1.5),
    Case("adams2019", "Adams2019 auto-scheduling a convolution (--builds first)",
         ("run", "{dir}/conv.ann", "--variant", "conv2d=halide.auto.adams2019", "--builds",
          "first", "--measure", "never"), AUTOSCHEDULE, delay_s=0.5, argument="adams2019"),
    Case("halide aot", "Halide compiling a convolution ahead of time (--builds first)",
         ("run", "{dir}/conv.ann", "--variant", "conv2d=halide.direct", "--builds", "first"),
         "annc.hardware.variants.halide.aot:shared_object", delay_s=0.05),
    Case("halide jit", "Halide JIT-compiling a convolution (no C compiler)",
         ("run", "{dir}/conv.ann", "--variant", "conv2d=halide.direct", "--builds", "first"),
         "annc.hardware.variants.halide.cpu:build_halide", delay_s=0.05,
         env={"CC": "/nonexistent/cc"}),
    Case("linker", "the C compiler linking a Halide kernel (a $CC that takes 30 s)",
         ("run", "{dir}/conv.ann", "--variant", "conv2d=halide.direct", "--builds", "first"),
         "annc.hardware.variants.halide.aot:_link", delay_s=0.5, env={"CC": "{dir}/slow_cc"}),
    Case("xla", "XLA compiling heat's loop (--builds first)",
         ("run", *HEAT_HUGE, "--builds", "first"),
         "annc.hardware.variants.regions.jax_region:_compile", delay_s=0.05),
    Case("annc build", "annc build, its helper compiling heat's loop",
         ("build", *HEAT_HUGE), "annc.hardware.variants.regions.jax_region:_compile",
         delay_s=0.05),
    Case("annc tune", "annc tune, its worker inside Adams2019",
         ("tune", "{dir}/conv.ann", "--variants", "halide.auto.adams2019", "--no-record"),
         AUTOSCHEDULE, delay_s=0.5, argument="adams2019"),
    Case("annc calibrate", "annc calibrate, its worker inside Adams2019",
         ("calibrate", "--kernels", "conv2d", "--variants", "halide.auto.adams2019", "--db",
          "{home}/calibration.db"), AUTOSCHEDULE, delay_s=0.5, argument="adams2019"),
)

WAIT_FOR_STEP_S = 600.0
ANSWER_LIMIT_S = 60.0


@dataclass
class Answer:
    """How an interrupted annc process ended."""

    answered_s: float | None
    """Seconds from the first signal to its exit; None where it was still running after
    the limit (then killed)."""
    exit: int | None
    stderr: str
    left: int
    """Processes of its group still there `LINGER_S` after it exited (killed then)."""


def write_site(folder: Path) -> Path:
    """A folder holding the marking `sitecustomize` (to put first on the path)."""
    site = folder / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return site


def marking(env: dict[str, str], site: Path, marks: Path, mark: str) -> dict[str, str]:
    """The environment with `site` first on the path, marking the entry of `mark`
    (module:qualname) into the file `marks`."""
    path = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    return {**env, "PYTHONPATH": path, "ANNC_BENCH_MARK": mark,
            "ANNC_BENCH_MARKS": str(marks)}


def start_annc(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`python -m annc ARGV` in a process group of its own, as a terminal runs its
    foreground job; standard error kept.

    It gets Ctrl-C's default action even where this process ignores SIGINT (a shell
    starts background jobs so, and exec keeps an ignored signal ignored): a signal this
    process catches is reset to its default by exec. (A `preexec_fn` would do it in the
    child, but forking a process that runs JAX's threads can deadlock.)"""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([sys.executable, "-m", "annc", *argv], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def entered(marks: Path, argument: str = "") -> float | None:
    """When the marked function was first entered (with `argument` among its string
    arguments), on the monotonic clock; None before."""
    try:
        lines = marks.read_text().splitlines()
    except FileNotFoundError:
        return None
    times = [float(fields[2]) for fields in map(str.split, lines)
             if not argument or argument in fields[3:]]
    return times[0] if times else None


def wait_until_entered(process: subprocess.Popen[bytes], marks: Path, argument: str = "",
                       limit_s: float = WAIT_FOR_STEP_S) -> float:
    """When the process (or one it started) entered the marked function; RuntimeError
    where it ended first or took longer than `limit_s`."""
    began = time.monotonic()
    while (at := entered(marks, argument)) is None:
        if process.poll() is not None or time.monotonic() - began > limit_s:
            process.kill()
            _, error = process.communicate()
            raise RuntimeError(f"never entered the marked step (exit {process.returncode}): "
                               f"{error.decode(errors='replace')[-600:]}")
        time.sleep(0.01)
    return at


def interrupt(process: subprocess.Popen[bytes], at: float, presses: int = 1,
              limit_s: float = ANSWER_LIMIT_S) -> Answer:
    """Sends SIGINT to the process's group at `at` (monotonic clock), `presses` times
    0.05 s apart, as Ctrl-C pressed that often; waits for its exit."""
    time.sleep(max(0.0, at - time.monotonic()))
    sent = time.monotonic()
    for press in range(presses):
        if press:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
    try:
        _, error = process.communicate(timeout=limit_s)
        answered: float | None = time.monotonic() - sent
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, error = process.communicate()
        answered = None
    left = _lingering(process.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return Answer(answered, process.returncode, error.decode(errors="replace"), len(left))


LINGER_S = 2.0
"""How long a process of the group may take to end after annc has (multiprocessing's
resource tracker ends when annc's end closes its pipe, a moment later)."""


def _lingering(group: int) -> list[int]:
    """The processes of the group still there `LINGER_S` after annc ended."""
    until = time.monotonic() + LINGER_S
    while (members := group_members(group)) and time.monotonic() < until:
        time.sleep(0.05)
    return members


def group_members(group: int) -> list[int]:
    """The processes still in this process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _substitute(values: tuple[str, ...] | dict[str, str], scratch: Path, home: Path):
    def fill(text: str) -> str:
        return text.replace("{dir}", str(scratch)).replace("{home}", str(home))

    if isinstance(values, dict):
        return {key: fill(value) for key, value in values.items()}
    return [fill(value) for value in values]


def one_run(case: Case, scratch: Path) -> dict:
    """One interrupted run of the case, in a fresh home."""
    with tempfile.TemporaryDirectory(prefix="annc-interrupt-") as folder:
        home = Path(folder)
        env = environment(home)
        env.pop("ANNC_WAIT_FOR_BUILDS", None)
        env.update(_substitute(case.env, scratch, home))
        if case.setup:
            subprocess.run([sys.executable, "-m", "annc", *_substitute(case.setup, scratch,
                                                                       home)],
                           env=env, cwd=ROOT, capture_output=True, timeout=600, check=True)
        marks = home / "marks"
        process = start_annc(_substitute(case.argv, scratch, home),
                             marking(env, scratch / "site", marks, case.mark))
        try:
            at = wait_until_entered(process, marks, case.argument)
        except RuntimeError as error:
            return {"error": str(error)}
        answer = interrupt(process, at + case.delay_s)
        lines = answer.stderr.strip().splitlines()
        return {"answered_s": answer.answered_s, "exit": answer.exit,
                "traceback": "Traceback" in answer.stderr, "left": answer.left,
                "last_line": lines[-1] if lines else ""}


def run_case(case: Case, repeats: int, scratch: Path) -> dict:
    runs = [one_run(case, scratch) for _ in range(repeats)]
    answered = [r["answered_s"] for r in runs if r.get("answered_s") is not None]
    row = {"case": case.name, "what": case.what, "runs": runs,
           "median_s": statistics.median(answered) if answered else None,
           "min_s": min(answered, default=None), "max_s": max(answered, default=None),
           "unanswered": sum(1 for r in runs if "answered_s" in r and r["answered_s"] is None),
           "errors": [r["error"] for r in runs if "error" in r]}
    log(f"  {case.name}: {_cell(row)}  exits {[r.get('exit') for r in runs]}")
    return row


def _cell(row: dict) -> str:
    if row["median_s"] is None:
        return "no answer" if not row["errors"] else "did not reach the step"
    text = f"{row['median_s']:.2f} s ({row['min_s']:.2f}–{row['max_s']:.2f})"
    return text + (f", {row['unanswered']} no answer in {ANSWER_LIMIT_S:.0f} s"
                   if row["unanswered"] else "")


def _scratch(folder: Path) -> Path:
    for name, text in PROGRAMS.items():
        (folder / name).write_text(text)
    (folder / "slow_cc").chmod(0o755)
    write_site(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", help="comma-separated case names (default: every case)")
    parser.add_argument("--out", type=Path, default=RESULTS / "interrupts.md")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    cases = [c for c in CASES if wanted is None or c.name in wanted]
    with tempfile.TemporaryDirectory(prefix="annc-interrupt-programs-") as folder:
        scratch = _scratch(Path(folder))
        rows = [run_case(case, args.repeats, scratch) for case in cases]
    stamped = stamp("interrupts.py")
    lines = [*heading("Ctrl-C inside every kind of long step", stamped),
             f"Seconds from SIGINT (to the process group, the case's delay after the step "
             f"began) to annc's exit; medians of {args.repeats} fresh homes (least–most).",
             "", "| case | step | answered in | exit statuses | traceback | left behind |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        exits = sorted({str(r.get("exit")) for r in row["runs"]})
        lines.append(f"| {row['case']} | {row['what']} | {_cell(row)} | {', '.join(exits)} "
                     f"| {'yes' if any(r.get('traceback') for r in row['runs']) else 'no'} "
                     f"| {sum(r.get('left', 0) for r in row['runs'])} |")
    write(args.out, lines, {**stamped, "cases": rows})


if __name__ == "__main__":
    main()
