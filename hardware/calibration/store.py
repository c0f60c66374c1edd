"""The measurement store: every record annc measures, in one SQLite file.

One table, `records`, keeps every `annc.dsl.records.Record`: calibration's
measurements (with their split and status) beside what annc measured while it was
used — `annc run` (each op's time per execution), `annc tune` (every candidate on
real shapes), `calibrate --quick` and the `--measure` step of selection; adaptation
learns from the latter. Calibration's rows are committed the moment they are taken, so
an interrupted or crashed calibration keeps everything it measured. The file is in WAL
mode with a busy timeout, so several calibrations may write to it at once. Beside the
records, `communication` keeps a mesh's collectives (`CommunicationRow`).

The schema is versioned in a `meta` table and older files are migrated when opened
for writing, one step per version (`_MIGRATIONS`), all steps in one transaction: a
failure anywhere leaves the file as it was. Version 1 had `measurements` alone, 2 added
`observations`, 3 `communication`; 4 moved `measurements` and `observations` into
`records`. A file that is not an annc measurement database (random bytes, a truncated
or corrupt database, another program's database, or one written by a newer annc) is
reported with its path and left exactly as it is: the store never overwrites or deletes
a file it did not create.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from annc.dsl.errors import StoreError
from annc.dsl.records import SOURCES, SPLITS, STATUSES, Combination, Query, Record
from annc.hardware.variants.registry import Shapes

SCHEMA_VERSION = 4

OBSERVATION_SOURCES = tuple(s for s in SOURCES if s != "calibration")
"""The sources of what annc measured while it was used (not calibrating)."""

BUSY_TIMEOUT_MS = 60_000
"""How long a writer waits for another one to finish its commit."""

_SQLITE_HEADER = b"SQLite format 3\x00"

_RECORDS = f"""
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    kernel TEXT NOT NULL,
    variant TEXT NOT NULL,
    device TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shapes TEXT NOT NULL,
    complexity REAL,
    traits TEXT NOT NULL DEFAULT '[]',
    source TEXT NOT NULL CHECK (source IN {SOURCES}),
    split TEXT NOT NULL DEFAULT '' CHECK (split IN {("", *SPLITS)}),
    pass INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN {STATUSES}),
    seconds REAL,
    spread REAL,
    repeats INTEGER,
    compile_s REAL,
    wall_s REAL,
    predicted_s REAL,
    base_s REAL,
    threads TEXT NOT NULL DEFAULT '{{}}',
    error TEXT,
    taken_at TEXT NOT NULL,
    annc_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_config
    ON records (fingerprint, kernel, variant, device, split, dtype, shapes, pass);
"""
"""The one table of records (schema 4). `complexity` is NULL where it was not recorded."""

_META = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_COMMUNICATION = """
CREATE TABLE IF NOT EXISTS communication (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    device TEXT NOT NULL,
    devices INTEGER NOT NULL,
    processes INTEGER NOT NULL,
    collective TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    median_s REAL NOT NULL,
    spread REAL NOT NULL,
    repeats INTEGER NOT NULL,
    taken_at TEXT NOT NULL,
    annc_version TEXT NOT NULL
);
"""
"""The `communication` table as first shipped (schema 3); `_HOSTS` adds its hosts."""

_OBSERVATIONS_V2 = """
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    kernel TEXT NOT NULL,
    variant TEXT NOT NULL,
    device TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shapes TEXT NOT NULL,
    source TEXT NOT NULL,
    seconds REAL NOT NULL,
    executions INTEGER NOT NULL,
    predicted_s REAL,
    taken_at TEXT NOT NULL,
    annc_version TEXT NOT NULL
);
"""
"""Version 2's `observations` (as it was), so that a version-1 file migrates through it."""

_RECORDS_FROM_V3 = """
INSERT INTO records (fingerprint, kernel, variant, device, dtype, shapes, source, split, pass,
                     status, seconds, spread, repeats, compile_s, wall_s, threads, error,
                     taken_at, annc_version)
    SELECT fingerprint, kernel, variant, device, dtype, shapes, 'calibration', split, pass,
           status, median_s, spread, repeats, compile_s, wall_s, threads, error, taken_at,
           annc_version
    FROM measurements ORDER BY id;
INSERT INTO records (fingerprint, kernel, variant, device, dtype, shapes, source, status,
                     seconds, repeats, predicted_s, taken_at, annc_version)
    SELECT fingerprint, kernel, variant, device, dtype, shapes, source, 'ok', seconds,
           executions, predicted_s, taken_at, annc_version
    FROM observations ORDER BY id;
DROP TABLE measurements;
DROP TABLE observations;
"""
"""Version 3 to 4: calibration's `measurements` then the `observations`, each in the order
taken, into `records` (an observation's executions become its repeats)."""

_HOSTS = """
ALTER TABLE communication ADD COLUMN hosts INTEGER NOT NULL DEFAULT 1;
"""
"""Version 3 to 4 as well, and part of a new file: a mesh's collectives are told apart
by the hosts its processes ran on; an older row was measured in one process, on one
host."""

_MIGRATIONS: dict[int, str] = {
    1: _OBSERVATIONS_V2,
    2: _COMMUNICATION,
    3: _RECORDS + _RECORDS_FROM_V3 + _HOSTS,
}
"""The statements that take a file from version N to N + 1."""

_SCHEMA = _META + _RECORDS + _COMMUNICATION + _HOSTS
"""A new file's tables, at `SCHEMA_VERSION`: made as an older file ends up migrated."""

_COLUMNS = ("fingerprint", "kernel", "variant", "device", "dtype", "shapes", "complexity",
            "traits", "source", "split", "pass", "status", "seconds", "spread", "repeats",
            "compile_s", "wall_s", "predicted_s", "base_s", "threads", "error", "taken_at",
            "annc_version")


def _row(record: Record) -> tuple[object, ...]:
    """A record as the values of `_COLUMNS`."""
    complexity = record.query.complexity
    return (record.fingerprint, record.kernel, record.variant, record.device, record.dtype,
            shapes_text(record.shapes), None if math.isnan(complexity) else complexity,
            json.dumps([list(t) for t in record.query.traits]), record.source, record.split,
            record.noise_pass, record.status, record.seconds, record.spread, record.repeats,
            record.compile_s, record.wall_s, record.predicted_s, record.base_s,
            json.dumps(record.threads, sort_keys=True), record.error, record.when,
            record.annc_version)


def _record(values: Sequence[Any]) -> Record:
    """A row of `_COLUMNS` as a record."""
    (fingerprint, kernel, variant, device, dtype, shapes, complexity, traits, source, split,
     noise_pass, status, seconds, spread, repeats, compile_s, wall_s, predicted_s, base_s,
     threads, error, when, version) = values
    query = Query(kernel, parse_shapes(shapes), dtype,
                  math.nan if complexity is None else float(complexity),
                  () if traits == "[]" else tuple((str(n), float(v))
                                                  for n, v in json.loads(traits)))
    return Record(Combination(kernel, variant, device), query, seconds, source, spread=spread,
                  repeats=repeats, compile_s=compile_s, status=status, split=split,
                  noise_pass=noise_pass, predicted_s=predicted_s, base_s=base_s, error=error,
                  wall_s=wall_s, threads=json.loads(threads), when=when,
                  fingerprint=fingerprint, annc_version=version)


_COMMUNICATION_COLUMNS = ("fingerprint", "device", "devices", "processes", "hosts",
                          "collective", "bytes", "median_s", "spread", "repeats", "taken_at",
                          "annc_version")


@dataclass(frozen=True)
class CommunicationRow:
    """One collective measured on a mesh: its bytes on one device and its time. A mesh
    of several processes (`annc calibrate --communication --distributed`) is told
    apart by its processes and by the hosts they ran on (loopback between processes
    of one host is not a network between hosts)."""

    fingerprint: str
    device: str
    devices: int
    processes: int
    hosts: int
    collective: str
    """XLA's name: `all-reduce`, `all-gather`, `collective-permute`, `all-to-all`."""
    bytes: int
    median_s: float
    spread: float
    repeats: int
    taken_at: str = ""
    annc_version: str = ""


_MERGED = {"records": _COLUMNS, "communication": _COMMUNICATION_COLUMNS}
"""The tables `merge` copies, with the columns that identify a row (all but its id)."""


def shapes_text(shapes: Shapes) -> str:
    """Shapes as the compact JSON stored in the `shapes` column, e.g. `[[8,16],[16]]`."""
    return json.dumps([list(s) for s in shapes], separators=(",", ":"))


def parse_shapes(text: str) -> Shapes:
    return tuple(tuple(int(d) for d in shape) for shape in json.loads(text))


@functools.cache
def annc_version() -> str:
    try:
        return importlib.metadata.version("annc")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def now() -> str:
    """The local time of day as ISO 8601 with its UTC offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _unusable(path: Path, what: str) -> StoreError:
    return StoreError(
        f"{path}: error: {what}. annc leaves this file as it is: move it aside (or pass "
        "--db with another path) and calibrate again"
    )


def _check_header(path: Path) -> None:
    """Rejects a non-empty file that does not start like an SQLite database."""
    try:
        with path.open("rb") as file:
            header = file.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as error:
        raise StoreError(f"{path}: error: cannot read the measurement database "
                         f"({error.strerror})") from None
    if header and header != _SQLITE_HEADER:
        raise _unusable(path, "this is not an SQLite database (unrecognised header)")


def _check_contents(path: Path, integrity: bool = True) -> None:
    """Reads an existing file without writing: integrity (where asked), then our schema and
    its version."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as error:
        raise StoreError(f"{path}: error: cannot open the measurement database "
                         f"({error})") from None
    try:
        result = connection.execute("PRAGMA quick_check").fetchall() if integrity else [("ok",)]
        if result != [("ok",)]:
            raise _unusable(path, f"the database is corrupt ({result[0][0]})")
        tables = {name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return
        if "meta" not in tables or not tables & {"records", "measurements"}:
            raise _unusable(path, "this SQLite database is not an annc measurement database")
        row = connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path}: error: the measurement database has schema version {version}, "
                f"newer than this annc understands ({SCHEMA_VERSION}); upgrade annc or pass "
                "--db with another path. The file is left as it is"
            )
        if version < 1:
            raise _unusable(path, "the measurement database has no schema version")
    except sqlite3.DatabaseError as error:
        raise _unusable(path, f"the database cannot be read ({error})") from None
    finally:
        connection.close()


def _write_ahead(connection: sqlite3.Connection) -> None:
    """Turns on write-ahead logging. Two processes creating the database at once: the
    one that does not get the lock for this is told "database is locked" at once,
    without SQLite's busy wait (seen in `test_two_calibrations_into_one_database_lose_
    nothing`), so it tries again, up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class MeasurementStore:
    """An open measurement database. Use as a context manager, or call `close()`."""

    def __init__(self, path: str | os.PathLike[str], integrity_check: bool = True) -> None:
        """Opens (or creates) the database. `integrity_check=False` skips SQLite's
        `quick_check`, whose cost grows with the file: for a writer of a few rows on a hot
        path (recording a run), where SQLite still reports corruption it meets."""
        self.path = Path(path)
        parent = self.path.parent
        if not parent.is_dir():
            raise StoreError(f"{self.path}: error: the folder {parent} does not exist")
        _check_header(self.path)
        if self.path.exists() and self.path.stat().st_size > 0:
            _check_contents(self.path, integrity_check)
        elif not os.access(parent, os.W_OK):
            raise StoreError(f"{self.path}: error: cannot create the measurement database: "
                             f"the folder {parent} is not writable")
        try:
            self._connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                               isolation_level=None)
            self._connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _write_ahead(self._connection)
            self._connection.execute("PRAGMA synchronous = NORMAL")
            self._create_schema()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path}: error: cannot open the measurement database for "
                             f"writing ({error})") from None

    def _create_schema(self) -> None:
        version = self._schema_version()
        if version == SCHEMA_VERSION:
            return  # every table is there: no write transaction needed
        try:
            with self._transaction():
                version = self._schema_version()  # another writer may have migrated it
                if version == 0:
                    _execute_script(self._connection, _SCHEMA)
                    self._connection.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)",
                        (now(),))
                else:
                    migrate(self._connection, version)
                self._connection.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),))
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: error: cannot migrate the measurement database "
                             f"from schema version {version} to {SCHEMA_VERSION} ({error}); "
                             "the file is left as it was") from None

    def _schema_version(self) -> int:
        try:
            row = self._connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:  # no meta table yet
            return 0
        return int(row[0]) if row else 0

    def _transaction(self) -> _Transaction:
        return _Transaction(self._connection)

    def __enter__(self) -> MeasurementStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def add(self, record: Record) -> None:
        """Writes and commits one record."""
        self.add_all([record])

    def add_all(self, records: Iterable[Record]) -> int:
        """Writes records in one transaction (all or none); returns how many."""
        rows = [_row(r) for r in records]
        if not rows:
            return 0
        try:
            with self._transaction():
                self._connection.executemany(
                    f"INSERT INTO records ({', '.join(_COLUMNS)}) VALUES "
                    f"({', '.join('?' for _ in _COLUMNS)})", rows)
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: error: cannot write records ({error})") from None
        return len(rows)

    def has(self, fingerprint: str, key: tuple[str, str, str, str, str, Shapes, int]) -> bool:
        """Whether a calibration record of this configuration (`Record.calibration_key`,
        any status) is already stored."""
        kernel, variant, device, split, dtype, shapes, noise_pass = key
        row = self._connection.execute(
            "SELECT 1 FROM records WHERE fingerprint = ? AND kernel = ? AND variant = ? "
            "AND device = ? AND split = ? AND dtype = ? AND shapes = ? AND pass = ? "
            "AND source = 'calibration' LIMIT 1",
            (fingerprint, kernel, variant, device, split, dtype, shapes_text(shapes),
             noise_pass)).fetchone()
        return row is not None

    def calibration_keys(self, fingerprint: str
                         ) -> set[tuple[str, str, str, str, str, Shapes, int]]:
        """Every configuration calibration already measured for this fingerprint."""
        return {r.calibration_key for r in self.records(fingerprint, ["calibration"])}

    def records(self, fingerprint: str | None = None,
                sources: Sequence[str] | None = None) -> Iterator[Record]:
        """Stored records (of one fingerprint and these sources, when given), in the order
        taken."""
        where, parameters = _where(fingerprint, sources)
        query = f"SELECT {', '.join(_COLUMNS)} FROM records{where} ORDER BY id"
        for values in self._connection.execute(query, parameters):
            yield _record(values)

    def calibration(self, fingerprint: str | None = None) -> Iterator[Record]:
        """The calibration's records (of one fingerprint, when given), in the order taken."""
        return self.records(fingerprint, ["calibration"])

    def observations(self, fingerprint: str | None = None,
                     sources: Sequence[str] | None = None) -> list[Record]:
        """What annc measured while it was used, not calibrating (of one fingerprint and
        these sources, when given), oldest first."""
        return list(self.records(fingerprint, sources or OBSERVATION_SOURCES))

    def add_calibration_time(self, fingerprint: str, seconds: float) -> None:
        """Adds to the wall time spent calibrating this fingerprint (over every run)."""
        key = f"calibration_s:{fingerprint}"
        with self._transaction():
            row = self._connection.execute("SELECT value FROM meta WHERE key = ?",
                                           (key,)).fetchone()
            total = float(row[0]) + seconds if row else seconds
            self._connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                     (key, repr(total)))

    def calibration_time(self, fingerprint: str) -> float:
        """Seconds spent calibrating this fingerprint, summed over every run."""
        row = self._connection.execute("SELECT value FROM meta WHERE key = ?",
                                       (f"calibration_s:{fingerprint}",)).fetchone()
        return float(row[0]) if row else 0.0

    def count(self, fingerprint: str | None = None,
              sources: Sequence[str] | None = ("calibration",)) -> int:
        """How many records (of one fingerprint, of these sources: by default the
        calibration's)."""
        where, parameters = _where(fingerprint, sources)
        return int(self._connection.execute(f"SELECT COUNT(*) FROM records{where}",
                                            parameters).fetchone()[0])

    # Communication (a mesh's collectives) ----------------------------------------

    def add_communication(self, rows: Iterable[CommunicationRow]) -> int:
        """Writes measured collectives in one transaction; returns how many."""
        values = [(r.fingerprint, r.device, r.devices, r.processes, r.hosts, r.collective,
                   r.bytes, r.median_s, r.spread, r.repeats, r.taken_at or now(),
                   r.annc_version or annc_version()) for r in rows]
        try:
            with self._transaction():
                self._connection.executemany(
                    f"INSERT INTO communication ({', '.join(_COMMUNICATION_COLUMNS)}) VALUES "
                    f"({', '.join('?' for _ in _COMMUNICATION_COLUMNS)})", values)
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: error: cannot write collectives ({error})") from None
        return len(values)

    def communication(self, fingerprint: str, device: str, devices: int,
                      processes: int = 1, hosts: int = 1) -> list[CommunicationRow]:
        """The collectives measured on a mesh of this many devices (and processes, and
        hosts) of this kind on this fingerprint, oldest first."""
        query = (f"SELECT {', '.join(_COMMUNICATION_COLUMNS)} FROM communication WHERE "
                 "fingerprint = ? AND device = ? AND devices = ? AND processes = ? "
                 "AND hosts = ? ORDER BY id")
        return [CommunicationRow(*row) for row in self._connection.execute(
            query, (fingerprint, device, devices, processes, hosts))]

    def merge(self, other: str | os.PathLike[str]) -> dict[str, int]:
        """Adds every row of another store (another node's calibration) that this one
        lacks, in one transaction; the other is only read. Returns the rows added per
        table. Merging twice adds nothing the second time."""
        path = Path(other)
        _check_header(path)
        _check_contents(path)
        try:
            source = _current(sqlite3.connect(f"file:{path}?mode=ro", uri=True))
        except sqlite3.Error as error:
            raise StoreError(f"{path}: error: cannot read it ({error})") from None
        added = {}
        try:
            tables = {row[0] for row in source.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            with self._transaction():
                for table, columns in _MERGED.items():
                    added[table] = 0
                    if table not in tables:
                        continue
                    names = ", ".join(columns)
                    present = set(self._connection.execute(f"SELECT {names} FROM {table}"))
                    new = [row for row in source.execute(
                        f"SELECT {names} FROM {table}")
                        if row not in present]
                    self._connection.executemany(
                        f"INSERT INTO {table} ({names}) VALUES "
                        f"({', '.join('?' for _ in columns)})", new)
                    added[table] = len(new)
                for key, value in source.execute(
                        "SELECT key, value FROM meta WHERE key LIKE 'calibration_s:%'"):
                    self._connection.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
        except sqlite3.Error as error:
            raise StoreError(f"{path}: error: cannot merge it ({error})") from None
        finally:
            source.close()
        return added


def _current(connection: sqlite3.Connection) -> sqlite3.Connection:
    """The database of `connection` at this schema version: itself, or (an older file,
    left as it is) a migrated copy in memory."""
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row else SCHEMA_VERSION
    if version == SCHEMA_VERSION:
        return connection
    copy = sqlite3.connect(":memory:", isolation_level=None)
    connection.backup(copy)
    connection.close()
    migrate(copy, version)
    return copy


def migrate(connection: sqlite3.Connection, version: int) -> None:
    """Runs the steps from `version` to `SCHEMA_VERSION`, in the caller's transaction."""
    for step in range(version, SCHEMA_VERSION):
        _execute_script(connection, _MIGRATIONS[step])


def _execute_script(connection: sqlite3.Connection, script: str) -> None:
    """Runs `;`-separated statements one by one (`executescript` would commit first)."""
    for statement in script.split(";"):
        if statement.strip():
            connection.execute(statement)


def _where(fingerprint: str | None, sources: Sequence[str] | None) -> tuple[str, list[str]]:
    """The `WHERE` clause (or nothing) and its parameters for a fingerprint and sources."""
    clauses, parameters = [], []
    if fingerprint is not None:
        clauses.append("fingerprint = ?")
        parameters.append(fingerprint)
    if sources is not None:
        clauses.append(f"source IN ({', '.join('?' for _ in sources)})")
        parameters += list(sources)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), parameters


class _Transaction:
    """`BEGIN IMMEDIATE` … `COMMIT` (rolled back on an exception)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._connection.execute("ROLLBACK" if exc_type else "COMMIT")
