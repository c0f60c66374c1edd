"""The helper process that builds beside a run: `python -m hardware.execution.build_worker`.

It reads build jobs (`hardware.execution.builds.BuildJob`, one JSON object a line,
each with an `id`) on its standard input and builds them one after the other, into
the persistent caches, answering one JSON line per job on its standard output:

    {"id": 3, "status": "ready", "seconds": 0.41, "message": ""}

`status` is `ready` (built, or found built, and kept: the run may load it), `not kept`
(built, but nothing could be kept: no writable `$ANNC_HOME`, no C compiler) or
`failed` (the build raised; `message` says what). Why a process and not a thread:
Halide's compiler holds Python's global lock for the whole compile (0.6 s measured
for one convolution, during which no other Python thread ran), so a build in a
thread would stop the run it is meant to run beside.

Builds on one machine take turns: each holds an exclusive lock on
`$ANNC_HOME/builds/.build-lock` while it builds, and a job whose build another
process has kept meanwhile is answered at once. When its input ends (the run is
over) the worker finishes the jobs it has read, so that they are kept for the next
run, then exits; it never writes anywhere but the caches, its output, which may
be closed by then, and its scratch folder (`SCRATCH`), which it removes.

A run that waits for a build that searches for a schedule has one made by a worker
too, started with `NOW` (`hardware.execution.foreground`), so that Ctrl-C answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from annc.hardware.devices.home import state_folder

LOCK_FILE = ".build-lock"
"""In `$ANNC_HOME/builds`, held exclusively by the process that builds."""

READY, NOT_KEPT, FAILED = "ready", "not kept", "failed"


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """Holds the machine's build lock; without a writable home, no lock."""
    try:
        folder = state_folder("builds")
        descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except Exception:
        yield
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def answer(job_id: int, status: str, seconds: float = 0.0, message: str = "") -> dict[str, Any]:
    return {"id": job_id, "status": status, "seconds": seconds, "message": message}


def build_one(data: dict[str, Any]) -> dict[str, Any]:
    """Builds one job of the protocol's form, never raising."""
    from annc.hardware.execution.builds import BuildJob

    job_id = int(data.get("id", -1))
    try:
        job = BuildJob.from_json(data)
        with machine_lock():
            if job.kept():
                return answer(job_id, READY)
            start = time.perf_counter()
            job.build()
            seconds = time.perf_counter() - start
        return answer(job_id, READY if job.kept() else NOT_KEPT, seconds)
    except Exception as error:
        return answer(job_id, FAILED, message=f"{type(error).__name__}: {error}"[:500])


def reply(output: IO[str] | None, message: dict[str, Any]) -> IO[str] | None:
    """Writes one answer; returns None once the run has stopped listening."""
    if output is None:
        return None
    try:
        output.write(json.dumps(message) + "\n")
        output.flush()
        return output
    except (BrokenPipeError, OSError, ValueError):
        return None


NICENESS = 19
"""The helper's `nice`: it runs at the lowest priority, so that where the run wants
both cores it gets them first. What remains is the memory and caches the two share:
20 products of 1000² f64 on both cores took 1.30–1.36x their time alone while the
helper compiled two Halide kernels beside them (1.42–1.48x under Linux's `SCHED_IDLE`,
oddly; 2026-12-07, three fresh homes each, medians of 5)."""


def yield_to_the_run() -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICENESS)


NOW = "--now"
"""The worker's argument where a run waits for its builds: no `NICENESS` then."""
SCRATCH = "--scratch"
"""The worker's argument naming the folder its compilers' temporary files go to: made
by the process that started it, removed by the worker when it ends, or by that process
when it kills the worker (a Ctrl-C), so that a compile cut short leaves nothing."""


def worker_command(scratch: str, now: bool = False) -> list[str]:
    """The command that starts a worker (`now`: for builds a run waits for)."""
    return [sys.executable, "-m", "annc.hardware.execution.build_worker", SCRATCH, scratch,
            *([NOW] if now else [])]


def worker_environment() -> dict[str, str]:
    """This environment, with the folder that holds annc's packages first on the path
    (so a source checkout's worker imports the same code)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path}


def make_scratch() -> str:
    return tempfile.mkdtemp(prefix="annc-build-")


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if NOW not in arguments:
        yield_to_the_run()
    scratch = arguments[arguments.index(SCRATCH) + 1] if SCRATCH in arguments else None
    if scratch is not None:
        tempfile.tempdir = scratch
    try:
        serve()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


def serve() -> None:
    """Builds the jobs of standard input, one after the other, answering each."""
    output: IO[str] | None = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            output = reply(output, answer(-1, FAILED, message="not a JSON job"))
            continue
        output = reply(output, build_one(data))


if __name__ == "__main__":
    sys.exit(main())
