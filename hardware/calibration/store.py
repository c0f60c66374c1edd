"""The measurement store: every timing calibration takes, in one SQLite file.

One row per measurement, committed the moment it is taken, so an interrupted
or crashed calibration keeps everything it measured. The file is in WAL mode
with a busy timeout, so several calibrations may write to it at once.

Beside the calibration's `measurements`, the `observations` table keeps what
annc measured while it was used: `annc run` (each op's time per execution),
`annc tune` (every candidate on real shapes), `calibrate --quick` and the
`--measure` step of selection. Adaptation learns from these rows.

The schema is versioned in a `meta` table (version 1 had no `observations`;
opening such a file for writing adds the table and moves it to version 2).
A file that is not an annc measurement database (random bytes, a truncated or
corrupt database, another program's database, or one written by a newer annc)
is reported with its path and left exactly as it is: the store never overwrites or deletes a file it
did not create.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from annc.dsl.errors import StoreError
from annc.hardware.variants.registry import Shapes

SCHEMA_VERSION = 4

SPLITS = ("train", "test", "noise")
OBSERVATION_SOURCES = ("run", "tune", "quick", "measure")
"""Where an observation comes from: `annc run`, `annc tune`, `calibrate --quick`, or
selection measuring close candidates (`--measure`)."""
STATUSES = ("ok", "failed", "timeout", "crashed")

BUSY_TIMEOUT_MS = 60_000
"""How long a writer waits for another one to finish its commit."""

_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    kernel TEXT NOT NULL,
    variant TEXT NOT NULL,
    device TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shapes TEXT NOT NULL,
    split TEXT NOT NULL CHECK (split IN {SPLITS}),
    pass INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN {STATUSES}),
    median_s REAL,
    spread REAL,
    repeats INTEGER,
    compile_s REAL,
    wall_s REAL,
    threads TEXT NOT NULL DEFAULT '{{}}',
    error TEXT,
    taken_at TEXT NOT NULL,
    annc_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS measurements_by_config
    ON measurements (fingerprint, kernel, variant, device, split, dtype, shapes, pass);
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    kernel TEXT NOT NULL,
    variant TEXT NOT NULL,
    device TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shapes TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN {OBSERVATION_SOURCES}),
    seconds REAL NOT NULL,
    executions INTEGER NOT NULL,
    predicted_s REAL,
    taken_at TEXT NOT NULL,
    annc_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS observations_by_config
    ON observations (fingerprint, kernel, variant, device, dtype, shapes);
CREATE TABLE IF NOT EXISTS communication (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    device TEXT NOT NULL,
    devices INTEGER NOT NULL,
    processes INTEGER NOT NULL,
    hosts INTEGER NOT NULL DEFAULT 1,
    collective TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    median_s REAL NOT NULL,
    spread REAL NOT NULL,
    repeats INTEGER NOT NULL,
    taken_at TEXT NOT NULL,
    annc_version TEXT NOT NULL
);
"""

_COLUMNS = ("fingerprint", "kernel", "variant", "device", "dtype", "shapes", "split", "pass",
            "status", "median_s", "spread", "repeats", "compile_s", "wall_s", "threads", "error",
            "taken_at", "annc_version")


@dataclass(frozen=True)
class Measurement:
    """One measurement of one variant on one configuration (or why there is none)."""

    fingerprint: str
    kernel: str
    variant: str
    device: str
    dtype: str
    """`float32` or `float64`."""
    shapes: Shapes
    split: str
    """`train`, `test` or `noise` (the noise-floor passes)."""
    status: str
    """`ok`, or `failed` (the variant raised), `timeout`, `crashed` (its process died)."""
    median_s: float | None = None
    spread: float | None = None
    repeats: int | None = None
    compile_s: float | None = None
    error: str | None = None
    wall_s: float | None = None
    """Seconds the whole measurement took (build, warm-up and repeats), for planning."""
    noise_pass: int = 0
    """1 or 2 for the two passes of the noise floor; 0 otherwise."""
    threads: dict[str, str] = field(default_factory=dict)
    taken_at: str = ""
    annc_version: str = ""
    traits: tuple[tuple[str, float], ...] = ()
    """What the variant decided for these shapes on the measuring machine
    (`hardware.variants.halide.schedule_traits`), where the rows come with them (the
    shipped reference); not stored in the database, whose rows are this machine's."""

    @property
    def config(self) -> tuple[str, str, str, str, str, Shapes, int]:
        """What identifies the measured configuration (for resuming and comparing)."""
        return (self.kernel, self.variant, self.device, self.split, self.dtype, self.shapes,
                self.noise_pass)

    def as_row(self) -> dict[str, object]:
        """The row as plain data (shapes as lists), e.g. for JSON or CSV."""
        return {
            "fingerprint": self.fingerprint, "kernel": self.kernel, "variant": self.variant,
            "device": self.device, "dtype": self.dtype, "shapes": [list(s) for s in self.shapes],
            "split": self.split, "pass": self.noise_pass, "status": self.status,
            "median_s": self.median_s, "spread": self.spread, "repeats": self.repeats,
            "compile_s": self.compile_s, "wall_s": self.wall_s, "threads": self.threads,
            "error": self.error,
            "taken_at": self.taken_at, "annc_version": self.annc_version,
        }


_OBSERVATION_COLUMNS = ("fingerprint", "kernel", "variant", "device", "dtype", "shapes",
                        "source", "seconds", "executions", "predicted_s", "taken_at",
                        "annc_version")


@dataclass(frozen=True)
class Observation:
    """What one variant took on real shapes while annc was used (not a calibration row)."""

    fingerprint: str
    kernel: str
    variant: str
    device: str
    dtype: str
    """`float32` or `float64`."""
    shapes: Shapes
    source: str
    """One of `OBSERVATION_SOURCES`."""
    seconds: float
    """Seconds per execution: the median over the executions observed."""
    executions: int
    predicted_s: float | None = None
    """What the models in use predicted for one execution, if anything."""
    taken_at: str = ""
    annc_version: str = ""


_COMMUNICATION_COLUMNS = ("fingerprint", "device", "devices", "processes", "hosts",
                          "collective", "bytes", "median_s", "spread", "repeats", "taken_at",
                          "annc_version")

_ADDED_COLUMNS = {"communication": {"hosts": "INTEGER NOT NULL DEFAULT 1"}}
"""Columns added to a table after it was first shipped (schema 4: `hosts`), with what an
older row reads: an older store's collectives were measured in one process, on one
host."""


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


_MERGED = {"measurements": _COLUMNS, "observations": _OBSERVATION_COLUMNS,
           "communication": _COMMUNICATION_COLUMNS}
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
        if "meta" not in tables or "measurements" not in tables:
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
        if self._schema_version() == SCHEMA_VERSION:
            return  # every table is there: no write transaction needed
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._connection.execute(statement)
            self._connection.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),))
            for table, added in _ADDED_COLUMNS.items():
                present = {row[1] for row in self._connection.execute(
                    f"PRAGMA table_info({table})")}
                for column, definition in added.items():
                    if column not in present:
                        self._connection.execute(
                            f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            self._connection.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version' AND value IN "
                "('1', '2', '3')",  # 1 lacked the observations table, 2 communication, 3 hosts
                (str(SCHEMA_VERSION),))
            self._connection.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)", (now(),))

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

    def add(self, measurement: Measurement) -> None:
        """Writes and commits one measurement."""
        row = measurement.as_row()
        values = [row[c] for c in _COLUMNS]
        values[_COLUMNS.index("shapes")] = shapes_text(measurement.shapes)
        values[_COLUMNS.index("threads")] = json.dumps(measurement.threads, sort_keys=True)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        try:
            self._connection.execute(
                f"INSERT INTO measurements ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                values)
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: error: cannot write a measurement ({error})") from None

    def has(self, fingerprint: str, config: tuple[str, str, str, str, str, Shapes, int]) -> bool:
        """Whether a measurement of this configuration (any status) is already stored."""
        kernel, variant, device, split, dtype, shapes, noise_pass = config
        row = self._connection.execute(
            "SELECT 1 FROM measurements WHERE fingerprint = ? AND kernel = ? AND variant = ? "
            "AND device = ? AND split = ? AND dtype = ? AND shapes = ? AND pass = ? LIMIT 1",
            (fingerprint, kernel, variant, device, split, dtype, shapes_text(shapes),
             noise_pass)).fetchone()
        return row is not None

    def stored_configs(self, fingerprint: str) -> set[tuple[str, str, str, str, str, Shapes, int]]:
        """Every configuration already measured for this fingerprint."""
        return {m.config for m in self.measurements(fingerprint)}

    def measurements(self, fingerprint: str | None = None) -> Iterator[Measurement]:
        """Every stored measurement (of one fingerprint, when given), in the order taken."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM measurements"
        parameters: tuple[str, ...] = ()
        if fingerprint is not None:
            query += " WHERE fingerprint = ?"
            parameters = (fingerprint,)
        for values in self._connection.execute(query + " ORDER BY id", parameters):
            row = dict(zip(_COLUMNS, values, strict=True))
            yield Measurement(
                fingerprint=row["fingerprint"], kernel=row["kernel"], variant=row["variant"],
                device=row["device"], dtype=row["dtype"], shapes=parse_shapes(row["shapes"]),
                split=row["split"], status=row["status"], median_s=row["median_s"],
                spread=row["spread"], repeats=row["repeats"], compile_s=row["compile_s"],
                error=row["error"], wall_s=row["wall_s"], noise_pass=row["pass"],
                threads=json.loads(row["threads"]),
                taken_at=row["taken_at"], annc_version=row["annc_version"],
            )

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

    def count(self, fingerprint: str | None = None) -> int:
        if fingerprint is None:
            return int(self._connection.execute("SELECT COUNT(*) FROM measurements")
                       .fetchone()[0])
        return int(self._connection.execute(
            "SELECT COUNT(*) FROM measurements WHERE fingerprint = ?", (fingerprint,))
            .fetchone()[0])


    # Observations --------------------------------------------------------------

    def add_observations(self, observations: Iterable[Observation]) -> int:
        """Writes observations in one transaction (all or none); returns how many."""
        rows = [(o.fingerprint, o.kernel, o.variant, o.device, o.dtype, shapes_text(o.shapes),
                 o.source, o.seconds, o.executions, o.predicted_s, o.taken_at or now(),
                 o.annc_version) for o in observations]
        if not rows:
            return 0
        try:
            with self._transaction():
                self._connection.executemany(
                    f"INSERT INTO observations ({', '.join(_OBSERVATION_COLUMNS)}) VALUES "
                    f"({', '.join('?' for _ in _OBSERVATION_COLUMNS)})", rows)
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: error: cannot write observations ({error})") from None
        return len(rows)

    def observations(self, fingerprint: str | None = None,
                     sources: Sequence[str] | None = None) -> list[Observation]:
        """Stored observations (of one fingerprint and these sources, when given), oldest
        first."""
        clauses, parameters = [], []
        if fingerprint is not None:
            clauses.append("fingerprint = ?")
            parameters.append(fingerprint)
        if sources is not None:
            clauses.append(f"source IN ({', '.join('?' for _ in sources)})")
            parameters += list(sources)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT {', '.join(_OBSERVATION_COLUMNS)} FROM observations{where} ORDER BY id"
        return [Observation(fingerprint=row[0], kernel=row[1], variant=row[2], device=row[3],
                            dtype=row[4], shapes=parse_shapes(row[5]), source=row[6],
                            seconds=row[7], executions=row[8], predicted_s=row[9],
                            taken_at=row[10], annc_version=row[11])
                for row in self._connection.execute(query, parameters)]

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
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
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
                        f"SELECT {_readable(source, table, columns)} FROM {table}")
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


def _readable(source: sqlite3.Connection, table: str, columns: Sequence[str]) -> str:
    """The columns to read from another store's table: one it lacks (an older schema)
    reads as an older row does after migrating (`_ADDED_COLUMNS`)."""
    has = {row[1] for row in source.execute(f"PRAGMA table_info({table})")}
    added = _ADDED_COLUMNS.get(table, {})
    return ", ".join(column if column in has else
                     added[column].rsplit("DEFAULT", 1)[1].strip() + f" AS {column}"
                     for column in columns)


class _Transaction:
    """`BEGIN IMMEDIATE` … `COMMIT` (rolled back on an exception)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._connection.execute("ROLLBACK" if exc_type else "COMMIT")
