"""Measuring copies between the host and a device, for the transfer model.

Each copy size is one stored calibration record with kernel `copy`, variant `to_device`
or `to_host`, the device, dtype float32 and shape `[[n]]`: the same store, the
same resume and the same reference export as the kernels. The predictor fits
`seconds = latency + bytes × seconds_per_byte` per device and direction.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from annc.dsl.records import Combination, Query
from annc.hardware.calibration.store import MeasurementStore, now
from annc.hardware.devices.device import Device
from annc.hardware.measure.timing import Times, thread_settings

COPY_KERNEL = "copy"
DIRECTIONS = ("to_device", "to_host")
SIZES = tuple(1 << k for k in range(8, 25, 2))
"""Elements (f32) per copy: 1 KiB to 64 MiB."""
REPEATS = 7


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def copy_times(device: Device, elements: int, direction: str) -> list[float]:
    """Seconds of `REPEATS` copies of `elements` f32 values, after one warm-up copy."""
    array = np.random.default_rng(0).random(elements, dtype=np.float32)
    if direction == "to_device":
        device.put(array)
        return [_timed(lambda: device.put(array)) for _ in range(REPEATS)]
    times = []
    for _ in range(REPEATS + 1):
        # A fresh copy on the device each time: a JAX array keeps its host copy once
        # fetched, so a second `get` of the same handle would copy nothing.
        handle = device.put(array)
        mark_newer_on_device = getattr(handle, "set_device_dirty", None)
        if mark_newer_on_device is not None:
            mark_newer_on_device(True)  # so that get really copies back
        times.append(_timed(functools.partial(device.get, handle)))
    return times[1:]


def measure_transfers(store: MeasurementStore, fingerprint: str, device: Device,
                      version: str) -> int:
    """Stores the copy times of every size and direction not yet stored; returns how many."""
    stored = store.calibration_keys(fingerprint)
    added = 0
    for direction in DIRECTIONS:
        for elements in SIZES:
            shapes = ((elements,),)
            key = (COPY_KERNEL, direction, device.name, "train", "float32", shapes, 0)
            if key in stored:
                continue
            times = copy_times(device, elements, direction)
            record = Times(tuple(times), 0.0, thread_settings()).record(
                Combination(COPY_KERNEL, direction, device.name),
                Query(COPY_KERNEL, shapes, "float32", math.nan), "calibration")
            store.add(replace(record, split="train", when=now(), fingerprint=fingerprint,
                              annc_version=version))
            added += 1
    return added
