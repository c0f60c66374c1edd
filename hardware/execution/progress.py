"""A progress bar for long runs: trips of the program's outer loops, and the expected end.

The plan's outermost loops tell `RunProgress.advance` how many trips they have done
(a compiled loop once per chunk, a loop run op by op once per trip). Nothing is
shown for a run that ends within `SHOW_AFTER_S`; after that a bar appears on the
terminal's standard error with the trips done, the time so far and the time left at
the rate seen so far, and disappears when the run ends.
"""

from __future__ import annotations

import sys
import time
from typing import Any

SHOW_AFTER_S = 2.0


class RunProgress:
    """Counts trips of the outer loops; shows a bar once the run has lasted a while."""

    def __init__(self, total_trips: int, show: bool = True) -> None:
        self.total = total_trips
        self.done = 0
        self.show = show
        self.began = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def advance(self, trips: int) -> None:
        self.done += trips
        if not self.show or self.total <= 0:
            return
        if self._bar is None:
            if time.perf_counter() - self.began < SHOW_AFTER_S:
                return
            self._open()
        self._bar.update(self._task, completed=self.done, elapsed=self._elapsed())

    def _elapsed(self) -> str:
        seconds = int(time.perf_counter() - self.began)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def _open(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("running"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("trips, {task.fields[elapsed]} so far,"),
                             TimeRemainingColumn(), TextColumn("left"),
                             console=Console(file=sys.stderr), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("run", total=self.total, completed=self.done,
                                        elapsed=self._elapsed())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
