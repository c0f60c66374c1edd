"""`$ANNC_HOME`: where a user's measurements and trained models live.

It defaults to `annc` in the user's cache folder (`$XDG_CACHE_HOME`, else
`~/.cache`). The folder is created on first use; one that cannot be created
or written is a clear error, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from dsl.errors import HomeError

MEASUREMENTS_FILE = "measurements.sqlite"


def annc_home() -> Path:
    """The folder named by `$ANNC_HOME`, else `$XDG_CACHE_HOME/annc`, else `~/.cache/annc`."""
    explicit = os.environ.get("ANNC_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / "annc"


def ensure_home() -> Path:
    """`annc_home()`, created if missing; a `HomeError` if it cannot be written."""
    home = annc_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise HomeError(f"{home}: error: cannot create the annc folder ({error.strerror}); "
                        "set ANNC_HOME to a writable folder") from None
    if not home.is_dir():
        raise HomeError(f"{home}: error: ANNC_HOME is not a folder; set ANNC_HOME to a "
                        "writable folder")
    if not os.access(home, os.W_OK | os.X_OK):
        raise HomeError(f"{home}: error: the annc folder is not writable; set ANNC_HOME to "
                        "a writable folder")
    return home


def default_database() -> Path:
    """The measurement database under `$ANNC_HOME` (the folder is created if missing)."""
    return ensure_home() / MEASUREMENTS_FILE
