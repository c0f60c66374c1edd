"""Wisdom: what a candidate measured on exact shapes, kept so a decision is never paid twice.

Like FFTW's wisdom: when selection measured close candidates on a program's
real shapes (`--measure`), or `annc tune` measured every candidate, the
seconds per execution are kept by kernel, variant, device, dtype and shapes.
The next compile of the same shapes uses the measured time instead of the
prediction, and does not measure again. One JSON file per machine; a file that
is corrupt, of another machine or of a future schema is never loaded.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from annc.dsl.kernels import Shapes
from annc.dsl.records import Combination
from annc.predictor.state_files import read_machine_file, write_atomically

SCHEMA_VERSION = 1
KIND = "annc wisdom"
MAX_ENTRIES = 20_000
"""The oldest entries go first beyond this."""


class WisdomFileError(Exception):
    """A wisdom file that is corrupt, of another machine or of a future schema."""


Key = tuple[str, str, str, str, Shapes]
"""(kernel, variant, device, dtype as f32/f64, shapes)."""


def key(combo: Combination, dtype: str, shapes: Shapes) -> Key:
    return (*combo, dtype, tuple(tuple(int(d) for d in s) for s in shapes))


@dataclass
class Wisdom:
    fingerprint: str
    entries: dict[Key, dict[str, Any]] = field(default_factory=dict)
    """key -> {"seconds", "source", "at"}, oldest first."""
    source: str = "<memory>"

    def seconds(self, combo: Combination, dtype: str, shapes: Shapes) -> float | None:
        entry = self.entries.get(key(combo, dtype, shapes))
        return None if entry is None else float(entry["seconds"])

    def add(self, combo: Combination, dtype: str, shapes: Shapes, seconds: float, source: str,
            at: str) -> None:
        if not (math.isfinite(seconds) and seconds > 0):
            return
        k = key(combo, dtype, shapes)
        self.entries.pop(k, None)  # re-inserted as the newest
        self.entries[k] = {"seconds": float(seconds), "source": source, "at": at}
        while len(self.entries) > MAX_ENTRIES:
            del self.entries[next(iter(self.entries))]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the file atomically."""
        data = {"schema_version": SCHEMA_VERSION, "kind": KIND, "fingerprint": self.fingerprint,
                "entries": [{"kernel": k[0], "variant": k[1], "device": k[2], "dtype": k[3],
                             "shapes": [list(s) for s in k[4]], **v}
                            for k, v in self.entries.items()]}
        write_atomically(path, json.dumps(data))

    @staticmethod
    def load(path: str | os.PathLike[str], fingerprint: str) -> Wisdom:
        where = str(path)
        data = read_machine_file(path, KIND, SCHEMA_VERSION, fingerprint, "wisdom",
                                 WisdomFileError)
        wisdom = Wisdom(fingerprint, source=where)
        try:
            for e in data["entries"]:
                seconds = float(e["seconds"])
                if not (math.isfinite(seconds) and seconds > 0):
                    raise ValueError(f"seconds {seconds!r}")
                shapes = tuple(tuple(int(d) for d in s) for s in e["shapes"])
                combo = Combination(str(e["kernel"]), str(e["variant"]), str(e["device"]))
                wisdom.entries[key(combo, str(e["dtype"]), shapes)] = {
                    "seconds": seconds, "source": str(e["source"]), "at": str(e["at"])}
        except (KeyError, TypeError, ValueError) as error:
            raise WisdomFileError(f"{where}: a wisdom entry is malformed ({error})") from None
        return wisdom
