"""Long calls of a plan in a helper thread, so that Ctrl-C is answered while they run.

Python runs a signal handler only in its main thread, between bytecodes: while the
main thread is inside one call of native code — one product of 4000² f64 in BLAS
(2.8 s here), one execution of a large compiled region, the first trip of a heavy
compiled loop — a Ctrl-C waits until that call returns. A step predicted to take
longer than `LONG_CALL_S` (and a compiled loop's chunk whose time is not yet known,
or long) therefore runs in a helper thread while the main thread waits for it, a wait
that a signal interrupts: numpy, JAX and Halide's compiled kernels let go of Python's
lock while they compute. Handing a call to a helper thread costs about 0.15 ms.

An interrupted call goes on in its thread, its result unused: the `annc` program exits
at once (`annc.interrupts.exit_interrupted`); a program that called annc's functions
waits for it when it exits (the threads are not daemons: a Python whose daemon thread
was inside BLAS at its exit never finished exiting, here).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from annc.hardware.execution.steps import Env, Step

LONG_CALL_S = 0.5
"""A call predicted to take longer runs in a helper thread."""
HELPERS = 4
"""Helper threads at most: one stays busy with a call that a Ctrl-C abandoned (where
annc's functions were called from a program that went on)."""

Result = TypeVar("Result")


@functools.cache
def _helpers() -> ThreadPoolExecutor:
    """The process's helper threads, started when first needed and kept: a thread of
    its own per call cost an XLA call of heat's loop 6 ms more, a kept one 0.15 ms."""
    return ThreadPoolExecutor(max_workers=HELPERS, thread_name_prefix="annc-long-call")


def call_interruptibly(function: Callable[[], Result]) -> Result:
    """`function()`, computed in a helper thread while this one waits (see the module);
    its exception, where it raises, is raised here."""
    return _helpers().submit(function).result()


def interruptible(step: Step) -> Step:
    """The plan step, each execution run by `call_interruptibly`."""

    def run(env: Env) -> None:
        call_interruptibly(lambda: step(env))

    return run


def is_long(predicted_s: float | None) -> bool:
    """Whether a call predicted to take this long runs in a helper thread."""
    return predicted_s is not None and predicted_s > LONG_CALL_S
