"""A candidate of a choice: one way to run an op or a region, what it is predicted to
cost, and why it lost; and an op's candidates with its choice (`OpPlan`)."""

from __future__ import annotations

from dataclasses import dataclass

from annc.passes.sites import Site


@dataclass(slots=True)
class Candidate:
    """A variant on a device, for one kernel op (`select-variants`) or one region
    (`passes.region_choice`, where `predicted_s` is one execution of the whole region)."""

    variant: str
    device: str
    predicted_s: float | None
    """Predicted time of one execution; None without a model."""
    compile_s: float
    cost_s: float
    """trips × predicted_s + what its build costs this run (`passes.tiers`); infinite
    without a model."""
    why_not: str = ""
    low_s: float | None = None
    high_s: float | None = None
    """The 90% interval of one execution's time."""
    base_s: float | None = None
    """The trained model's own prediction, before this machine's corrections."""
    basis: str = "predicted"
    """`predicted`, `measured` (by this compile) or `wisdom` (measured before)."""
    build: str = "compile"
    """What its build costs here: `compile`, `cached` (loaded from a persistent cache),
    `built` (already built in this process) or `none` (a numpy variant: nothing worth
    the name)."""
    charged_s: float = 0.0
    """What `cost_s` counts of its build this run (`passes.tiers`)."""
    beside: bool = False
    """Whether its compile would run beside the run (another candidate can start it)."""
    compute_s: float | None = None
    communication_s: float | None = None
    """A sharded region's one execution, split: its per-device compute (the one-device
    model at the shard's shape) and its collectives (`passes.sharding_choice`)."""
    communication: str = ""
    """What a sharded region communicates per execution, in words."""

    def set_time(self, seconds: float, low_s: float | None, high_s: float | None,
                 executions: int) -> None:
        """One execution's time and its interval; the cost is `executions` × that time
        plus the whole build, until `passes.tiers` charges the build over the runs."""
        self.predicted_s, self.low_s, self.high_s = seconds, low_s, high_s
        self.cost_s = executions * seconds + self.compile_s


@dataclass(slots=True)
class OpPlan:
    """One kernel op's candidates and what `select-variants` chose among them."""

    site: Site
    candidates: list[Candidate]
    chosen: Candidate | None = None
    start: Candidate | None = None
    """Where `chosen` needs a compile: what the run starts on while it builds beside."""
