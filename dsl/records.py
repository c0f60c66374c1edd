"""What a cost model is asked, the combination it is asked about, and what was measured.

A *combination* is one implementation of one kernel (or region) on one device: the
unit a performance model is trained for. A *query* is one configuration of it: the
kernel's operand shapes and dtype, with the variant's mathematical complexity (the
augmentation) and the decisions it makes per shape (its traits). A *record* is the
seconds one query took (or why there are none), with where they come from. All three
are plain values of the ground floor, beside the kernel table, so that every floor
above (the variants that make queries, the timing harness that makes records, the
store that keeps them, the predictor that learns from them, the passes) speaks of them
in one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from annc.dsl.kernels import Shapes


class Combination(NamedTuple):
    """One kernel (or `region.<class>`, `loop.<class>`) by one variant on one device.

    A tuple, so that it sorts and keys a dict as `(kernel, variant, device)` does."""

    kernel: str
    variant: str
    device: str


@dataclass(frozen=True)
class Query:
    """One configuration of a kernel–variant–device combination, as a model is asked it."""

    kernel: str
    shapes: Shapes
    dtype: str
    complexity: float
    traits: tuple[tuple[str, float], ...] = ()
    """What the variant decided for these shapes, by name (`("fused", 1.0)`): see
    `hardware.variants.halide.schedule_traits`. Empty for most variants."""


SOURCES = ("calibration", "quick", "run", "tune", "measure")
"""Where a record comes from: `annc calibrate`, `calibrate --quick`, `annc run` (an op's
time inside a program), `annc tune` (every candidate alone on real shapes), or
selection's `--measure` step (close candidates, timed before choosing)."""
SPLITS = ("train", "test", "noise")
"""A calibration record's role: trained on, held out, or one of the noise floor's two
passes; other sources have none (`""`)."""
STATUSES = ("ok", "failed", "timeout", "crashed")
"""`ok`, or why a measurement has no time: the variant raised, ran past its timeout, or its
process died."""


@dataclass(frozen=True)
class Record:
    """Seconds for one query of one combination: the one fact annc measures, stores,
    learns from and is scored on (the timing harness makes it, the store keeps it, the
    predictor reads it)."""

    combination: Combination
    query: Query
    """The shapes and dtype measured; its complexity is `nan` where it was not recorded
    (rows kept before schema 4, and the shipped reference): readers that need it ask the
    variant."""
    seconds: float | None
    """Median seconds per execution; None where `status` is not `ok`."""
    source: str
    """One of `SOURCES`."""
    spread: float | None = None
    """(p90 − p10) / median of the timed calls, where they were kept."""
    repeats: int | None = None
    """How many timed calls (or, for a run, executions) the median is over."""
    compile_s: float | None = None
    """Seconds the variant's build took, where it was built for this record."""
    status: str = "ok"
    split: str = ""
    """One of `SPLITS` for a calibration record, else empty."""
    noise_pass: int = 0
    """1 or 2 for the two passes of the noise floor; 0 otherwise."""
    predicted_s: float | None = None
    """What the models in use predicted for one execution, before it was measured."""
    base_s: float | None = None
    """What the trained model alone (without this machine's corrections) predicted."""
    error: str | None = None
    """Why there is no time (`status` not `ok`)."""
    wall_s: float | None = None
    """Seconds the whole measurement took (build, warm-up and repeats), for planning."""
    threads: dict[str, str] = field(default_factory=dict)
    """The thread settings it was measured under (`hardware.measure.timing`)."""
    when: str = ""
    """Local time of day, ISO 8601 with its UTC offset, to the second."""
    fingerprint: str = ""
    """The machine's hardware fingerprint."""
    annc_version: str = ""

    @property
    def measured_s(self) -> float:
        """`seconds`, of a record known to have them (e.g. training rows, kept
        observations); a `ValueError` for one without (a failed measurement)."""
        if self.seconds is None:
            raise ValueError(f"{'/'.join(self.combination)} has no time ({self.status})")
        return self.seconds

    @property
    def kernel(self) -> str:
        return self.combination.kernel

    @property
    def variant(self) -> str:
        return self.combination.variant

    @property
    def device(self) -> str:
        return self.combination.device

    @property
    def dtype(self) -> str:
        return self.query.dtype

    @property
    def shapes(self) -> Shapes:
        return self.query.shapes

    @property
    def calibration_key(self) -> tuple[str, str, str, str, str, Shapes, int]:
        """What identifies a calibration's measured configuration (for resuming)."""
        return (self.kernel, self.variant, self.device, self.split, self.dtype, self.shapes,
                self.noise_pass)
