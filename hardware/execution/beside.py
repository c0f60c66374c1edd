"""Builds beside a run: a helper process builds, this process switches when it is ready.

`Beside.submit(job, on_ready)` hands a build to the helper
(`hardware.execution.build_worker`, started on the first submit) and returns at
once. A thread of this process reads the helper's answers; for a build that is
ready it *loads* it here (from the persistent caches the helper wrote) and calls
`on_ready(kernel)`, which hands it to the running plan's step, to be used from its
next execution on (`hardware.execution.tiers`). A build that fails or cannot be kept
leaves its op on the variant it started on, with a note.

When the run is over, `finish()` stops loading (nothing is switched after the run)
and closes the helper's input: the helper finishes the builds it was given, keeps
them, and exits by itself, so the user's next run starts on them. With `wait` the
run waits for that instead (tests, benchmarks, `annc build`). `stop()` (Ctrl-C)
ends the helper at once.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from annc.hardware.execution.build_worker import (
    READY,
    make_scratch,
    worker_command,
    worker_environment,
)
from annc.hardware.execution.builds import BuildJob
from annc.hardware.variants.registry import Kernel

OnReady = Callable[[Kernel], None]


@dataclass
class Submitted:
    job: BuildJob
    listeners: list[OnReady] = field(default_factory=list)
    status: str = "building"
    """`building`, then the helper's answer (`ready`, `not kept`, `failed`), or `loaded`
    once this process has it."""
    message: str = ""
    seconds: float = 0.0
    """What the build took in the helper (0 where it was kept already)."""


Answered = Callable[[Submitted], None]


DELAY_S = 0.5
"""Seconds a run goes on alone before its helper starts. The helper takes the cores,
memory and caches the run uses (a product on both cores took 1.3x as long beside a
Halide compile; a short run of the examples up to 4x), and no build is ready to switch
to in less than about half a second (the helper's start and its back end's): a run
that ends sooner gains nothing from it, so its builds start when it ends."""


class Beside:
    """The builds of one run, made by one helper process, started `delay_s` after the
    first submission or when the run ends, whichever comes first. With `load` false
    nothing is loaded here (`annc build`); `answered` hears of every job the helper
    answers."""

    def __init__(self, load: bool = True, answered: Answered | None = None,
                 delay_s: float = DELAY_S) -> None:
        self._load = load
        self._answered = answered
        self._delay_s = delay_s
        self._process: subprocess.Popen[str] | None = None
        self._scratch: str | None = None
        """The helper's folder for temporary files (`build_worker.SCRATCH`)."""
        self._jobs: list[Submitted] = []
        self._by_key: dict[str, int] = {}
        self._sent = 0
        """How many of the jobs the helper has been given."""
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._listening = True
        self._reader: threading.Thread | None = None
        self.notes: list[str] = []

    @property
    def jobs(self) -> list[Submitted]:
        return list(self._jobs)

    def submit(self, job: BuildJob, on_ready: OnReady) -> None:
        """Builds the job beside the run; `on_ready` gets what it built, when loaded here."""
        with self._lock:
            index = self._by_key.get(job.key)
            if index is not None:
                self._jobs[index].listeners.append(on_ready)
                return
            self._by_key[job.key] = len(self._jobs)
            self._jobs.append(Submitted(job, [on_ready]))
            if self._process is None and self._timer is None and self._delay_s > 0:
                self._timer = threading.Timer(self._delay_s, self._send)
                self._timer.daemon = True
                self._timer.start()
        if self._process is not None or self._delay_s <= 0:
            self._send()

    def _send(self) -> None:
        """Gives the helper (started now if it is not yet) the jobs it has not had."""
        with self._lock:
            waiting = list(range(self._sent, len(self._jobs)))
            self._sent = len(self._jobs)
            try:
                stdin = self._start() if waiting else None
                for index in waiting:
                    assert stdin is not None
                    stdin.write(json.dumps({"id": index, **self._jobs[index].job.to_json()})
                                + "\n")
                if stdin is not None:
                    stdin.flush()
                return
            except OSError as error:
                failed = (waiting, f"the build helper could not start ({error})")
        for index in failed[0]:
            self._answer(index, "failed", failed[1])

    def _start(self) -> IO[str]:
        if self._process is None:
            self._scratch = make_scratch()
            self._process = subprocess.Popen(
                worker_command(self._scratch), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                start_new_session=True, env=worker_environment())
            self._reader = threading.Thread(target=self._read, name="annc-builds",
                                            daemon=True)
            self._reader.start()
        assert self._process.stdin is not None
        return self._process.stdin

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            try:
                message = json.loads(line)
                index, status = int(message["id"]), str(message["status"])
            except (ValueError, KeyError, TypeError):
                continue
            if 0 <= index < len(self._jobs):
                self._jobs[index].seconds = float(message.get("seconds", 0.0) or 0.0)
                self._answer(index, status, str(message.get("message", "")))
                if self._answered is not None:
                    self._answered(self._jobs[index])
        self._process.wait()
        with self._lock:
            for index, submitted in enumerate(self._jobs):
                if submitted.status == "building" and self._listening:
                    self._note(index, "the build helper ended before building it")
                    submitted.status = "failed"

    def _answer(self, index: int, status: str, message: str) -> None:
        submitted = self._jobs[index]
        submitted.status, submitted.message = status, message
        if status != READY:
            self._note(index, f"could not be kept ({message})" if message
                       else "was built but could not be kept (is $ANNC_HOME writable?)")
            return
        if not self._listening or not self._load:
            return
        try:
            kernel = submitted.job.build()  # a load from the caches the helper wrote
        except Exception as error:
            submitted.status = "failed"
            self._note(index, f"could not be loaded ({type(error).__name__}: {error})")
            return
        with self._lock:
            if not self._listening:
                return
            submitted.status = "loaded"
            listeners = list(submitted.listeners)
        for listener in listeners:
            listener(kernel)

    def _note(self, index: int, what: str) -> None:
        job = self._jobs[index].job
        self.notes.append(f"note: the build of {job.label} beside the run {what}; "
                          "the run went on without it")

    def finish(self, wait: bool = False, timeout: float | None = None) -> None:
        """The run is over: nothing switches any more; the helper (started now if the run
        ended before it did) builds what it was given (waited for with `wait`), then
        exits."""
        with self._lock:
            self._listening = False
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._send()
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        if wait:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if self._reader is not None:
                self._reader.join()

    def stop(self) -> None:
        """Ends the helper now (the run was interrupted): what it was building is lost."""
        with self._lock:
            self._listening = False
            timer, self._timer = self._timer, None
            self._sent = len(self._jobs)  # nothing more is sent
        if timer is not None:
            timer.cancel()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def building(self) -> list[BuildJob]:
        """The jobs the helper has not answered yet (or not been given yet)."""
        return [s.job for s in self._jobs if s.status == "building"]

    @property
    def helper_pid(self) -> int | None:
        return None if self._process is None else self._process.pid
