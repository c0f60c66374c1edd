"""`explain` and `run --report table` read at 80 columns: every cell whole, every choice
marked, long reasons below their table; `--wide` keeps them in their rows."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from annc.cli import main
from annc.commands.run import print_report
from annc.commands.tables import Fitted, compact_table, note_keys, print_fitted
from annc.running import RunResult

ROOT = Path(__file__).resolve().parent.parent
HEAT = str(ROOT / "examples" / "heat.ann")


def _annc(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def _flat(text: str) -> str:
    """The text with every run of white space one space: wrapped lines joined."""
    return " ".join(text.split())


def _sections(text: str) -> dict[str, list[tuple[str, str, bool]]]:
    """Each table's rows as (variant, device, marked chosen), by its title's start
    (`#1`, `region 0`)."""
    sections: dict[str, list[tuple[str, str, bool]]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        title = re.match(r"(#\d+) \S|(region \d+):", line)  # not a row of the tiers
        if title is None:
            continue
        rule = next(j for j in range(i, len(lines)) if lines[j].startswith("───"))
        rows = sections.setdefault(title.group(1) or title.group(2), [])
        for row in lines[rule + 1:]:
            if not row.strip() or row.startswith("why not:"):
                break
            marked = row.startswith("→")
            variant, device = row.lstrip("→").split()[:2]
            rows.append((variant, device, marked))
    return sections


def _expected(plan: dict) -> dict[str, list[tuple[str, str, bool]]]:
    expected = {}
    for key, choices in ((f"#{op['index']}", op) for op in plan["ops"]):
        expected[key] = choices
    for region in plan["regions"]:
        expected[f"region {region['index']}"] = region
    return {key: sorted((c["variant"], c["device"],
                         choice["chosen"] is not None
                         and (c["variant"], c["device"]) == (choice["chosen"]["variant"],
                                                             choice["chosen"]["device"]))
                        for c in choice["candidates"])
            for key, choice in expected.items()}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A home of each test's own: the shipped models, nothing measured or built."""
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))


@pytest.fixture
def heat_plan(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(_annc(capsys, "explain", HEAT, "--measure", "never", "--report", "json"))


def test_explain_at_80_columns_cuts_no_cell_and_marks_every_choice(
        heat_plan: dict, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    text = _annc(capsys, "explain", HEAT, "--measure", "never")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    sections = _sections(text)
    assert {key: sorted(rows) for key, rows in sections.items()} == _expected(heat_plan)
    assert all(sum(marked for *_, marked in rows) == 1 for rows in sections.values())
    reasons = {c["why_not"] for choice in [*heat_plan["ops"], *heat_plan["regions"]]
               for c in choice["candidates"] if c["why_not"]}
    assert reasons and all(_flat(reason) in _flat(text) for reason in reasons)
    legend = text.index("→ marks the choice")
    assert legend < text.index("#0 ")  # read before the tables, not after them


def test_explain_wide_keeps_each_reason_in_its_row(
        heat_plan: dict, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    text = _annc(capsys, "explain", HEAT, "--measure", "never", "--wide")
    lines = text.splitlines()
    assert not any(line.startswith("why not:") for line in lines)
    for op in heat_plan["ops"]:
        for c in op["candidates"]:
            if c["why_not"]:
                assert any(c["variant"] in line and c["why_not"] in line for line in lines)


def _report(ops: list[dict], regions: list[dict]) -> list[str]:
    out = io.StringIO()
    print_report(Console(file=out, width=80), RunResult({}, {"ops": ops, "regions": regions}),
                  "examples/wave.ann")
    assert "…" not in out.getvalue()
    return out.getvalue().splitlines()


OP = {"index": 12, "kernel": "matvec", "variant": "numpy.reference", "device": "cpu",
      "shapes": [[1000, 1000], [1000]], "executions": 1000, "predicted_s": 1.234e-3,
      "measured_s": 2.5, "loc": "examples/wave.ann:28:13"}
REGION = {"index": 3, "kind": "region.reduction", "ops": [10, 11, 12, 13],
          "variant": "halide.mullapudi2016", "device": "cpu", "executions": 1000,
          "predicted_s": 0.5, "measured_s": 0.6, "loc": "examples/wave.ann:28:9"}


def test_the_run_table_fits_80_columns_by_moving_the_device_then_the_shapes() -> None:
    lines = _report([OP], [REGION])
    assert max(map(len, lines)) <= 80
    assert "ops of examples/wave.ann, all on cpu" in lines
    (row,) = [line for line in lines if line.startswith("12 ")]
    assert row.split() == ["12", "matvec", "numpy.reference", "1000x1000", "1000", "1000",
                           "1.23", "ms", "2.5", "s", "28:13"]
    (row,) = [line for line in lines if line.startswith("3 ")]
    assert row.split() == ["3", "region.reduction", "10", "halide.mullapudi2016", "1000",
                           "500", "ms", "600", "ms", "28:9"]  # then 11, 12, 13 below


def test_a_run_table_wider_than_the_terminal_is_printed_whole() -> None:
    widest = {**OP, "kernel": "conv2d", "variant": "halide.auto.mullapudi2016",
              "shapes": [[1024, 1024], [9, 9]]}
    lines = _report([widest], [])
    (row,) = [line for line in lines if line.startswith("12 ")]
    assert row.split() == ["12", "conv2d", "halide.auto.mullapudi2016", "1024x1024", "1000",
                           "1.23", "ms", "2.5", "s", "28:13"]


def test_run_report_table_at_80_columns(tmp_path: Path) -> None:
    """In a process of its own (one that built a region before would run the convolution
    in it) and a home with nothing built: the convolution runs op by op."""
    done = subprocess.run(
        [sys.executable, "-m", "annc", "run", HEAT, "-D", "N=16", "-D", "STEPS=2",
         "--builds", "never", "--measure", "never", "--report", "table"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    assert f"ops of {HEAT}" in _flat(text) and "16:25" in text and "predicted" in text


def test_a_table_too_wide_for_the_console_is_printed_whole() -> None:
    table = compact_table("name", "text")
    table.add_row("x" * 30, "y" * 70)
    out = io.StringIO()
    print_fitted(Console(file=out, width=80), [Fitted("title", table)])
    assert "x" * 30 in out.getvalue() and "y" * 70 in out.getvalue()
    assert "…" not in out.getvalue()


def test_notes_share_a_key_per_reason() -> None:
    keys, notes = note_keys(["", "slower", "far slower", "slower", *map(str, range(30))])
    assert keys[:4] == ["", "a", "b", "a"] and keys[-1] == "af"
    assert notes[:2] == [("a", "slower"), ("b", "far slower")] and len(notes) == 32
