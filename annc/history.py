"""How often each program has run on this machine: what selection weighs a build against.

`$ANNC_HOME/history-<fingerprint>.json` maps a program's key (a digest of its text,
its `-D` parameters, its targets and annc's version: what its IR is made from) to
how many times `annc run` ran it and when it last did. Selection expects a build to serve as many
runs again as the program has had (`expected_runs`): a program run ten times is
likely to run ten more, a new one at least once (this run). The count goes in
powers of four (1, 4, 16, ...) so that a kept plan (`annc.plans`, keyed by it) is
made again only at the 4th, 16th, 64th ... run of a program. The file keeps the
`KEPT` most recently run programs; one that cannot be read is started afresh; where
`$ANNC_HOME` cannot be written nothing is kept.
Every run counts, `--no-record` or not: how often a program runs is not a
measurement.

The `RECENT` most recently run programs also keep their source (text, file name,
params, targets) so that `calibrate --quick` can select their variants again and say
which choices its adapting moved (`recent_programs`); older entries drop it, which
keeps the file small.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from annc.dsl.errors import HomeError
from annc.hardware.calibration.store import annc_version
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.devices.home import annc_home, ensure_home

KEPT = 1000
"""Programs remembered; the least recently run go first."""
RECENT = 5
"""Programs whose source is kept: the most recently run."""


@dataclass(frozen=True)
class ProgramSource:
    """What a program's IR is made from, as a run was given it."""

    text: str
    filename: str
    params: dict[str, str]
    targets: list[str] | None

    @property
    def key(self) -> str:
        return program_key(self.text, self.params, self.targets)


TEXT_PIECE = 1 << 20
"""Characters of a program's text escaped and hashed at a time."""


def program_key(text: str, params: Mapping[str, int | str] | None,
                targets: Sequence[str] | None) -> str:
    """What the program's IR is made from, hashed: its text, parameters and targets, and
    annc's version (printing the IR to hash it took 0.1 s for 1,000 ops). The hash of
    `json.dumps([text, params, targets, version])`, with the text escaped a piece at a
    time: escaped whole, a 10 MB text was two more copies of it."""
    rest = [sorted((str(k), str(v)) for k, v in (params or {}).items()),
            None if targets is None else list(targets), annc_version()]
    digest = hashlib.sha256(b'["')
    for start in range(0, len(text), TEXT_PIECE):  # a piece ends between characters
        digest.update(encode_basestring_ascii(text[start:start + TEXT_PIECE])[1:-1].encode())
    digest.update(b'", ' + json.dumps(rest)[1:].encode())
    return digest.hexdigest()[:32]


def _path() -> Path:
    return annc_home() / f"history-{fingerprint().id}.json"


def _read() -> dict[str, Any]:
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def past_runs(key: str) -> int:
    """How many times this program has run on this machine."""
    entry = _read().get(key)
    runs = entry.get("runs") if isinstance(entry, dict) else None
    return runs if isinstance(runs, int) and runs > 0 else 0


def expected_runs(key: str) -> int:
    """The runs a build made now is expected to serve: this one and as many again as
    the program has had, rounded down to a power of four."""
    runs, expected = 1 + past_runs(key), 1
    while expected * 4 <= runs:
        expected *= 4
    return expected


def count_run(key: str, source: ProgramSource | None = None) -> None:
    """Adds a run of the program (and keeps its source, where given); never fails a run."""
    data = _read()
    entry = data.pop(key, None)
    runs = entry.get("runs", 0) if isinstance(entry, dict) else 0
    data[key] = {"runs": (runs if isinstance(runs, int) else 0) + 1,
                 "last": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if source is not None:
        data[key]["source"] = asdict(source)
    while len(data) > KEPT:
        data.pop(next(iter(data)))
    for old in list(data.values())[:-RECENT]:
        if isinstance(old, dict):
            old.pop("source", None)
    try:
        ensure_home()
    except HomeError:
        return
    path = _path()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        temporary.write_text(json.dumps(data))
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def recent_programs() -> list[ProgramSource]:
    """The sources of the programs run last on this machine, the most recent first: only
    those whose source still makes the key they ran under (this version of annc)."""
    found = []
    for key, entry in reversed(_read().items()):
        source = _source(entry.get("source") if isinstance(entry, dict) else None)
        if source is not None and source.key == key:
            found.append(source)
    return found


def _source(value: Any) -> ProgramSource | None:
    """A kept source, or None where the entry is not one."""
    if not isinstance(value, dict):
        return None
    text, filename = value.get("text"), value.get("filename")
    params, targets = value.get("params"), value.get("targets")
    if not (isinstance(text, str) and isinstance(filename, str) and isinstance(params, dict)
            and _strings([*params, *params.values()])
            and (targets is None or (isinstance(targets, list) and _strings(targets)))):
        return None
    return ProgramSource(text, filename, params, targets)


def _strings(values: list[Any]) -> bool:
    return all(isinstance(v, str) for v in values)
