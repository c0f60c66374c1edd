"""Inputs are taken as given (issue 31, item 6): with `--inputs` (or `inputs=` in
Python) every input the program declares must be there, unless the missing ones are
asked for (`--generate-missing`, `generate_missing=True`), and then a note names each;
integers and booleans are converted only with a note; a finite f64 that f32 cannot
hold, or a complex value, is refused; `--seed` and the options in seconds take only
what they can use, as usage errors (exit 2) otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import annc
from annc.cli import main

pytestmark = pytest.mark.fault

PROGRAM = """
param N = 4
input K : f64[N, N]   # a stiffness matrix
input b : f64[N]
input s : f32
x = matvec(K, b)
y = s * s
output K, b, s, x, y
"""


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "stiff.ann"
    path.write_text(PROGRAM)
    return path


def _run(*args: str | Path) -> int:
    return main(["run", *map(str, args), "--builds", "never", "--no-record"])


def _archive(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _saved(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


# Missing inputs ---------------------------------------------------------------------


def test_an_archive_missing_inputs_is_refused_listing_each_with_its_type(
        program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = _archive(tmp_path / "in.npz", b=np.arange(4.0))
    out = tmp_path / "out.npz"
    assert _run(program, "--inputs", archive, "--save", out) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{archive}: 2 of the program's 3 inputs missing: "
                          "K : f64[4, 4], s : f32. Add them to the archive, or pass "
                          "--generate-missing")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_misspelt_name_shows_as_missing_and_as_not_declared(
        program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = _archive(tmp_path / "in.npz", k=np.eye(4), b=np.arange(4.0),
                       s=np.float32(2))
    assert _run(program, "--inputs", archive) == 1
    err = capsys.readouterr().err
    assert "1 of the program's 3 inputs missing: K : f64[4, 4]." in err
    assert "Given but not declared by the program: k." in err


def test_arrays_saved_without_a_name_are_explained(
        program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "in.npz"
    np.savez(archive, np.eye(4), np.arange(4.0), np.float32(2))
    assert _run(program, "--inputs", archive) == 1
    err = capsys.readouterr().err
    assert "3 of the program's 3 inputs missing" in err
    assert "arr_0, arr_1, arr_2 (numpy.savez names arrays passed without a name" in err


def test_generate_missing_draws_the_values_a_run_without_inputs_draws(
        program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    given_b = np.array([1.0, -2.0, 3.0, 0.5])
    archive = _archive(tmp_path / "in.npz", b=given_b)
    assert _run(program, "--seed", "11", "--save", tmp_path / "all.npz") == 0
    capsys.readouterr()
    assert _run(program, "--inputs", archive, "--generate-missing", "--seed", "11",
                "--save", tmp_path / "some.npz") == 0
    err = capsys.readouterr().err
    assert ("note: generated the inputs not given, uniform in [0, 1) from seed 11: "
            "K : f64[4, 4], s : f32") in err
    everything, some = _saved(tmp_path / "all.npz"), _saved(tmp_path / "some.npz")
    np.testing.assert_array_equal(some["K"], everything["K"])
    np.testing.assert_array_equal(some["s"], everything["s"])  # after b's draws
    np.testing.assert_array_equal(some["b"], given_b)
    np.testing.assert_allclose(some["x"], some["K"] @ given_b, rtol=1e-12)


def test_the_python_api_takes_inputs_as_given_too(program: Path) -> None:
    with pytest.raises(annc.MissingInputsError) as caught:
        annc.run_file(program, inputs={"K": np.eye(4)}, builds="never")
    error = caught.value
    assert isinstance(error, annc.DataError)
    assert error.missing == {"b": "f64[4]", "s": "f32"} and error.declared == 3
    assert str(error).startswith("inputs: 2 of the program's 3 inputs missing: b : f64[4], "
                                 "s : f32. Give them, or pass generate_missing=True")
    result = annc.run_file(program, inputs={"K": np.eye(4)}, generate_missing=True,
                           seed=3, builds="never")
    assert "note: generated the inputs not given, uniform in [0, 1) from seed 3: " \
           "b : f64[4], s : f32" in result.notes
    assert result.report["notes"] == result.notes
    everything = annc.run_file(program, seed=3, builds="never")
    assert not any("generated" in note for note in everything.notes)
    np.testing.assert_array_equal(result.outputs["b"], everything.outputs["b"])
    np.testing.assert_array_equal(result.outputs["K"], np.eye(4))


def test_inputs_that_are_no_mapping_are_refused(program: Path) -> None:
    with pytest.raises(annc.DataError, match="inputs: expected a mapping of input names "
                       "to arrays, got list"):
        annc.run_file(program, inputs=[np.eye(4)], builds="never")  # type: ignore[arg-type]


def test_arrays_the_program_does_not_declare_are_named_in_a_note(
        program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = _archive(tmp_path / "in.npz", K=np.eye(4), b=np.ones(4), s=np.float32(1),
                       extra=np.zeros(3))
    assert _run(program, "--inputs", archive, "--report", "json") == 0
    captured = capsys.readouterr()
    note = "note: ignoring arrays the program does not declare as inputs: extra"
    assert note in captured.err
    assert note in json.loads(captured.out)["notes"]


# Conversion ------------------------------------------------------------------------


def test_integers_and_booleans_are_converted_with_a_note_naming_each(
        program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = _archive(tmp_path / "in.npz", K=np.eye(4, dtype=np.int32),
                       b=np.array([True, False, True, True]), s=np.float64(0.5))
    assert _run(program, "--inputs", archive, "--save", tmp_path / "out.npz") == 0
    err = capsys.readouterr().err
    assert "note: converted to the declared dtype: K (int32 to f64), b (bool to f64)" in err
    assert "s (" not in err  # a float narrowed without overflow is rounding, as in numpy
    saved = _saved(tmp_path / "out.npz")
    assert saved["K"].dtype == np.float64 and saved["s"].dtype == np.float32
    np.testing.assert_array_equal(saved["x"], [1.0, 0.0, 1.0, 1.0])


def test_a_finite_f64_beyond_f32s_range_is_refused_at_its_index(tmp_path: Path) -> None:
    path = tmp_path / "f32.ann"
    path.write_text("input A : f32[2, 3]\ninput c : f32\nB = A * c\noutput B\n")
    values = np.ones((2, 3))
    values[0, 0] = np.inf  # already infinite: kept, as numpy keeps it
    values[1, 2] = -1e300
    with pytest.raises(annc.DataError) as caught:
        annc.run_file(path, inputs={"A": values, "c": 1.0}, builds="never")
    assert str(caught.value) == (
        "input A: A[1, 2] = -1e+300 is beyond the range of f32 (largest 3.40282e+38) and "
        "would become inf; declare A as f64, or scale the data")
    with pytest.raises(annc.DataError, match=r"input c: c = 1e\+39 is beyond"):
        annc.run_file(path, inputs={"A": np.ones((2, 3)), "c": 1e39}, builds="never")
    largest = float(np.finfo(np.float32).max)  # f32's largest value is no overflow
    result = annc.run_file(path, inputs={"A": np.full((2, 3), largest), "c": 0.5},
                           builds="never")
    assert np.all(np.isfinite(result.outputs["B"]))


def test_an_overflowing_input_on_the_command_line_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f32.ann"
    path.write_text("input A : f32[3]\nB = A * A\noutput B\n")
    archive = _archive(tmp_path / "in.npz", A=np.array([1.0, 5e38, 2.0]))
    assert _run(path, "--inputs", archive) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("input A: A[1] = 5e+38 is beyond the range of f32 (largest "
                           "3.40282e+38) and would become inf; declare A as f64, or scale "
                           "the data")


@pytest.mark.parametrize(("value", "message"), [
    (np.array([1 + 2j, 3.0]), r"input A: complex128 data, not real numbers: as f64\[2\] its "
                              r"imaginary part would be lost \(give A.real"),
    (np.array(["1", "2"]), r"input A: <U1 data, not real numbers"),
    (np.array([1.0, 2.0, 3.0]), r"input A: given an array of shape \[3\] but the program "
                                r"declares f64\[2\]"),
    ([[1.0], [2.0, 3.0]], r"input A: not an array of numbers"),
], ids=["complex", "text", "shape", "ragged"])
def test_data_that_are_not_the_declared_real_array_are_refused(
        tmp_path: Path, value: object, message: str) -> None:
    path = tmp_path / "c.ann"
    path.write_text("input A : f64[2]\nB = A * A\noutput B\n")
    with pytest.raises(annc.DataError, match=message):
        annc.run_file(path, inputs={"A": value}, builds="never")  # type: ignore[dict-item]


# Seeds and other numbers of the command line ------------------------------------------


@pytest.mark.parametrize("seed", ["-5", "1.5", "zero", "", "9" * 5000])
def test_a_seed_numpy_cannot_take_is_a_usage_error(
        program: Path, seed: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        _run(program, f"--seed={seed}")
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "usage: annc run" in err
    assert "argument --seed: expected a non-negative integer of at most 4300 digits" in err
    assert len(err) < 2000  # a long value is shortened, not echoed whole


def test_any_non_negative_seed_runs_and_a_bad_one_fails_before_compiling(
        program: Path, tmp_path: Path) -> None:
    assert _run(program, "--seed", str(2**200), "--save", tmp_path / "out.npz") == 0
    expected = np.random.default_rng(2**200).random((4, 4))
    np.testing.assert_array_equal(_saved(tmp_path / "out.npz")["K"], expected)
    missing = tmp_path / "no-such.ann"
    for seed in (-5, 1.5, True, None):
        with pytest.raises(annc.DataError, match="seed: expected a non-negative integer"):
            annc.run_file(missing, seed=seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("args", [
    ("tune", "stiff.ann", "--timeout", "nan"),
    ("tune", "stiff.ann", "--timeout", "0"),
    ("tune", "stiff.ann", "--timeout", "inf"),
    ("calibrate", "--budget", "nan"),
    ("calibrate", "--budget", "-1"),
    ("calibrate", "--timeout", "1e400"),
], ids=lambda value: " ".join(value) if isinstance(value, tuple) else value)
def test_an_option_in_seconds_takes_a_finite_positive_number(
        args: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(list(args))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {args[-2]}: expected a positive number of seconds, got '{args[-1]}'" \
        in err
