"""Reference data: the measurements of the project's reference machine, shipped in the package.

`export_reference` writes a store's measurements of one fingerprint to
`hardware/calibration/data/reference-<fingerprint>.csv.gz` (one plain CSV row per
measurement) and describes them in `hardware/calibration/data/reference.json`: the
machine's fingerprint, the date, how long the calibration took, rows per
combination, the timing settings and the noise floor. Beside them,
`traits-<fingerprint>.csv.gz` keeps what the variants with traits decided for each
measured shape on that machine (Mullapudi2016 fusing or not:
`hardware.variants.halide.schedule_traits`), since another machine's auto-scheduler
may decide otherwise. `load_reference` reads them back as calibration `Record`s (with
the traits in their queries; their complexity is not kept: `nan`), for training the
default models and for tests. The files keep the columns they had before the store
kept one record table, so the shipped data needed no change.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from annc.dsl import dtypes
from annc.dsl.records import Combination, Query, Record
from annc.hardware.calibration.sampling import PLAN_OVERRIDES, PLAN_SIZES
from annc.hardware.calibration.store import MeasurementStore, now, parse_shapes, shapes_text
from annc.hardware.devices.fingerprint import Fingerprint
from annc.hardware.measure.settings import TimingSettings
from annc.hardware.variants import Traits, traits_of

DATA_FOLDER = Path(__file__).parent / "data"
METADATA_FILE = "reference.json"

COLUMNS = ("kernel", "variant", "device", "dtype", "shapes", "split", "pass", "status",
           "median_s", "spread", "repeats", "compile_s", "wall_s", "error")
TRAIT_COLUMNS = ("kernel", "variant", "device", "dtype", "shapes", "trait", "value")

TraitKey = tuple[str, str, str, str, str]
"""kernel, variant, device, dtype and shapes (as text): a measured configuration."""


@dataclass(frozen=True)
class Reference:
    metadata: dict[str, Any]
    measurements: list[Record]


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _csv_text(measurements: list[Record]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for m in measurements:
        writer.writerow([m.kernel, m.variant, m.device, m.dtype, shapes_text(m.shapes), m.split,
                         m.noise_pass, m.status, _number(m.seconds), _number(m.spread),
                         "" if m.repeats is None else m.repeats, _number(m.compile_s),
                         _number(None if m.wall_s is None else round(m.wall_s, 4)),
                         m.error or ""])
    return text.getvalue()


def export_reference(store: MeasurementStore, fingerprint: Fingerprint,
                     settings: TimingSettings, folder: Path | None = None) -> list[Path]:
    """Writes the store's rows of this fingerprint and their metadata; returns the paths.

    `folder` defaults to the package's `hardware/calibration/data/`.
    """
    from annc.hardware.calibration.runs import noise_floor

    folder = DATA_FOLDER if folder is None else folder

    measurements = list(store.calibration(fingerprint.id))
    if not measurements:
        raise ValueError(f"{store.path} holds no measurement of fingerprint {fingerprint.id}")
    folder.mkdir(parents=True, exist_ok=True)
    data_file = folder / f"reference-{fingerprint.id}.csv.gz"
    with gzip.GzipFile(data_file, "wb", mtime=0) as gz:
        gz.write(_csv_text(measurements).encode())
    counts: Counter[tuple[str, str, str, str, str]] = Counter(
        (m.kernel, m.variant, m.device, m.split, m.status) for m in measurements)
    combos: dict[tuple[str, str, str], dict[str, int]] = {}
    for (kernel, variant, device, split, status), n in sorted(counts.items()):
        entry = combos.setdefault((kernel, variant, device), {})
        name = split if status == "ok" else f"{split}_{status}"
        entry[name] = entry.get(name, 0) + n
    floor = noise_floor(measurements)
    times = [m.when for m in measurements]
    known = all(times)  # rows taken from a shipped reference keep no time
    metadata = {
        "fingerprint": fingerprint.as_dict(),
        "file": data_file.name,
        "exported_at": now(),
        "measured_from": min(times) if known else "",
        "measured_to": max(times) if known else "",
        "calibration_s": round(store.calibration_time(fingerprint.id), 1),
        "rows": len(measurements),
        "annc_version": measurements[-1].annc_version,
        "threads": measurements[-1].threads,
        "timing_settings": asdict(settings),
        "plan_sizes": {name: asdict(size) for name, size in PLAN_SIZES.items()},
        "plan_overrides": [{"kernel": k, "variant": v, **asdict(size)}
                           for (k, v), size in PLAN_OVERRIDES.items()],
        "noise_floor": {"mape": floor.mape, "pairs": floor.pairs,
                        "median_combination_mape": floor.median_combination,
                        "combinations": len(floor.by_combination)},
        "combinations": [{"kernel": k, "variant": v, "device": d, **c}
                         for (k, v, d), c in combos.items()],
    }
    traits_file = folder / f"traits-{fingerprint.id}.csv.gz"
    with gzip.GzipFile(traits_file, "wb", mtime=0) as gz:
        gz.write(_traits_text(measurements).encode())
    metadata["traits_file"] = traits_file.name
    metadata_file = folder / METADATA_FILE
    metadata_file.write_text(json.dumps(metadata, indent=1) + "\n")
    return [data_file, traits_file, metadata_file]


def _traits_text(measurements: list[Record]) -> str:
    """This machine's traits of every measured configuration whose variant has traits."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TRAIT_COLUMNS)
    seen: set[TraitKey] = set()
    for m in measurements:
        key = (m.kernel, m.variant, m.device, m.dtype, shapes_text(m.shapes))
        if m.status != "ok" or key in seen:
            continue
        seen.add(key)
        for name, value in traits_of(m.kernel, m.variant, m.device, m.shapes,
                                     dtypes.normalise(m.dtype)):
            writer.writerow((*key, name, _number(value)))
    return buffer.getvalue()


def _read_traits(path: Path) -> dict[TraitKey, Traits]:
    found: dict[TraitKey, list[tuple[str, float]]] = {}
    with gzip.open(path, "rt", newline="") as text:
        for r in csv.DictReader(text):
            key = (r["kernel"], r["variant"], r["device"], r["dtype"], r["shapes"])
            found.setdefault(key, []).append((r["trait"], float(r["value"])))
    return {key: tuple(values) for key, values in found.items()}


def _optional(text: str, kind: type) -> Any:
    return None if text == "" else kind(text)


def load_reference(folder: Path | None = None) -> Reference | None:
    """The shipped reference data (or that in `folder`), or None where there is none."""
    folder = DATA_FOLDER if folder is None else folder
    metadata_file = folder / METADATA_FILE
    if not metadata_file.exists():
        return None
    metadata = json.loads(metadata_file.read_text())
    fingerprint_id = metadata["fingerprint"]["id"]
    with gzip.open(folder / metadata["file"], "rt", newline="") as text:
        rows = list(csv.DictReader(text))
    traits: dict[TraitKey, Traits] = {}
    if metadata.get("traits_file"):
        traits = _read_traits(folder / metadata["traits_file"])
    threads, version = metadata.get("threads", {}), metadata.get("annc_version", "")
    measurements = [
        Record(
            Combination(r["kernel"], r["variant"], r["device"]),
            Query(r["kernel"], parse_shapes(r["shapes"]), r["dtype"], math.nan,
                  traits.get((r["kernel"], r["variant"], r["device"], r["dtype"],
                              r["shapes"]), ())),
            _optional(r["median_s"], float), "calibration",
            spread=_optional(r["spread"], float), repeats=_optional(r["repeats"], int),
            compile_s=_optional(r["compile_s"], float), status=r["status"], split=r["split"],
            noise_pass=int(r["pass"]), error=r["error"] or None,
            wall_s=_optional(r["wall_s"], float), threads=threads, fingerprint=fingerprint_id,
            annc_version=version,
        )
        for r in rows
    ]
    return Reference(metadata, measurements)
