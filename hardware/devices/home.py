"""`$ANNC_HOME`: where a user's measurements, trained models and builds live.

It defaults to `annc` in the user's cache folder (`$XDG_CACHE_HOME`, else
`~/.cache`). annc keeps its state only in a folder of its own (`docs/state.md`):

- it creates the folder (mode 0700) with a marker file, `.annc-home`, and a key,
  `.annc-key` (32 random bytes, mode 0600), that signs what annc writes there
  (`hardware.devices.signing`);
- an existing folder is taken only when it is empty or holds nothing but the files an
  earlier annc wrote (a home from before the marker existed); any other folder, `/`
  or `$HOME` say, is refused with an error, so that annc never writes among, or
  deletes, a user's files;
- the folders annc writes in (`builds/`, `plans/`, ...) must be real folders: one that
  is a link is refused, never followed.

A folder that cannot be created or written is a clear error, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import time
from pathlib import Path

from annc.dsl.errors import HomeError

MEASUREMENTS_FILE = "measurements.sqlite"
MARKER_FILE = ".annc-home"
KEY_FILE = ".annc-key"

STATE_FOLDERS = ("builds", "plans", "models", "wisdom", "jax-cache")
"""The folders annc keeps in its home."""

_EARLIER_FILES = (MEASUREMENTS_FILE, f"{MEASUREMENTS_FILE}-wal", f"{MEASUREMENTS_FILE}-shm",
                  f"{MEASUREMENTS_FILE}-journal", ".lock", *STATE_FOLDERS)
"""What an annc from before the marker wrote in its home (with `history-*.json` and
its temporaries): a folder holding only these is an earlier annc's home."""

_claimed: set[str] = set()
"""Homes this process has checked are annc's (or made so)."""


def annc_home() -> Path:
    """The folder named by `$ANNC_HOME`, else `$XDG_CACHE_HOME/annc`, else `~/.cache/annc`."""
    explicit = os.environ.get("ANNC_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / "annc"


def ensure_home() -> Path:
    """`annc_home()`, created if missing and claimed as annc's; a `HomeError` if it cannot
    be written or is a folder of someone else's files."""
    home = annc_home()
    if str(home) in _claimed:
        return home
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise HomeError(f"{home}: error: cannot create the annc folder ({error.strerror}); "
                        "set ANNC_HOME to a writable folder") from None
    if not home.is_dir():
        raise HomeError(f"{home}: error: ANNC_HOME is not a folder; set ANNC_HOME to a "
                        "writable folder")
    if not os.access(home, os.W_OK | os.X_OK):
        raise HomeError(f"{home}: error: the annc folder is not writable; set ANNC_HOME to "
                        "a writable folder")
    _claim(home)
    _claimed.add(str(home))
    return home


def is_annc_home(home: Path) -> bool:
    """Whether the folder carries annc's marker (a regular file, not a link)."""
    marker = home / MARKER_FILE
    return marker.is_file() and not marker.is_symlink()


def _earlier_annc_file(name: str) -> bool:
    return name in _EARLIER_FILES or (name.startswith("history-") and name.endswith(".json")) \
        or (name.startswith(".") and name.endswith(".partial"))


def check_home() -> None:
    """A `HomeError` where `$ANNC_HOME` is an existing folder of someone else's files;
    creates nothing (commands call it first, so that such a home is an error before
    anything runs, not a run that silently keeps nothing)."""
    home = annc_home()
    if str(home) not in _claimed and home.is_dir() and not is_annc_home(home):
        _refuse_others(home)


def _refuse_others(home: Path) -> None:
    try:
        others = sorted(n for n in os.listdir(home) if not _earlier_annc_file(n))
    except OSError:
        return  # unreadable: `ensure_home` says so when something is to be written
    if others:
        shown = ", ".join(repr(n) for n in others[:3]) + (", ..." if len(others) > 3 else "")
        raise HomeError(
            f"{home}: error: ANNC_HOME is a folder annc did not make, and it holds other "
            f"files ({shown}); annc keeps its state only in a folder of its own, so that "
            "it never deletes a file it did not write: set ANNC_HOME to a new or empty "
            "folder")


def _claim(home: Path) -> None:
    """Makes sure the folder is annc's: it has the marker, or it is empty or an earlier
    annc's home (then the marker is written); else a `HomeError`."""
    if not is_annc_home(home):
        _refuse_others(home)
        _write_new(home / MARKER_FILE, json.dumps(
            {"annc": "home", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode(),
            0o644)
    if not (home / KEY_FILE).exists():
        _write_new(home / KEY_FILE, secrets.token_hex(32).encode(), 0o600)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Writes a file that must not exist yet, whole or not at all: two processes
    claiming one home at once leave one file, the first's."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    except OSError as error:
        raise HomeError(f"{path}: error: cannot write annc's {path.name} file "
                        f"({error.strerror}); set ANNC_HOME to a writable folder") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def state_folder(name: str) -> Path:
    """The home's folder `name`, created if missing; a `HomeError` where it is a link or
    not a folder (annc never writes or deletes through a link)."""
    folder = ensure_home() / name
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    if not own_folder(folder):
        raise HomeError(f"{folder}: error: annc's {name}/ folder is a link or not a folder; "
                        "annc never writes through a link in its home: remove it, and annc "
                        "makes the folder again")
    return folder


def own_folder(folder: Path) -> bool:
    """Whether the folder is a real folder (not a link) of annc's home."""
    try:
        status = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(status.st_mode) and is_annc_home(folder.parent)


def read_unlinked(path: Path) -> bytes | None:
    """The bytes of a file, never through a link; None where there is no such file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        return file.read()


def default_database() -> Path:
    """The measurement database under `$ANNC_HOME` (the folder is created if missing)."""
    return ensure_home() / MEASUREMENTS_FILE
