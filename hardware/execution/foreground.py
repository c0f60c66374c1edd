"""Builds a run waits for, made where Ctrl-C can still stop them.

Python handles a signal only between the bytecodes of its main thread: while the main
thread is inside Halide, a Ctrl-C waits until Halide returns. A compile with annc's
own schedules returns within a few tenths of a second (0.1–0.4 s, the models'
medians), but an auto-scheduler's search runs for seconds (Adams2019 scheduling one
1024² convolution: 3.5–7 s here), so a Ctrl-C during one was answered that late.

`build_now` therefore has a child process (`hardware.execution.build_worker --now`)
make a build that searches for a schedule (`Variant.searches`) and is not kept, into
the persistent caches, and loads it here when the child is done, as a build made
beside the run is loaded. Meanwhile this process only waits on the child's answer, a
read that a signal interrupts: a Ctrl-C kills the child at once and removes its
scratch folder (what it had written to the caches is whole: every entry is written to
a temporary name and renamed). A child costs a Python start and Halide's import (about
0.5 s), small beside a search. Where the child could keep nothing (no writable
`$ANNC_HOME`), the build is made here after all; where it failed, the same error is
raised here without searching again.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time

from annc.hardware.execution.build_worker import (
    FAILED,
    make_scratch,
    worker_command,
    worker_environment,
)
from annc.hardware.execution.builds import BuildJob
from annc.hardware.variants.compiled import count_build
from annc.hardware.variants.registry import Kernel


class ForegroundBuildError(RuntimeError):
    """The child process's build failed; its message says why."""


def build_now(job: BuildJob) -> Kernel:
    """The job built (or loaded) for a run that waits for it; a search in a child."""
    if job.searches and not job.ready():
        _build_in_child(job)
    return job.build()


def _build_in_child(job: BuildJob) -> None:
    """Has a child process build the job into the persistent caches, waiting for it;
    raises `ForegroundBuildError` where the build failed there."""
    scratch = make_scratch()
    try:
        process = subprocess.Popen(
            worker_command(scratch, now=True), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True, env=worker_environment())
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        return  # no child: the build is made here
    began = time.perf_counter()
    try:
        answer = _ask(process, job)
    except BaseException:
        process.kill()
        raise
    finally:
        process.wait()
        shutil.rmtree(scratch, ignore_errors=True)
        count_build(time.perf_counter() - began)  # the run waited for it
    if answer.get("status") == FAILED:
        raise ForegroundBuildError(str(answer.get("message", "")))


def _ask(process: subprocess.Popen[str], job: BuildJob) -> dict[str, object]:
    """Sends the job and reads the child's answer ({} where it gave none)."""
    assert process.stdin is not None and process.stdout is not None
    with contextlib.suppress(OSError):  # a child that died at once answers nothing
        process.stdin.write(json.dumps({"id": 0, **job.to_json()}) + "\n")
        process.stdin.close()
    line = process.stdout.readline()
    try:
        answer = json.loads(line)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
