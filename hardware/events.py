"""What this process did that a run's report counts: one counter, kept in one place.

Each event is a name (`EVENTS` lists them with what they mean); the places that do the
thing call `count`, and a report shows the events of its own span: `snapshot` at its
start and `since` at its end (`annc run --report json` gives them as `"events"`). Tests
read them the same way, so no module keeps a counter of its own for them.
"""

from __future__ import annotations

from collections import Counter

EVENTS: dict[str, str] = {
    "plan kept": "a run took the plan kept for its program (`annc.plans`)",
    "measured": "selection timed a candidate on the op's real shapes (`passes.measuring`)",
    "recorded": "a run's times were written to the measurement store (`annc.recording`)",
    "cache hit": "an entry of the build cache was used (`cache hit:KIND` per kind)",
    "cache miss": "an entry was looked for in the build cache and not found",
    "cache written": "an entry was written to the build cache",
    "cache rejected": "annc's own entry no longer served and was removed",
    "cache untrusted": "an entry not provably annc's was left in place and not used",
    "cache evicted": "an entry was removed to keep the cache under its limit",
    "halide kernel built": "a Halide CPU kernel was compiled ahead of time",
    "halide kernel loaded": "a Halide CPU kernel was loaded from the build cache",
    "halide kernel jit": "a Halide CPU kernel was JIT-compiled (no C compiler)",
    "halide region built": "a Halide region pipeline was compiled ahead of time",
    "halide region loaded": "a Halide region pipeline was loaded from the build cache",
    "halide region jit": "a Halide region pipeline was JIT-compiled (no C compiler)",
}
"""Every event, by name; a build cache event also counts per kind (`cache hit:kernel`)."""

_counts: Counter[str] = Counter()


def count(event: str, kind: str | None = None) -> None:
    """One more `event` (and `event:kind` where a kind is given)."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    _counts[event] += 1
    if kind is not None:
        _counts[f"{event}:{kind}"] += 1


def snapshot() -> Counter[str]:
    """The counts so far in this process (a copy)."""
    return Counter(_counts)


def since(before: Counter[str]) -> dict[str, int]:
    """The events counted after `before` was taken, by name, sorted; none left out that
    happened, none shown that did not."""
    return {name: n - before[name] for name, n in sorted(_counts.items()) if n > before[name]}
