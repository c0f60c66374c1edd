"""Measurements to models and back: which model set to use, training it, evaluating it.

This is where the packages meet: the measurements come from `hardware` (a
user's database or the shipped reference data), each variant's complexity from
the variant library, and the models from `predictor`.

Which model set a compilation uses is decided in `passes.models`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from annc.dsl import dtypes
from annc.dsl.errors import ModelError
from annc.dsl.records import Combination, Record
from annc.hardware.calibration.reference_data import DATA_FOLDER, load_reference
from annc.hardware.calibration.runs import NoiseFloor, noise_floor
from annc.hardware.calibration.store import MeasurementStore
from annc.hardware.calibration.transfers import COPY_KERNEL
from annc.hardware.devices import jax_runtime  # noqa: F401  (JAX as annc configures it, for training too)
from annc.hardware.devices.backend_start import backend_start_seconds
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.devices.home import ensure_home
from annc.hardware.execution.steps import step_overhead_seconds
from annc.hardware.variants import load_library, query_of
from annc.hardware.variants.regions.spec import Summary
from annc.predictor import families
from annc.predictor.features import bytes_touched, is_region
from annc.predictor.models import ModelSet
from annc.predictor.transfers import Link, TransferModel


def to_training_rows(stored: Iterable[Record]) -> list[Record]:
    """Successful train/test records with their variant's complexity in the query, and
    its traits: those the rows carry (the shipped reference's, decided on the machine
    that measured them), else this machine's.

    Rows of variants this installation does not register (e.g. an OpenCL variant on
    a machine without OpenCL) are left out: nothing could run them here.
    """
    load_library()
    rows = []
    for m in stored:
        if m.status != "ok" or m.split not in ("train", "test") or not m.seconds:
            continue
        dtype = dtypes.normalise(m.dtype)
        if is_region(m.kernel):  # a region's summary holds its complexity
            config = Summary.from_shapes(m.shapes).query(m.kernel, dtype)
        else:
            try:
                config = query_of(m.kernel, m.variant, m.device, m.shapes, dtype,
                                  m.query.traits or None)
            except LookupError:
                continue
        rows.append(replace(m, query=config))
    return rows


def compile_seconds(stored: Iterable[Record]) -> dict[Combination, float]:
    """The median build time of every combination, for amortising compilation."""
    times: dict[Combination, list[float]] = defaultdict(list)
    for m in stored:
        if m.status == "ok" and m.compile_s is not None:
            times[m.combination].append(m.compile_s)
    return {combo: statistics.median(values) for combo, values in times.items()}


def transfer_model(stored: Iterable[Record]) -> TransferModel:
    """Copy times per device and direction, fitted to `latency + bytes × per-byte`."""
    points: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for m in stored:
        if m.kernel == COPY_KERNEL and m.status == "ok" and m.seconds:
            n_bytes = dtypes.itemsize(m.dtype) * m.shapes[0][0]
            points[(m.device, m.variant)].append((n_bytes, m.seconds))
    return TransferModel({key: Link.fit(*zip(*values, strict=True))
                          for key, values in points.items() if len(values) >= 2})


def train(stored: list[Record], fingerprint_dict: dict[str, Any],
          overheads: tuple[float, dict[str, float]] | None = None) -> ModelSet:
    """Trains the augmented model of every combination with enough rows.

    `overheads` are the plan step's overhead and the back ends' starts of the machine
    the rows come from; by default they are measured here (`measured_overheads`)."""
    start = time.perf_counter()
    models = families.Networks("augmented").models(to_training_rows(stored))
    compile_times = compile_seconds(stored)
    for combo, model in models.items():
        model.summary["compile_s"] = compile_times.get(combo, 0.0)
    seconds = time.perf_counter() - start
    print(f"trained {len(models)} models in {seconds:.1f} s", file=sys.stderr)
    step_overhead, starts = overheads if overheads is not None else measured_overheads()
    return ModelSet(fingerprint_dict, models, transfer_model(stored),
                    step_overhead_s=step_overhead, backend_start_s=starts)


def on_top_of(base: ModelSet, trained: ModelSet) -> ModelSet:
    """The models of `trained` added to those of `base`, replacing a combination's model
    where `trained` has one and keeping `base`'s everywhere else, so that no combination
    loses its model; `trained`'s machine, copy links (where it measured them) and
    overheads."""
    transfers = TransferModel({**base.transfers.links, **trained.transfers.links})
    return ModelSet(trained.fingerprint, {**base.models, **trained.models}, transfers,
                    step_overhead_s=trained.step_overhead_s,
                    backend_start_s=trained.backend_start_s)


def measured_overheads() -> tuple[float, dict[str, float]]:
    """This machine's plan-step overhead and back-end starts, for its model file."""
    return step_overhead_seconds(), backend_start_seconds()


def stored_measurements(db: Path | None) -> tuple[list[Record], dict[str, Any]]:
    """This machine's measurements in a database (default: under `$ANNC_HOME`)."""
    path = db or ensure_home() / "measurements.sqlite"
    if not path.exists():
        raise ModelError(f"{path}: no measurements; run `annc calibrate` first")
    machine = fingerprint()
    with MeasurementStore(path) as store:
        rows = list(store.calibration(machine.id))
    if not rows:
        raise ModelError(f"{path}: no measurements of this machine (fingerprint "
                         f"{machine.id}); run `annc calibrate` first")
    return rows, machine.as_dict()


def roofline_peaks(rows: list[Record]) -> tuple[dict[str, float], float]:
    """Peak FLOP/s per dtype and memory bandwidth, as measured in the calibration data.

    Peak FLOP/s is the best matrix product rate seen (two operations per multiply-add);
    bandwidth the best bytes-per-second of an element-wise kernel.
    """
    peak: dict[str, float] = defaultdict(float)
    bandwidth = 0.0
    for r in rows:
        c = r.query
        if c.kernel == "matmul" and r.variant == "numpy":
            peak[c.dtype] = max(peak[c.dtype], 2 * c.complexity / r.measured_s)
        if c.kernel in ("add", "mul", "sub", "div"):
            bandwidth = max(bandwidth, bytes_touched(c.kernel, c.shapes, c.dtype) / r.measured_s)
    return dict(peak), bandwidth


@dataclass(frozen=True)
class MeasurementSource:
    """Where training and evaluation rows come from, and what is known about them."""

    stored: list[Record]
    fingerprint: dict[str, Any]
    noise: NoiseFloor
    """Repeat-to-repeat MAPE of the noise passes (fractions), overall and per combination."""
    description: str


def measurement_source(db: Path | None, reference: bool,
                       machine: str | None = None) -> MeasurementSource:
    """The shipped reference data (`reference`; of another shipped `machine` if named, such
    as a lent GPU machine), else this machine's database."""
    if reference:
        data = load_reference(None if machine is None else DATA_FOLDER / "machines" / machine)
        if data is None:
            if machine is not None:
                known = sorted(p.name for p in (DATA_FOLDER / "machines").glob("*")
                               if p.is_dir())
                raise ModelError(f"this installation ships no reference data of machine "
                                 f"{machine} (it has: {', '.join(known) or 'none'})")
            raise ModelError("this installation ships no reference data")
        return MeasurementSource(data.measurements, data.metadata["fingerprint"],
                                 noise_floor(data.measurements),
                                 f"reference data of machine {data.metadata['fingerprint']['id']}")
    stored, here = stored_measurements(db)
    return MeasurementSource(stored, here, noise_floor(stored),
                             f"measurements of this machine ({here['id']})")
