"""The measurement store: rows kept, bad files reported and never touched, writers concurrent."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from annc import HomeError, StoreError
from annc.cli import main
from annc.hardware.calibration.reference_data import export_reference, load_reference
from annc.hardware.calibration.store import SCHEMA_VERSION, Measurement, MeasurementStore, now
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.devices.home import annc_home, default_database, ensure_home
from annc.hardware.measure.settings import TimingSettings


def measurement(i: int = 0, **changes: object) -> Measurement:
    values: dict[str, object] = dict(
        fingerprint="abc", kernel="matmul", variant="numpy", device="cpu", dtype="float32",
        shapes=((i + 1, 2), (2, 3)), split="train", status="ok", median_s=1e-3 * (i + 1),
        spread=0.05, repeats=5, compile_s=0.0, threads={"cpus": "2"}, taken_at=now(),
        annc_version="0.1.0")
    values.update(changes)
    return Measurement(**values)  # type: ignore[arg-type]


def test_rows_round_trip_and_file_is_versioned_wal(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with MeasurementStore(path) as store:
        store.add(measurement(0))
        store.add(measurement(1, status="failed", median_s=None, error="boom"))
        rows = list(store.measurements("abc"))
        assert store.has("abc", rows[0].config)
        assert not store.has("other", rows[0].config)
    assert rows == [measurement(0, taken_at=rows[0].taken_at),
                    measurement(1, status="failed", median_s=None, error="boom",
                                taken_at=rows[1].taken_at)]
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                              ).fetchone() == (str(SCHEMA_VERSION),)


def test_reopening_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with MeasurementStore(path) as store:
        store.add(measurement(0))
    with MeasurementStore(path) as store:
        store.add(measurement(1))
        assert store.count() == 2


def _assert_refused(path: Path, *words: str) -> None:
    before = path.read_bytes()
    with pytest.raises(StoreError) as error:
        MeasurementStore(path)
    assert str(path) in str(error.value)
    for word in words:
        assert word in str(error.value)
    assert path.read_bytes() == before


def test_random_bytes_are_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    path.write_bytes(os.urandom(10_000))
    _assert_refused(path, "not an SQLite database", "move it aside")


def test_truncated_database_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with MeasurementStore(path) as store:
        for i in range(300):
            store.add(measurement(i, error="x" * 200))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_refused(path)


def test_newer_schema_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with MeasurementStore(path) as store:
        store.add(measurement())
    connection = sqlite3.connect(path)
    connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                       (str(SCHEMA_VERSION + 1),))
    connection.commit()
    connection.close()
    _assert_refused(path, f"schema version {SCHEMA_VERSION + 1}")


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE things (x)")
    connection.commit()
    connection.close()
    _assert_refused(path, "not an annc measurement database")


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        MeasurementStore(tmp_path / "nowhere" / "m.sqlite")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_home_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o500)
    monkeypatch.setenv("ANNC_HOME", str(home))
    with pytest.raises(HomeError, match="not writable"):
        ensure_home()


def test_home_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANNC_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert annc_home() == tmp_path / "cache" / "annc"
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "mine"))
    assert default_database() == tmp_path / "mine" / "measurements.sqlite"
    assert (tmp_path / "mine").is_dir()


def test_calibrate_on_a_corrupt_database_exits_1_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.sqlite"
    data = b"not a database at all" * 100
    path.write_bytes(data)
    assert main(["calibrate", "--kernels", "neg", "--budget", "5", "--db", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err
    assert path.read_bytes() == data


def _write_rows(path: str, worker: int, count: int) -> None:
    with MeasurementStore(path) as store:
        for i in range(count):
            store.add(measurement(i, variant=f"writer{worker}"))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "m.sqlite")
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_rows, args=(path, w, 150)) for w in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    with MeasurementStore(path) as store:
        assert store.count() == 450


def test_reference_data_round_trip(tmp_path: Path) -> None:
    fp = fingerprint()
    with MeasurementStore(tmp_path / "m.sqlite") as store:
        for i in range(5):
            store.add(measurement(i, fingerprint=fp.id))
        store.add(measurement(0, fingerprint=fp.id, status="timeout", median_s=None,
                              spread=None, repeats=None, compile_s=None, error="slow"))
        for noise_pass, median in ((1, 1.0), (2, 1.1)):
            store.add(measurement(9, fingerprint=fp.id, split="noise", noise_pass=noise_pass,
                                  median_s=median))
        store.add_calibration_time(fp.id, 12.5)
        export_reference(store, fp, TimingSettings(), folder=tmp_path / "data")
        stored = list(store.measurements(fp.id))
    reference = load_reference(tmp_path / "data")
    assert reference is not None
    assert reference.metadata["calibration_s"] == 12.5
    assert reference.metadata["noise_floor"]["mape"] == pytest.approx(0.1)
    assert reference.metadata["rows"] == len(stored)
    loaded = [(m.config, m.status, m.median_s, m.error) for m in reference.measurements]
    assert loaded == [(m.config, m.status, m.median_s, m.error) for m in stored]
    assert reference.metadata["measured_from"] == min(m.taken_at for m in stored)
    assert reference.metadata["measured_to"] == max(m.taken_at for m in stored)


def test_reference_data_keeps_the_traits_of_the_machine_that_measured(tmp_path: Path) -> None:
    """Exported rows of Mullapudi2016 take their schedule's decision along; training
    rows from a database, which keeps none, get this machine's."""
    from annc.hardware.variants import traits_of
    from annc.modeling import to_training_rows

    fp = fingerprint()
    shapes = ((13, 13), (13, 13))
    here = traits_of("matmul", "halide.auto.mullapudi2016", "cpu", shapes, "f32")
    assert [name for name, _ in here] == ["fused"]
    with MeasurementStore(tmp_path / "m.sqlite") as store:
        store.add(measurement(0, fingerprint=fp.id, variant="halide.auto.mullapudi2016",
                              shapes=shapes))
        store.add(measurement(1, fingerprint=fp.id))
        export_reference(store, fp, TimingSettings(), folder=tmp_path / "data")
        stored = list(store.measurements(fp.id))
    reference = load_reference(tmp_path / "data")
    assert reference is not None
    assert [m.traits for m in reference.measurements] == [here, ()]
    assert all(m.traits == () for m in stored)
    assert [r.config.traits for r in to_training_rows(stored)] == [here, ()]


def test_reference_rows_without_a_time_leave_the_span_unknown(tmp_path: Path) -> None:
    """A reference merged from another one's rows (which keep no time) and a new run's
    cannot say when it was measured: both ends are empty, not the new run's span."""
    fp = fingerprint()
    with MeasurementStore(tmp_path / "m.sqlite") as store:
        store.add(measurement(0, fingerprint=fp.id, taken_at=""))
        store.add(measurement(1, fingerprint=fp.id))
        export_reference(store, fp, TimingSettings(), folder=tmp_path / "data")
    reference = load_reference(tmp_path / "data")
    assert reference is not None
    assert reference.metadata["measured_from"] == reference.metadata["measured_to"] == ""
