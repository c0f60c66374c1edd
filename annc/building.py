"""Building ahead: everything a program's plan would want, built now and kept.

`annc build FILE` compiles the program as `annc run` would (the same selection,
parameters and targets), finds every chosen variant whose build is not kept — the
builds a run would make beside itself, or wait for — and has them built by the same
helper process a run uses (`hardware.execution.beside`), into the persistent caches,
one after the other. The next run of the program starts on all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from annc.compiler import compile_program, read_source
from annc.hardware.devices.available import available_devices
from annc.hardware.execution.beside import Beside, Submitted
from annc.hardware.execution.builds import BuildJob
from annc.hardware.execution.planning import Builds, compile_plan


@dataclass
class Built:
    """One build `annc build` made: what, how it ended, how long it took."""

    job: str
    status: str
    """`built`, `kept already` (another process built it meanwhile), `not kept` or
    `failed`."""
    seconds: float
    message: str = ""


def wanted_builds(path: str | Path, params: Mapping[str, int | str] | None = None,
                  targets: tuple[str, ...] | list[str] | None = None) -> list[BuildJob]:
    """The builds a run of the program would make beside itself (not yet kept)."""
    compiled = compile_program(read_source(path), str(path), params, targets, "selected",
                               "never", record=False, kept_plans=True)
    builds = Builds("never")
    compile_plan(compiled.ir, available_devices(), builds)
    return builds.jobs


def build_ahead(jobs: list[BuildJob], told: Callable[[Built], None] | None = None
                ) -> list[Built]:
    """Builds the jobs in the helper process, waiting for all; `told` hears of each."""
    done: list[Built] = []

    def answered(submitted: Submitted) -> None:
        status = {"ready": "built" if submitted.seconds else "kept already"}.get(
            submitted.status, submitted.status)
        built = Built(submitted.job.label, status, submitted.seconds, submitted.message)
        done.append(built)
        if told is not None:
            told(built)

    beside = Beside(load=False, answered=answered, delay_s=0)
    try:
        for job in jobs:
            beside.submit(job, lambda kernel: None)
        beside.finish(wait=True)
    except BaseException:
        beside.stop()
        raise
    return done
