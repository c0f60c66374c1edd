"""The persistent build cache under `$ANNC_HOME/builds`: what a build made, kept on disk.

Compiled Halide kernels and region pipelines, the Halide runtime they share,
auto-schedulers' schedules and markers of JAX builds are kept here, so a second
process loads what the first built. Every entry is one file, `<name>.<kind>`, where
`name` is a digest of the entry's key (kernel, variant, shapes, dtype, target,
library version, fingerprint, ...) and of the format:

    ANNC-BUILD 2\\n
    {"kind": ..., "key": {...}, "size": N, "sha256": "...", "created": "...",
     "signature": "..."}\\n
    <N bytes of payload>

The signature is the home's HMAC of the rest of the header, which holds the payload's
SHA-256 (`hardware.devices.signing`). `read` returns a payload only when the signature
holds, the header's key is the one asked for, and the payload's size and SHA-256
match; an entry that annc signed but that no longer matches (truncated, another key)
is removed so that a rebuild replaces it. A file that annc cannot prove it wrote (no
or another home's signature, a link, an earlier format) is never loaded and never
removed: annc leaves it in place, builds without keeping the build, and says so once.
Writes go to a temporary file in the same folder and `os.replace` it into place, so a
reader sees the whole old entry or the whole new one. The folder is bounded
(`$ANNC_BUILD_CACHE_MB`, default 512): after a write the least recently used of
annc's entries (by modification time, which a read refreshes) are removed until they
fit. Where `$ANNC_HOME` cannot be written, nothing is kept and nothing fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annc.dsl.errors import HomeError
from annc.hardware import events
from annc.hardware.devices.home import annc_home, own_folder, read_unlinked, state_folder
from annc.hardware.devices.signing import record_signature, signed_record

MAGIC = b"ANNC-BUILD 2\n"
FORMAT = 2
FOLDER = "builds"
LIMIT_ENV = "ANNC_BUILD_CACHE_MB"
DEFAULT_LIMIT_MB = 512.0
KINDS = ("runtime", "kernel", "region", "schedule", "plan", "jax")
"""What an entry holds: the shared Halide runtime, a compiled kernel, a compiled region
pipeline, an auto-scheduler's schedule, a selection plan, or the marker of a JAX build
whose executable XLA's own cache holds (`hardware.variants.jax_builds`)."""

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
    owned: bool = True
    """Whether annc can prove it wrote the file (known only when headers were read)."""


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
    text = json.dumps({"kind": kind, "format": FORMAT, **key}, sort_keys=True)
    return f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.{kind}"


def note_once(note: str) -> None:
    if note not in notes:
        notes.append(note)


def _split(data: bytes) -> tuple[Any, bytes] | None:
    """The header (parsed JSON) and the payload of an entry's bytes, or None."""
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        return None
    try:
        return json.loads(data[len(MAGIC):end]), data[end + 1:]
    except ValueError:
        return None


def _intact(header: dict[str, Any], payload: bytes) -> bool:
    return header.get("size") == len(payload) \
        and header.get("sha256") == hashlib.sha256(payload).hexdigest()


def read(kind: str, key: Mapping[str, Any]) -> bytes | None:
    """The verified payload stored for this key, or None (missing, rejected, untrusted).

    An entry annc signed that does not hold together any more is removed so that a
    rebuild replaces it; a file annc cannot prove it wrote is left where it is."""
    folder = cache_folder()
    path = folder / entry_name(kind, key)
    data = read_unlinked(path) if own_folder(folder) else None
    if data is None:
        events.count("cache miss", kind)
        return None
    parts = _split(data)
    if parts is None or not signed_record(parts[0]):
        _untrusted(path, kind)
        return None
    header, payload = parts
    if header.get("kind") != kind or header.get("key") != _plain(key) \
            or not _intact(header, payload):
        discard_file(path, kind)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # most recently used
    events.count("cache hit", kind)
    return payload


def _untrusted(path: Path, kind: str) -> None:
    events.count("cache untrusted", kind)
    note_once(f"note: {path.parent} holds files that annc cannot prove it wrote here (e.g. "
              f"{path.name}); annc leaves them in place and does not use them")


def discard_file(path: Path, kind: str) -> None:
    """Removes an entry annc wrote that is no longer usable (counted as rejected)."""
    events.count("cache rejected", kind)
    _remove(path)


def discard(kind: str, key: Mapping[str, Any]) -> None:
    """Removes this key's entry, if annc wrote it: a build that verified but could not be
    loaded (say, a system library changed under it), so the next run rebuilds it."""
    discard_file(cache_folder() / entry_name(kind, key), kind)


def _plain(key: Mapping[str, Any]) -> Any:
    """The key as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(dict(key), sort_keys=True))


def write(kind: str, key: Mapping[str, Any], payload: bytes) -> Path | None:
    """Stores the payload atomically; returns its path, or None where nothing can be kept
    (no writable home, a link for the folder, or a file there annc did not write)."""
    try:
        folder = state_folder(FOLDER)
    except HomeError as error:
        note_once(f"note: builds are not kept: {error}")
        return None
    header: dict[str, Any] = {"kind": kind, "key": _plain(key), "size": len(payload),
                              "sha256": hashlib.sha256(payload).hexdigest(),
                              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    signed = record_signature(header)
    if signed is None:
        return None
    header["signature"] = signed
    path = folder / entry_name(kind, key)
    if os.path.lexists(path) and not written_by_annc(path):
        _untrusted(path, kind)
        return None
    temporary = folder / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        with open(temporary, "xb") as file:
            file.write(MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return None
    events.count("cache written", kind)
    evict(limit_bytes(), keep=path)
    return path


def _header(path: Path) -> Any:
    """An entry's header without reading its payload (never through a link); None if
    there is none."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        if file.readline(len(MAGIC)) != MAGIC:
            return None
        line = file.readline(1 << 20)
    try:
        return json.loads(line)
    except ValueError:
        return None


def written_by_annc(path: Path) -> bool:
    """Whether the file is a regular file (not a link) whose header this home signed."""
    return os.path.isfile(path) and not os.path.islink(path) and signed_record(_header(path))


def entries(with_keys: bool = False) -> list[Entry]:
    """Every entry, least recently used first (`with_keys` reads each header and says
    which annc can prove it wrote)."""
    folder = cache_folder()
    found = []
    if not own_folder(folder):
        return []
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
            status = path.lstat()
        except OSError:
            continue
        key: Mapping[str, Any] = {}
        owned = True
        if with_keys:
            header = _header(path)
            owned = signed_record(header)
            key = header.get("key", {}) if owned else {}
        found.append(Entry(path, kind, status.st_size, status.st_mtime, key, owned))
    return sorted(found, key=lambda e: (e.used, e.path.name))


def evict(limit: int, keep: Path | None = None) -> int:
    """Removes least recently used entries of annc's until they hold at most `limit`
    bytes (never `keep`, the entry just written); returns how many it removed."""
    present = [e for e in entries(with_keys=True) if e.owned]
    total = sum(e.size for e in present)
    removed = 0
    for entry in present:
        if total <= limit:
            break
        if entry.path == keep:
            continue
        if _remove(entry.path):
            removed += 1
            events.count("cache evicted")
        total -= entry.size
    _remove_stale_temporaries()
    return removed


def _remove_stale_temporaries(age_s: float = 3600.0) -> None:
    """Temporary files left by a process that died while writing, an hour later (those
    whose signed header made it to the disk: annc can prove it wrote them)."""
    folder = cache_folder()
    try:
        names = [n for n in os.listdir(folder) if n.startswith(".tmp-")]
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            if time.time() - (folder / name).lstat().st_mtime > age_s:
                _remove(folder / name)


def _remove(path: Path) -> bool:
    """Removes an entry annc can prove it wrote; whether it did."""
    if not written_by_annc(path):
        return False
    try:
        path.unlink()
    except OSError:
        return False
    return True


def clear() -> tuple[int, int, int]:
    """Empties the cache of annc's entries; returns how many entries and bytes it removed,
    and how many files it left because it cannot prove it wrote them. A `HomeError`
    where the folder cannot be written."""
    folder = cache_folder()
    if os.path.lexists(folder) and not own_folder(folder):
        raise HomeError(f"{folder}: error: annc's builds/ folder is a link or not a folder; "
                        "annc never deletes through a link")
    if own_folder(folder) and not os.access(folder, os.W_OK | os.X_OK):
        raise HomeError(f"{folder}: error: the build cache cannot be emptied: the folder is "
                        "not writable")
    count = size = left = 0
    for entry in entries(with_keys=True):
        if entry.owned and _remove(entry.path):
            count += 1
            size += entry.size
        else:
            left += 1
    return count, size, left


def exists(kind: str, key: Mapping[str, Any]) -> bool:
    """Whether an entry for this key that annc wrote is present (its payload is verified
    only by `read`)."""
    return written_by_annc(cache_folder() / entry_name(kind, key))
