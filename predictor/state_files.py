"""The small JSON files annc keeps per machine: written atomically, read with checks.

Model sets, corrections and wisdom are each one JSON file. Writing goes through a
temporary file in the same folder (named by the writing process) and a rename, so
a crash or a concurrent writer never leaves half a file. Corrections and wisdom
share a header — `kind`, `schema_version`, `fingerprint` — that is checked before
anything else is read, so a file of another kind, schema or machine is refused
with a sentence naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    temporary.write_text(text)
    os.replace(temporary, path)


def read_json(path: str | os.PathLike[str], what: str, error: type[Exception]) -> Any:
    """The file's JSON, or `error` saying why it cannot be read."""
    where = str(path)
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise error(f"{where}: no such {what} file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise error(f"{where}: not a readable JSON {what} file ({problem})") from None


def read_machine_file(path: str | os.PathLike[str], kind: str, schema: int, fingerprint: str,
                      what: str, error: type[Exception]) -> dict[str, Any]:
    """A file with the header of `kind`, `schema` and this machine's `fingerprint`."""
    where = str(path)
    data = read_json(path, what, error)
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise error(f"{where}: not an annc {what} file")
    if data.get("schema_version") != schema:
        raise error(f"{where}: {what} schema {data.get('schema_version')!r}, this annc "
                    f"reads {schema}")
    if data.get("fingerprint") != fingerprint:
        raise error(f"{where}: {what} of machine {data.get('fingerprint')!r}, not of this "
                    f"machine ({fingerprint})")
    return data
