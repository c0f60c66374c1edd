"""The measurement store: rows kept, bad files reported and never touched, writers concurrent."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from annc import HomeError, StoreError
from annc.cli import main
from annc.dsl.records import Combination, Query, Record
from annc.hardware.calibration import store as store_module
from annc.hardware.calibration.reference_data import export_reference, load_reference
from annc.hardware.calibration.store import (
    SCHEMA_VERSION,
    CommunicationRow,
    MeasurementStore,
    now,
)
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.devices.home import annc_home, default_database, ensure_home
from annc.hardware.measure.settings import TimingSettings


def measurement(i: int = 0, variant: str = "numpy", shapes: object = None,
                **changes: object) -> Record:
    """A calibration record of a matmul (its query's complexity recorded, as the harness
    does)."""
    shapes = ((i + 1, 2), (2, 3)) if shapes is None else shapes
    values: dict[str, object] = dict(
        split="train", status="ok", seconds=1e-3 * (i + 1), spread=0.05, repeats=5,
        compile_s=0.0, threads={"cpus": "2"}, when=now(), fingerprint="abc",
        annc_version="0.1.0")
    values.update(changes)
    query = Query("matmul", shapes, "float32", 6.0 * (i + 1))  # type: ignore[arg-type]
    return Record(Combination("matmul", variant, "cpu"), query, source="calibration",
                  **values)  # type: ignore[arg-type]


def test_rows_round_trip_and_file_is_versioned_wal(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with MeasurementStore(path) as store:
        store.add(measurement(0))
        store.add(measurement(1, status="failed", seconds=None, error="boom"))
        rows = list(store.calibration("abc"))
        assert store.has("abc", rows[0].calibration_key)
        assert not store.has("other", rows[0].calibration_key)
    assert rows == [measurement(0, when=rows[0].when),
                    measurement(1, status="failed", seconds=None, error="boom",
                                when=rows[1].when)]
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
        store.add(measurement(0, fingerprint=fp.id, status="timeout", seconds=None,
                              spread=None, repeats=None, compile_s=None, error="slow"))
        for noise_pass, median in ((1, 1.0), (2, 1.1)):
            store.add(measurement(9, fingerprint=fp.id, split="noise", noise_pass=noise_pass,
                                  seconds=median))
        store.add_calibration_time(fp.id, 12.5)
        export_reference(store, fp, TimingSettings(), folder=tmp_path / "data")
        stored = list(store.calibration(fp.id))
    reference = load_reference(tmp_path / "data")
    assert reference is not None
    assert reference.metadata["calibration_s"] == 12.5
    assert reference.metadata["noise_floor"]["mape"] == pytest.approx(0.1)
    assert reference.metadata["rows"] == len(stored)
    loaded = [(m.calibration_key, m.status, m.seconds, m.error) for m in reference.measurements]
    assert loaded == [(m.calibration_key, m.status, m.seconds, m.error) for m in stored]
    assert reference.metadata["measured_from"] == min(m.when for m in stored)
    assert reference.metadata["measured_to"] == max(m.when for m in stored)


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
        stored = list(store.calibration(fp.id))
    reference = load_reference(tmp_path / "data")
    assert reference is not None
    assert [m.query.traits for m in reference.measurements] == [here, ()]
    assert all(m.query.traits == () for m in stored)
    assert [r.query.traits for r in to_training_rows(stored)] == [here, ()]


def test_reference_rows_without_a_time_leave_the_span_unknown(tmp_path: Path) -> None:
    """A reference merged from another one's rows (which keep no time) and a new run's
    cannot say when it was measured: both ends are empty, not the new run's span."""
    fp = fingerprint()
    with MeasurementStore(tmp_path / "m.sqlite") as store:
        store.add(measurement(0, fingerprint=fp.id, when=""))
        store.add(measurement(1, fingerprint=fp.id))
        export_reference(store, fp, TimingSettings(), folder=tmp_path / "data")
    reference = load_reference(tmp_path / "data")
    assert reference is not None
    assert reference.metadata["measured_from"] == reference.metadata["measured_to"] == ""


# Migration from schema 3 (calibration's `measurements` beside `observations`) ---------

FIXTURE = Path(__file__).parent / "data" / "store-v3.sqlite"
"""A schema-3 database written by the store of commit 8b7047c (before the one record
table): calibration rows of every status and split (a noise pass 1 and 2, a copy and a
region row among them), an observation of every source, a communication row."""

NAN = float("nan")
CPUS = {"cpus": "2"}


def _calibrated(kernel: str, variant: str, device: str, dtype: str, shapes: object,
                split: str, status: str, seconds: float | None, spread: float | None,
                repeats: int | None, compile_s: float | None, error: str | None,
                wall_s: float, noise_pass: int, threads: dict[str, str], when: str,
                fingerprint: str = "fp1") -> Record:
    return Record(Combination(kernel, variant, device),
                  Query(kernel, shapes, dtype, NAN), seconds,  # type: ignore[arg-type]
                  "calibration", spread=spread, repeats=repeats, compile_s=compile_s,
                  status=status, split=split, noise_pass=noise_pass, error=error,
                  wall_s=wall_s, threads=threads, when=when, fingerprint=fingerprint,
                  annc_version="0.1.0")


def _observed(kernel: str, variant: str, dtype: str, shapes: object, source: str,
              seconds: float, executions: int, predicted_s: float | None,
              when: str) -> Record:
    return Record(Combination(kernel, variant, "cpu"),
                  Query(kernel, shapes, dtype, NAN), seconds, source,  # type: ignore[arg-type]
                  repeats=executions, predicted_s=predicted_s, when=when, fingerprint="fp1",
                  annc_version="0.1.0")


FIXTURE_RECORDS = [
    _calibrated("matmul", "numpy", "cpu", "float32", ((8, 16), (16, 4)), "train", "ok",
                1.5e-5, 0.04, 12, 0.0, None, 0.31, 0, {"cpus": "2", "OMP_NUM_THREADS": "2"},
                "2026-12-01T10:00:00+00:00"),
    _calibrated("matmul", "jax", "cpu", "float64", ((32, 32), (32, 32)), "test", "ok",
                4.25e-5, 0.11, 40, 0.125, None, 1.02, 0, CPUS, "2026-12-01T10:00:01+00:00"),
    _calibrated("conv2d", "halide.tiled", "cpu", "float32", ((64, 64), (3, 3)), "noise", "ok",
                2e-4, 0.02, 7, 0.4, None, 0.9, 1, CPUS, "2026-12-01T10:00:02+00:00"),
    _calibrated("conv2d", "halide.tiled", "cpu", "float32", ((64, 64), (3, 3)), "noise", "ok",
                2.1e-4, 0.03, 7, 0.0, None, 0.5, 2, CPUS, "2026-12-01T10:00:03+00:00"),
    _calibrated("fft", "numpy", "opencl", "float32", ((1024,),), "train", "failed", None, None,
                None, None, "RuntimeError: no platform", 0.02, 0, {},
                "2026-12-01T10:00:04+00:00"),
    _calibrated("conv2d", "halide.auto", "cpu", "float64", ((512, 512), (31, 31)), "train",
                "timeout", None, None, None, None, "the measurement took longer than 60 s",
                60.0, 0, {}, "2026-12-01T10:01:04+00:00"),
    _calibrated("matmul", "halide.blocked", "gpu", "float32", ((4, 4), (4, 4)), "test",
                "crashed", None, None, None, None, "the worker process was killed by SIGSEGV",
                0.7, 0, {}, "2026-12-01T10:02:00+00:00", fingerprint="fp2"),
    _calibrated("copy", "to_device", "opencl", "float32", ((4096,),), "train", "ok", 3e-6, 0.5,
                100, None, None, 0.05, 0, CPUS, "2026-12-01T10:03:00+00:00"),
    _calibrated("region.map", "jax", "cpu", "float32", ((1, 4096, 3, 1, 12288, 0, 4096),),
                "train", "ok", 9e-6, 0.08, 30, 0.2, None, 0.6, 0, CPUS,
                "2026-12-01T10:04:00+00:00"),
    _observed("matmul", "numpy", "float64", ((128, 128), (128, 128)), "run", 2.5e-4, 20,
              2.2e-4, "2026-12-02T09:00:00+00:00"),
    _observed("matmul", "jax", "float64", ((128, 128), (128, 128)), "tune", 3.5e-4, 1, 3e-4,
              "2026-12-02T09:00:01+00:00"),
    _observed("conv2d", "numpy", "float32", ((256, 256), (5, 5)), "quick", 1.25e-3, 9, None,
              "2026-12-02T09:00:02+00:00"),
    _observed("conv2d", "halide.direct", "float32", ((256, 256), (5, 5)), "measure", 4e-4, 3,
              5e-4, "2026-12-02T09:00:03+00:00"),
]
"""What the fixture holds, as records: its measurements, then its observations."""


def _assert_fixture_rows(store: MeasurementStore) -> None:
    found = list(store.records())
    assert len(found) == len(FIXTURE_RECORDS)
    for got, want in zip(found, FIXTURE_RECORDS, strict=True):
        assert math.isnan(got.query.complexity)
        for name in [f.name for f in dataclasses.fields(Record) if f.name != "query"]:
            assert getattr(got, name) == getattr(want, name), name
        assert (got.query.kernel, got.query.shapes, got.query.dtype, got.query.traits) == (
            want.query.kernel, want.query.shapes, want.query.dtype, ())
    assert store.count("fp1") == 8 and store.count() == 9
    assert [o.source for o in store.observations("fp1")] == ["run", "tune", "quick", "measure"]
    assert store.calibration_time("fp1") == 123.5
    assert store.communication("fp1", "cpu", 4) == [CommunicationRow(
        "fp1", "cpu", 4, 1, 1, "all-reduce", 65536, 1.2e-4, 0.1, 20, "2026-12-03T08:00:00+00:00",
        "0.1.0")]


def _tables(path: Path) -> dict[str, int]:
    connection = sqlite3.connect(path)
    try:
        names = [n for (n,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        counts = {n: connection.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0]
                  for n in names if n != "meta"}
        counts["version"] = int(connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
        return counts
    finally:
        connection.close()


def test_a_schema_3_database_opens_with_every_row_as_a_record(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURE, path)
    assert _tables(path) == {"measurements": 9, "observations": 4, "communication": 1,
                             "version": 3}
    with MeasurementStore(path) as store:
        _assert_fixture_rows(store)
    assert _tables(path) == {"records": 13, "communication": 1, "version": SCHEMA_VERSION}
    with MeasurementStore(path) as store:  # opened again: nothing moves twice
        _assert_fixture_rows(store)


def test_a_migration_that_fails_leaves_the_old_database_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The step to schema 4 fails after it has copied every row and dropped the old
    tables: the one transaction rolls it all back, and the file opens again later."""
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURE, path)
    failing = {**store_module._MIGRATIONS}
    failing[3] += ";\nINSERT INTO records (kernel) VALUES ('incomplete')"
    monkeypatch.setattr(store_module, "_MIGRATIONS", failing)
    with pytest.raises(StoreError, match="left as it was") as error:
        MeasurementStore(path)
    assert str(path) in str(error.value) and "schema version 3 to" in str(error.value)
    assert _tables(path) == {"measurements": 9, "observations": 4, "communication": 1,
                             "version": 3}
    monkeypatch.undo()
    with MeasurementStore(path) as store:
        _assert_fixture_rows(store)


def test_merging_a_schema_3_store_migrates_a_copy_and_leaves_it_alone(tmp_path: Path) -> None:
    other = tmp_path / "node.sqlite"
    shutil.copy(FIXTURE, other)
    before = other.read_bytes()
    with MeasurementStore(tmp_path / "m.sqlite") as store:
        assert store.merge(other) == {"records": 13, "communication": 1}
        assert store.merge(other) == {"records": 0, "communication": 0}
        _assert_fixture_rows(store)
    assert other.read_bytes() == before


def test_the_shipped_reference_reads_as_calibration_records() -> None:
    reference = load_reference()
    assert reference is not None
    assert len(reference.measurements) == reference.metadata["rows"]
    assert {r.source for r in reference.measurements} == {"calibration"}
    assert {r.split for r in reference.measurements} <= {"train", "test", "noise"}
    assert all((r.seconds is None) == (r.status != "ok") for r in reference.measurements)


@pytest.mark.parametrize("version, dropped", [(2, ["communication"]),
                                              (1, ["communication", "observations"])])
def test_older_schemas_migrate_step_by_step(tmp_path: Path, version: int,
                                            dropped: list[str]) -> None:
    """A version-2 file (no communication table) and a version-1 file (no observations
    either), made from the schema-3 fixture, go through every later step."""
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURE, path)
    connection = sqlite3.connect(path)
    for table in dropped:
        connection.execute(f"DROP TABLE {table}")
    connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    connection.commit()
    connection.close()
    with MeasurementStore(path) as store:
        assert store.count() == 9
        assert len(store.observations()) == (0 if "observations" in dropped else 4)
        assert store.communication("fp1", "cpu", 4) == []
    assert _tables(path) == {"records": 9 + (0 if "observations" in dropped else 4),
                             "communication": 0, "version": SCHEMA_VERSION}
