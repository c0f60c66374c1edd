"""The commands' synopsis in README.md is what the parsers accept."""

from __future__ import annotations

from pathlib import Path

from annc.synopsis import synopsis

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_block() -> list[str]:
    """The code block of README.md that holds `annc compile FILE ...`."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("annc compile FILE"))
    end = lines.index("```", start)
    return lines[start:end]


def test_the_readme_synopsis_is_the_parsers() -> None:
    assert _readme_block() == synopsis(), "run `python -m annc.synopsis` and paste it"


def test_the_synopsis_names_every_option_of_every_command() -> None:
    lines = {line.split()[1]: line for line in synopsis()}
    assert list(lines)[:3] == ["compile", "run", "explain"]
    assert "[--target DEV,...]" in lines["run"] and "[-D NAME=VALUE ...]" in lines["run"]
    assert "[--variants NAME,...] [--timeout SECONDS]" in lines["tune"]
    for option in ("--variants NAME,...", "--timeout SECONDS", "--noise", "--reference"):
        assert f"[{option}]" in lines["calibrate"]
    assert "[--report table|json]" in lines["explain"] and "[--wide]" in lines["explain"]
