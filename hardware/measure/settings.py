"""How long the timing harness measures: one value, made by whoever chooses the protocol
(calibration, `calibrate --quick`, `tune`, the compile's `measure` step) and passed to
`hardware.measure.timing` (through the worker process where one measures)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimingSettings:
    """The harness's warm-up and repeats (`hardware.measure.timing`'s docstring).

    The defaults are the calibration's: enough repeats for a stable median on a quiet
    machine, cheap enough for thousands of measurements."""

    min_repeats: int = 3
    """Timed calls at least, ..."""
    min_seconds: float = 0.03
    """... adding up to at least this many seconds, ..."""
    max_repeats: int = 200
    """... but never more calls than this, ..."""
    max_seconds: float = 2.0
    """... and none once this many seconds have been spent timing."""
    warmup: int = 1
    """Untimed calls first, at least this many ..."""
    warmup_seconds: float = 0.01
    """... and for at least this many seconds."""

