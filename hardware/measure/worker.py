"""Measuring in a separate process, so a variant that crashes or hangs costs one row.

Halide and XLA are native code: a segfault in a variant would take the whole
calibration down with it. `MeasureWorker` keeps one long-lived child process
(started with `spawn`) that loads the variant library once and answers
measure requests over a pipe, answering each with its `Record`. When a measurement
raises, the record's status says so;
when the child dies, or a measurement runs past its timeout (the child is
killed), the worker reports it and starts a fresh child for the next request.

The child builds the same library as its parent (`load_library`): the built-in
variants and every installed plugin's (the `annc.variants` entry-point group), so a
plugin's variants are measured like annc's own.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from annc.dsl.records import Combination, Query, Record
from annc.hardware.measure.settings import TimingSettings
from annc.hardware.variants import load_library

START_TIMEOUT_S = 120.0
"""How long a fresh child may take to import the variant library."""


@dataclass(frozen=True)
class Request:
    kernel: str
    variant: str
    device: str
    shapes: tuple[tuple[int, ...], ...]
    dtype: str
    settings: TimingSettings = field(default_factory=TimingSettings)
    region: Any = None
    """For a region variant (`kernel` is `region` or `loop`): the `RegionSpec` to time;
    `shapes` is then its summary."""
    source: str = "calibration"
    """Whose record it is (`annc.dsl.records.SOURCES`)."""

    @property
    def combination(self) -> Combination:
        return Combination(self.kernel, self.variant, self.device)

    def unmeasured(self, status: str, error: str) -> Record:
        """The record of a request that got no time: failed, timeout or crashed."""
        query = Query(self.kernel, self.shapes, self.dtype, math.nan)
        return Record(self.combination, query, None, self.source, status=status,
                      error=error[:2000])


class Interrupted(Exception):
    """The caller's deadline passed while a measurement was running; it was abandoned."""


def _serve(connection: Connection) -> None:
    """The child's loop: load the library, then answer requests until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    os.dup2(2, 1)  # native code that prints must not mix into the parent's stdout
    from annc.hardware.measure.timing import measure, measure_region
    from annc.hardware.variants import get_variant
    from annc.hardware.variants.compiled import clear_cache
    from annc.hardware.variants.regions import catalogue

    load_library()
    connection.send(("ready", None))
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        try:
            if request.region is not None:
                answer = measure_region(request.combination, request.region,
                                        source=request.source, settings=request.settings)
            else:
                variant = get_variant(request.kernel, request.variant, request.device)
                answer = measure(variant, request.shapes, request.dtype,
                                 source=request.source, settings=request.settings)
        except Exception as error:  # a failing variant is data, not the worker's end
            answer = request.unmeasured("failed", f"{type(error).__name__}: {error}")
        finally:
            clear_cache()
            catalogue.clear_built()
        connection.send(answer)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the worker process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker process was killed by {name}"
    return f"the worker process exited with status {code}"


class MeasureWorker:
    """A child process that measures variants; restarted after every crash or timeout."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._connection: Connection | None = None
        self.restarts = 0

    def __enter__(self) -> MeasureWorker:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        """Stops the child: asking it where the work ended, at once where it was cut short
        (a Ctrl-C): a child inside a measurement answers only when it is done, and
        asking would keep the user waiting `close`'s two seconds for nothing."""
        if kind is None:
            self.close()
        else:
            self._kill()

    def _start(self, deadline: float | None) -> Connection:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child,), daemon=True,
                                        name="annc-measure")
        # Ctrl-C reaches the whole process group: the child starts with SIGINT blocked
        # and ignores it once running, so only the parent decides what to do.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        child.close()
        self._process, self._connection = process, parent
        wait = START_TIMEOUT_S if deadline is None else max(0.0, deadline - time.monotonic())
        if not parent.poll(min(wait, START_TIMEOUT_S)):
            self._kill()
            if deadline is not None and time.monotonic() >= deadline:
                raise Interrupted
            raise RuntimeError("the measuring worker did not start within "
                               f"{START_TIMEOUT_S:.0f} s")
        try:
            parent.recv()
        except EOFError:
            code = process.exitcode
            self._kill()
            raise RuntimeError(f"the measuring worker failed to start: "
                               f"{_describe_exit(code)}") from None
        return parent

    def _kill(self) -> None:
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(5)
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None

    def close(self) -> None:
        """Stops the child (asking first, then killing)."""
        if self._connection is not None and self._process is not None:
            try:
                self._connection.send(None)
                self._process.join(2)
            except (OSError, ValueError):
                pass
        self._kill()

    def measure(self, request: Request, timeout_s: float,
                deadline: float | None = None) -> Record:
        """Measures one request: its record, of status `timeout` if it takes longer than
        `timeout_s`, `failed` where the variant raised, `crashed` where the child died.

        `deadline` (a `time.monotonic()` value) is the caller's own limit: when it
        passes first, the child is killed and `Interrupted` raised (nothing to record).
        """
        connection = self._connection
        if connection is None:
            connection = self._start(deadline)
        try:
            connection.send(request)
        except (OSError, ValueError):
            return self._crashed(request)
        limit = time.monotonic() + timeout_s
        stop = limit if deadline is None else min(limit, deadline)
        while True:
            remaining = stop - time.monotonic()
            if connection.poll(max(0.0, min(remaining, 0.5))):
                break
            if self._process is not None and not self._process.is_alive():
                return self._crashed(request)
            if remaining <= 0:
                self._kill()
                self.restarts += 1
                if deadline is not None and stop == deadline and deadline < limit:
                    raise Interrupted
                return request.unmeasured("timeout", f"no result within {timeout_s:g} s; "
                                          "the worker process was killed")
        try:
            answer: Record = connection.recv()
        except (EOFError, OSError):
            return self._crashed(request)
        return answer

    def _crashed(self, request: Request) -> Record:
        process = self._process
        if process is not None:
            process.join(5)
        code = process.exitcode if process is not None else None
        self._kill()
        self.restarts += 1
        return request.unmeasured("crashed", _describe_exit(code))
