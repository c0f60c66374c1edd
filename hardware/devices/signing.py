"""Signatures that prove annc wrote a file of its home.

Every build cache entry and kept plan carries an HMAC-SHA256 of its contents under
the home's key (`$ANNC_HOME/.annc-key`, 32 random bytes made with the home, mode
0600). annc loads an entry, or deletes one, only when the signature holds, so:

- an entry copied from another home or machine, changed by hand or by a tool, or
  corrupted, is never loaded (and, not provably annc's, never deleted either);
- someone who can write the home but cannot read the key (another user, where the
  folder is shared) cannot make annc load a library of theirs.

It does not protect against a program running as you, which can read the key (and
could as well change your shell's start-up files). A key file that others can read
or write, or that is not yours, is not trusted: nothing is loaded from the home's
builds and plans until it is private again (`chmod 600`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from collections.abc import Mapping
from typing import Any

from annc.hardware.devices.home import KEY_FILE, annc_home

_keys: dict[str, bytes | None] = {}

notes: list[str] = []
"""What the user should know about the key, once per process."""


def home_key() -> bytes | None:
    """The key of the current home, or None where there is none or it is not private."""
    home = annc_home()
    where = str(home)
    if _keys.get(where) is None:  # a missing key may be made later by `ensure_home`
        _keys[where] = _read_key(home / KEY_FILE)
    return _keys[where]


def _read_key(path: os.PathLike[str]) -> bytes | None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        private = stat.S_ISREG(status.st_mode) and status.st_mode & 0o077 == 0 \
            and status.st_uid == os.geteuid()
        key = file.read(1024)
    if not private:
        note = (f"note: {path} is not private to you, so annc loads nothing from its builds "
                "and plans; `chmod 600` it to trust them again")
        if note not in notes:
            notes.append(note)
        return None
    return key if len(key) >= 32 else None


def signature(data: bytes) -> str | None:
    """The hex HMAC-SHA256 of the data under the home's key; None without a key."""
    key = home_key()
    return hmac.new(key, data, hashlib.sha256).hexdigest() if key is not None else None


def signed_here(data: bytes, claimed: object) -> bool:
    """Whether `claimed` is this home's signature of the data."""
    expected = signature(data)
    return expected is not None and isinstance(claimed, str) \
        and hmac.compare_digest(expected, claimed)


def _record_text(record: Mapping[str, Any]) -> bytes:
    """What a record's signature covers: the record without it, in one canonical form."""
    return json.dumps({k: v for k, v in record.items() if k != "signature"},
                      sort_keys=True).encode()


def record_signature(record: Mapping[str, Any]) -> str | None:
    """The signature a JSON record (a build entry's header, a kept plan) carries in its
    `signature` field; None without a key."""
    return signature(_record_text(record))


def signed_record(record: Any) -> bool:
    """Whether the record is a dict whose `signature` this home made."""
    return isinstance(record, dict) and signed_here(_record_text(record),
                                                    record.get("signature"))


def forget_keys() -> None:
    """Reads the key again on next use (tests that replace a home's key)."""
    _keys.clear()
