"""Takes the files a lent GPU machine returned (`scripts/gpu_run.sh`) into the package.

    python scripts/gpu_import.py /work/.device/2 [--check-run /work/.device/1]

From the folder of one `gpu_run.sh` call (its `$OUT`):
- the measurement database inside `run.tar.gz` becomes that machine's reference data,
  `hardware/calibration/data/machines/<fingerprint>/` (`reference.json` and the rows as
  CSV), written by the same export as the reference machine's;
- `models.json`, trained there (the GPU variants' complexities need the GPU variants,
  which register only where a GPU is seen), becomes the shipped models of that machine,
  `predictor/data/machines/<fingerprint>.json`, used on a machine of that fingerprint;
- `environment.json`, `placement.md`, `placement.json`, the run's summary and its
  `evaluate.json` (as `evaluate-on-device.json`) go to `benchmarks/results/gpu/`, and
  with `--check-run`, that folder's `check.json` and summary (a call that ran the
  checks) too. `scripts/gpu_models.py` then scores the shipped data here.

The models must load, be of the machine the rows come from, and the database must hold
rows of no other machine: anything else stops the import before it writes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
import tempfile
from pathlib import Path

from annc.hardware.calibration.reference_data import DATA_FOLDER, export_reference
from annc.hardware.calibration.runs import CALIBRATION_SETTINGS
from annc.hardware.calibration.store import MeasurementStore
from annc.hardware.devices.fingerprint import Fingerprint
from annc.passes.models import SHIPPED_MACHINES
from annc.predictor.models import ModelSet

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "gpu"
COPIED = ("environment.json", "placement.md", "placement.json")
"""Copied as they came; evaluate.json, from the models trained there, as evaluate-on-device.json."""


def _fingerprint(environment: dict) -> Fingerprint:
    data = dict(environment["fingerprint"])
    fingerprint = Fingerprint(
        machine=data["machine"], cpu_model=data["cpu_model"], cores=int(data["cores"]),
        simd=tuple(data["simd"]), blas=data["blas"], accelerators=tuple(data["accelerators"]),
        versions=tuple(data["versions"].items()))
    if fingerprint.id != data["id"]:
        raise SystemExit(f"environment.json: its fingerprint fields give {fingerprint.id}, "
                         f"not the {data['id']} it names")
    return fingerprint


def _database(run: Path, into: Path) -> Path:
    with tarfile.open(run / "run.tar.gz") as archive:
        member = archive.getmember("measurements.sqlite")
        archive.extract(member, into, filter="data")
    return into / "measurements.sqlite"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the folder of files one gpu_run.sh call returned")
    parser.add_argument("--check-run", type=Path,
                        help="the folder of a call that ran `variants --check` (check.json)")
    args = parser.parse_args(argv)

    fingerprint = _fingerprint(json.loads((args.run / "environment.json").read_text()))
    models = ModelSet.load(args.run / "models.json")
    if models.fingerprint.get("id") != fingerprint.id:
        raise SystemExit(f"models.json holds models of {models.fingerprint.get('id')}, "
                         f"not of the run's machine {fingerprint.id}")
    with tempfile.TemporaryDirectory() as work:
        database = _database(args.run, Path(work))
        with MeasurementStore(database) as store:  # an older run's file is migrated
            owners = {r.fingerprint for r in store.calibration()}
            if owners != {fingerprint.id}:
                raise SystemExit(f"the run's database holds rows of {sorted(owners)}, "
                                 f"expected only {fingerprint.id}")
            written = export_reference(store, fingerprint, CALIBRATION_SETTINGS,
                                       DATA_FOLDER / "machines" / fingerprint.id)

    SHIPPED_MACHINES.mkdir(parents=True, exist_ok=True)
    shipped = SHIPPED_MACHINES / f"{fingerprint.id}.json"
    shutil.copyfile(args.run / "models.json", shipped)
    written.append(shipped)

    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copyfile(args.run / name, RESULTS / name)
        written.append(RESULTS / name)
    shutil.copyfile(args.run / "evaluate.json", RESULTS / "evaluate-on-device.json")
    written.append(RESULTS / "evaluate-on-device.json")
    shutil.copyfile(args.run / "summary.txt", RESULTS / "summary.txt")
    written.append(RESULTS / "summary.txt")
    if args.check_run is not None:
        shutil.copyfile(args.check_run / "check.json", RESULTS / "check.json")
        shutil.copyfile(args.check_run / "summary.txt", RESULTS / "summary-checks.txt")
        written += [RESULTS / "check.json", RESULTS / "summary-checks.txt"]
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
