"""What `calibrate --quick` says about the choices its adapting moved."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_fixtures import install_for_this_machine, model_set

from annc.choices import moved, recent_choices
from annc.history import RECENT, ProgramSource, count_run, recent_programs

PRODUCT = "param N = 64\ninput A : f64[N, N]\nC = matmul(A, A)\noutput C\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("ANNC_HOME", str(path))
    return path


def _ran(text: str, filename: str = "p.ann", params: dict[str, str] | None = None) -> None:
    source = ProgramSource(text, filename, params or {}, ["cpu"])
    count_run(source.key, source)


def _models(home: Path, numpy_s: float, strassen_s: float) -> None:
    install_for_this_machine(model_set({("matmul", "numpy", "cpu"): numpy_s,
                                        ("matmul", "strassen", "cpu"): strassen_s}), home)


def test_a_choice_that_moved_is_named_with_its_program(home: Path) -> None:
    _models(home, 1e-3, 3e-3)
    _ran(PRODUCT, params={"N": "32"})
    _ran(PRODUCT.replace("matmul(A, A)", "A + A"), "sum.ann")
    before = recent_choices()
    assert [c.source.filename for c in before] == ["sum.ann", "p.ann"]
    assert before[1].choices == {"#0 matmul at p.ann:3:5": "numpy on cpu"}
    _models(home, 1e-3, 0.5e-3)
    assert moved(before) == [
        "choices that moved in the 2 programs run last on this machine:",
        "  p.ann -D N=32 --target cpu",
        "    #0 matmul at p.ann:3:5: numpy on cpu → strassen on cpu"]
    assert moved(recent_choices()) == ["choices: none moved in the 2 programs run last on "
                                       "this machine"]


def test_only_the_programs_run_last_keep_their_source(home: Path) -> None:
    assert moved([]) == ["choices: no program has run on this machine yet, so none to "
                         "compare"]
    for n in range(RECENT + 2):
        _ran(PRODUCT, params={"N": str(n + 1)})
    _ran(PRODUCT, params={"N": "1"})  # ran again: the most recent
    assert [p.params["N"] for p in recent_programs()] == ["1", "7", "6", "5", "4"]
