"""The persistent build cache under `$ANNC_HOME/builds`: what a build made, kept on disk.

Compiled Halide kernels and region pipelines, the Halide runtime they share,
auto-schedulers' schedules, selection plans and markers of JAX builds are kept here,
so a second process loads what the first built.
Every entry is one file, `<name>.<kind>`, where `name` is a digest of the entry's
key (kernel, variant, shapes, dtype, target, library version, fingerprint, ...):

    ANNC-BUILD 1\\n
    {"kind": ..., "key": {...}, "size": N, "sha256": "...", "created": "..."}\\n
    <N bytes of payload>

`read` checks the magic line, that the header's key is the one asked for, and the
payload's size and SHA-256 before returning it, so a corrupt, truncated or other
target's or version's entry is rejected (and removed), never used. Writes go to a
temporary file in the same folder and `os.replace` it into place, so a reader sees
the whole old entry or the whole new one. The folder is bounded
(`$ANNC_BUILD_CACHE_MB`, default 512): after a write the least recently used entries
(by modification time, which a read refreshes) are removed until it fits.
Where `$ANNC_HOME` cannot be written, nothing is kept and nothing fails. Eviction
and `clear` remove only files annc can prove it wrote: regular files (not links)
that start with the magic line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsl.errors import HomeError
from hardware.devices.home import annc_home, ensure_home

MAGIC = b"ANNC-BUILD 1\n"
FOLDER = "builds"
LIMIT_ENV = "ANNC_BUILD_CACHE_MB"
DEFAULT_LIMIT_MB = 512.0
KINDS = ("runtime", "kernel", "region", "schedule", "plan", "jax")
"""What an entry holds: the shared Halide runtime, a compiled kernel, a compiled region
pipeline, an auto-scheduler's schedule, a selection plan, or the marker of a JAX build
whose executable XLA's own cache holds (`hardware.variants.jax_builds`)."""

stats: Counter[str] = Counter()
"""This process's cache events: `hit`, `miss`, `rejected`, `written`, `evicted`,
per kind too (`hit:kernel`, ...), for tests and reports."""

notes: list[str] = []
"""What the user should know about this process's builds, each once (e.g. that there
is no C compiler); commands print them with their other notes."""


@dataclass(frozen=True)
class Entry:
    path: Path
    kind: str
    size: int
    """Bytes on disk, header included."""
    used: float
    """When it was last written or read (seconds since the epoch)."""
    key: Mapping[str, Any]
    """The header's key; empty where the header is unreadable."""


def cache_folder() -> Path:
    return annc_home() / FOLDER


def limit_bytes() -> int:
    """The size bound: `$ANNC_BUILD_CACHE_MB` megabytes, else 512 MB."""
    try:
        megabytes = float(os.environ.get(LIMIT_ENV, DEFAULT_LIMIT_MB))
    except ValueError:
        megabytes = DEFAULT_LIMIT_MB
    return int(max(megabytes, 0.0) * 2**20)


def entry_name(kind: str, key: Mapping[str, Any]) -> str:
    """The file name of an entry: 32 hex digits of its key's SHA-256, then its kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown build cache kind {kind!r}")
    text = json.dumps({"kind": kind, **key}, sort_keys=True)
    return f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.{kind}"


def _count(event: str, kind: str) -> None:
    stats[event] += 1
    stats[f"{event}:{kind}"] += 1


def _parse(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """The header and payload of an entry's bytes, or None if they do not hold together."""
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        return None
    try:
        header = json.loads(data[len(MAGIC):end])
    except ValueError:
        return None
    if not isinstance(header, dict):
        return None
    payload = data[end + 1:]
    if header.get("size") != len(payload):
        return None
    if header.get("sha256") != hashlib.sha256(payload).hexdigest():
        return None
    return header, payload


def read(kind: str, key: Mapping[str, Any]) -> bytes | None:
    """The verified payload stored for this key, or None (missing or rejected).

    A file that fails verification, or whose header names another key (another
    target, library version or machine), is removed so that a rebuild replaces it."""
    path = cache_folder() / entry_name(kind, key)
    try:
        data = path.read_bytes()
    except OSError:
        _count("miss", kind)
        return None
    parsed = _parse(data)
    if parsed is None or parsed[0].get("kind") != kind or parsed[0].get("key") != _plain(key):
        _count("rejected", kind)
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # most recently used
    _count("hit", kind)
    return parsed[1]


def _plain(key: Mapping[str, Any]) -> Any:
    """The key as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(dict(key), sort_keys=True))


def write(kind: str, key: Mapping[str, Any], payload: bytes) -> Path | None:
    """Stores the payload atomically; returns its path, or None where nothing can be kept."""
    try:
        folder = ensure_home() / FOLDER
        folder.mkdir(exist_ok=True)
    except (HomeError, OSError):
        return None
    header = {"kind": kind, "key": _plain(key), "size": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest(),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    path = folder / entry_name(kind, key)
    temporary = folder / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        with open(temporary, "wb") as file:
            file.write(MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return None
    _count("written", kind)
    evict(limit_bytes(), keep=path)
    return path


def _header(path: Path) -> dict[str, Any]:
    """An entry's header without reading its payload; empty if unreadable."""
    try:
        with open(path, "rb") as file:
            first = file.readline()
            line = file.readline(1 << 20)
    except OSError:
        return {}
    if first != MAGIC:
        return {}
    try:
        header = json.loads(line)
    except ValueError:
        return {}
    return header if isinstance(header, dict) else {}


def entries(with_keys: bool = False) -> list[Entry]:
    """Every entry, least recently used first (`with_keys` reads each header)."""
    folder = cache_folder()
    found = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        kind = name.rpartition(".")[2]
        if name.startswith(".") or kind not in KINDS:
            continue
        path = folder / name
        try:
            status = path.stat()
        except OSError:
            continue
        key = _header(path).get("key", {}) if with_keys else {}
        found.append(Entry(path, kind, status.st_size, status.st_mtime, key))
    return sorted(found, key=lambda e: (e.used, e.path.name))


def evict(limit: int, keep: Path | None = None) -> int:
    """Removes least recently used entries until the folder holds at most `limit`
    bytes (never `keep`, the entry just written); returns how many it removed."""
    present = entries()
    total = sum(e.size for e in present)
    removed = 0
    for entry in present:
        if total <= limit:
            break
        if entry.path == keep:
            continue
        if _remove(entry.path):
            removed += 1
            stats["evicted"] += 1
        total -= entry.size
    _remove_stale_temporaries()
    return removed


def _remove_stale_temporaries(age_s: float = 3600.0) -> None:
    """Temporary files left by a process that died while writing, an hour later."""
    folder = cache_folder()
    try:
        names = [n for n in os.listdir(folder) if n.startswith(".tmp-")]
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            if time.time() - (folder / name).stat().st_mtime > age_s:
                (folder / name).unlink()


def _written_by_annc(path: Path) -> bool:
    """Whether the file is a regular file (not a link) that starts with annc's magic."""
    try:
        if not path.is_file() or path.is_symlink():
            return False
        with open(path, "rb") as file:
            return file.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _remove(path: Path) -> bool:
    """Removes an entry annc can prove it wrote; whether it did."""
    if not _written_by_annc(path):
        return False
    try:
        path.unlink()
    except OSError:
        return False
    return True


def clear() -> tuple[int, int]:
    """Empties the cache of annc's entries; returns how many entries and bytes it
    removed. A file of an entry's name that annc cannot prove it wrote stays."""
    count = size = 0
    for entry in entries():
        if _remove(entry.path):
            count += 1
            size += entry.size
    return count, size


def exists(kind: str, key: Mapping[str, Any]) -> bool:
    """Whether an entry for this key is present (not verified: `read` does that)."""
    return (cache_folder() / entry_name(kind, key)).is_file()
