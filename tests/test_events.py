"""The process's events: counted in one place, shown per run in its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annc.cli import main
from annc.hardware import events

PROGRAM = "input x : f32[64]\ny = x * 2\noutput y\n"


def test_since_shows_what_happened_after_the_snapshot_and_nothing_else():
    before = events.snapshot()
    events.count("cache hit", "kernel")
    events.count("cache hit", "kernel")
    events.count("measured")
    assert events.since(before) == {"cache hit": 2, "cache hit:kernel": 2, "measured": 1}
    assert events.since(events.snapshot()) == {}


def test_an_event_that_is_not_listed_is_refused():
    with pytest.raises(ValueError, match="unknown event"):
        events.count("plan hit")


def test_the_json_report_of_a_run_counts_its_own_events(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    program = tmp_path / "p.ann"
    program.write_text(PROGRAM)
    reports = []
    for _ in range(2):
        assert main(["run", str(program), "--report", "json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert "plan kept" not in reports[0]["events"]
    assert reports[1]["events"]["plan kept"] == 1
    assert all(isinstance(n, int) and n > 0 for r in reports for n in r["events"].values())
