"""Broken user state: bad model files and an unusable `$ANNC_HOME`.

Each case must leave `annc compile --emit selected` and `annc run` working on the
shipped models, say once which file is wrong and what to do, and never change the
user's file; commands that must write under `$ANNC_HOME` fail in one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from model_fixtures import install_for_this_machine, model_set

from annc.cli import main
from annc.hardware.devices.fingerprint import fingerprint

PROGRAM = """
input A : f64[8, 8]
input B : f64[8, 8]
C = matmul(A, B) + A
output C
"""


def _valid(home: Path) -> Path:
    return install_for_this_machine(model_set({("matmul", "numpy", "cpu"): 1e-3}), home)


def _corrupt(home: Path) -> Path:
    path = _valid(home)
    path.write_bytes(b"\x00\xffnot json at all{")
    return path


def _truncated(home: Path) -> Path:
    path = _valid(home)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _future_schema(home: Path) -> Path:
    path = _valid(home)
    data = json.loads(path.read_text())
    data["schema_version"] = 999
    path.write_text(json.dumps(data))
    return path


def _foreign_fingerprint(home: Path) -> Path:
    path = _valid(home)
    data = json.loads(path.read_text())
    data["fingerprint"] = {"id": "0123456789abcdef-another-machine"}
    path.write_text(json.dumps(data))
    return path


BROKEN: dict[str, Callable[[Path], Path]] = {
    "corrupt": _corrupt, "truncated": _truncated, "future-schema": _future_schema,
    "foreign-fingerprint": _foreign_fingerprint,
}


@pytest.mark.parametrize("command", ["compile", "run"])
@pytest.mark.parametrize("kind", BROKEN)
def test_a_broken_user_model_file_falls_back_to_the_shipped_models_and_is_kept(
        kind, command, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    path = BROKEN[kind](tmp_path / "home")
    before = path.read_bytes()
    program = tmp_path / "p.ann"
    program.write_text(PROGRAM)
    args = ["compile", str(program), "--emit", "selected"] if command == "compile" else \
        ["run", str(program)]
    assert main(args) == 0
    err = capsys.readouterr().err
    about_file = [line for line in err.splitlines() if str(path) in line
                  and "shipped default models instead" in line]
    assert len(about_file) == 1, err
    assert "annc train" in about_file[0]
    assert "shipped default models from reference machine" in err
    assert "Traceback" not in err
    assert path.read_bytes() == before


def test_a_model_file_of_another_machine_names_both_fingerprints(tmp_path, monkeypatch):
    from annc.passes.models import load_models

    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    path = _foreign_fingerprint(tmp_path / "home")
    notes: list[str] = []
    chosen = load_models(notes)
    assert "shipped default" in chosen.description
    (note,) = notes
    assert str(path) in note and "another-machine" in note and fingerprint().id in note


def _under_a_file(tmp_path: Path) -> Path:
    """A home that cannot be created, even by root: its parent is a regular file."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    return blocker / "annc-home"


def test_a_missing_home_is_created_on_use(tmp_path, monkeypatch, capsys):
    home = tmp_path / "not" / "yet" / "there"
    monkeypatch.setenv("ANNC_HOME", str(home))
    program = tmp_path / "p.ann"
    program.write_text(PROGRAM)
    assert main(["run", str(program)]) == 0
    assert main(["train"]) == 1  # no measurements yet: a one-line error, folder made
    err = capsys.readouterr().err
    assert home.is_dir() and "annc calibrate" in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["train"], ["calibrate", "--kernels", "add",
                                                 "--budget", "1"]])
def test_train_and_calibrate_into_an_unwritable_home_fail_in_one_line(
        command, tmp_path, monkeypatch, capsys):
    home = _under_a_file(tmp_path)
    monkeypatch.setenv("ANNC_HOME", str(home))
    assert main(command) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(home) in err and "ANNC_HOME" in err


def test_a_read_only_home_is_reported_by_train(tmp_path, monkeypatch, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; see the unwritable-home test")
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o500)
    try:
        monkeypatch.setenv("ANNC_HOME", str(home))
        assert main(["train"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(home) in err and "not writable" in err
    finally:
        home.chmod(0o700)


def test_run_works_in_a_fresh_process_without_a_usable_home(tmp_path):
    """The JAX disk cache is set up at import; an unusable home just means no cache."""
    program = tmp_path / "p.ann"
    program.write_text(PROGRAM)
    env = {**os.environ, "ANNC_HOME": str(_under_a_file(tmp_path))}
    env.pop("ANNC_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "annc", "run", str(program)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
