"""Inputs by rows (`hardware.execution.drawing`, `hardware.execution.shard_inputs`): any
block of rows of a generated input, drawn alone, holds the values of the whole stream
that `numpy.random.default_rng(seed)` draws in declaration order (so a seed's numbers
are those of earlier versions), and an archive's inputs are read a block of rows at a
time, mapped where stored uncompressed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annc.dsl.errors import DataError, MissingInputsError
from annc.hardware.execution.drawing import draw_block, positions
from annc.hardware.execution.rundata import InputSpec, generated_inputs, prepare_inputs
from annc.hardware.execution.shard_inputs import RowSource, drawn_by_rows, read_by_rows

# f32 and f64 mixed, odd sizes among them: an odd f32 leaves half a draw for the next
SPECS = [InputSpec("A", np.dtype(np.float32), (7, 3)), InputSpec("b", np.dtype(np.float64), ()),
         InputSpec("C", np.dtype(np.float64), (5, 4)), InputSpec("D", np.dtype(np.float32), (9,)),
         InputSpec("E", np.dtype(np.float32), (6, 2))]


def _stream(seed: int) -> list[np.ndarray]:
    """The values as one generator draws them, in declaration order."""
    rng = np.random.default_rng(seed)
    return [rng.random(spec.shape, dtype=spec.dtype) for spec in SPECS]


@pytest.mark.parametrize("seed", [0, 7, 2**70])
def test_generated_inputs_are_the_one_stream_of_the_seed(seed):
    for got, want in zip(generated_inputs(SPECS, seed), _stream(seed), strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_every_block_of_every_input_is_drawn_alone_with_the_streams_values():
    starts = positions([(spec.dtype, int(np.prod(spec.shape))) for spec in SPECS])
    for spec, start, want in zip(SPECS, starts, _stream(3), strict=True):
        flat = want.ravel()
        for first in range(flat.size + 1):
            for stop in range(first, flat.size + 1):
                got = draw_block(3, start, spec.dtype, first, stop)
                assert np.array_equal(got, flat[first:stop]), (spec.name, first, stop)


def test_a_given_input_leaves_the_others_their_values():
    given = {"A": np.zeros((7, 3)), "D": np.ones(9)}
    arrays = prepare_inputs(SPECS, given, 5, generate_missing=True).arrays
    for spec, got, want in zip(SPECS, arrays, _stream(5), strict=True):
        if spec.name not in given:
            assert np.array_equal(got, want), spec.name


def test_inputs_drawn_by_rows_give_any_rows_alone():
    by_rows = drawn_by_rows(SPECS, 11)
    for got, want in zip(by_rows.arrays, _stream(11), strict=True):
        if isinstance(got, RowSource):
            assert np.array_equal(got.rows(2, 5), want[2:5])
            index = (slice(1, 4), *[slice(1, 2)] * (want.ndim - 1))
            assert np.array_equal(got.block(index), want[index])
            assert np.array_equal(got.whole(), want)
        else:
            assert np.array_equal(got, want)  # a 0-d input is whole


def _specs() -> list[InputSpec]:
    return [InputSpec("T", np.dtype(np.float32), (64, 8)),
            InputSpec("n", np.dtype(np.float64), (6,)), InputSpec("a", np.dtype(np.float64), ())]


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_an_archive_is_read_by_rows_and_converted_as_a_whole_input_is(tmp_path: Path, save):
    field = np.random.default_rng(0).random((64, 8))
    path = tmp_path / "in.npz"
    save(path, T=field, n=np.arange(6), a=np.float64(2.5), other=np.zeros(2))
    by_rows = read_by_rows(_specs(), str(path))
    source = by_rows.arrays[0]
    assert isinstance(source, RowSource)
    rows = source.rows(16, 24)
    assert rows.dtype == np.float32 and np.array_equal(rows, field[16:24].astype(np.float32))
    assert np.array_equal(by_rows.arrays[2], np.float64(2.5))
    assert any("n (int64 to f64)" in note for note in by_rows.notes)
    assert any("other" in note for note in by_rows.notes)


def test_an_uncompressed_archive_is_mapped_not_read(tmp_path: Path):
    from annc.hardware.execution.shard_inputs import _members

    np.savez(tmp_path / "in.npz", T=np.ones((64, 8)))
    assert isinstance(_members(str(tmp_path / "in.npz"))["T"](), np.memmap)


def test_an_archive_that_lacks_an_input_or_holds_a_wrong_one_is_refused(tmp_path: Path):
    np.savez(tmp_path / "short.npz", T=np.ones((64, 8)))
    with pytest.raises(MissingInputsError, match="n"):
        read_by_rows(_specs(), str(tmp_path / "short.npz"))
    np.savez(tmp_path / "wrong.npz", T=np.ones((32, 8)), n=np.ones(6), a=1.0)
    with pytest.raises(DataError, match="shape"):
        read_by_rows(_specs(), str(tmp_path / "wrong.npz"))
    np.savez(tmp_path / "complex.npz", T=np.ones((64, 8), complex), n=np.ones(6), a=1.0)
    with pytest.raises(DataError, match="imaginary"):
        read_by_rows(_specs(), str(tmp_path / "complex.npz"))
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(DataError, match=r"not an \.npz archive"):
        read_by_rows(_specs(), str(tmp_path / "text.npz"))
    with pytest.raises(DataError, match="no such file"):
        read_by_rows(_specs(), str(tmp_path / "missing.npz"))
