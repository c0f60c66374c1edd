"""Devices, the hardware fingerprint, the build cache and the timing harness."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from annc.dsl.records import Query
from annc.hardware.devices.available import (
    CPU,
    DeviceUnavailableError,
    available_devices,
    get_device,
)
from annc.hardware.devices.fingerprint import fingerprint
from annc.hardware.measure.settings import TimingSettings
from annc.hardware.measure.timing import measure, spread, time_variant
from annc.hardware.variants import get_variant, load_library
from annc.hardware.variants.compiled import compiled

load_library()


def test_the_cpu_is_always_available() -> None:
    devices = available_devices()
    assert next(iter(devices)) == "cpu"
    assert get_device("cpu") is CPU


def test_a_missing_device_is_a_clear_error() -> None:
    with pytest.raises(DeviceUnavailableError, match="not available"):
        get_device("tpu")


def test_fingerprint_is_stable_across_processes() -> None:
    code = "from hardware.devices.fingerprint import fingerprint; print(fingerprint().id)"
    ids = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True).stdout.strip()
        for _ in range(2)
    }
    assert ids == {fingerprint().id}
    assert len(fingerprint().id) == 12
    int(fingerprint().id, 16)


def test_fingerprint_describes_the_machine() -> None:
    machine = fingerprint()
    assert machine.cores >= 1
    assert machine.cpu_model
    assert dict(machine.versions)["numpy"] == np.__version__
    json.dumps(machine.as_dict())


def test_a_build_is_compiled_once_and_shared() -> None:
    variant = get_variant("matmul", "jax")
    first = compiled(variant, ((3, 4), (4, 5)), np.float32)
    again = compiled(variant, [[3, 4], [4, 5]], "float32")
    assert again is first
    assert first.compile_s > 0
    assert compiled(variant, ((3, 4), (4, 5)), np.float64) is not first


def test_measure_returns_a_sane_record() -> None:
    variant = get_variant("matmul", "numpy")
    record = measure(variant, ((32, 32), (32, 32)), np.float32, source="calibration",
                     settings=TimingSettings(min_repeats=7, min_seconds=0.01))
    assert record.combination == ("matmul", "numpy", "cpu") and record.source == "calibration"
    assert record.query == Query("matmul", ((32, 32), (32, 32)), "float32",
                                 float(variant.complexity(((32, 32), (32, 32)))))
    assert record.status == "ok" and record.repeats is not None and record.repeats >= 7
    assert record.seconds is not None and record.seconds > 0
    assert record.spread is not None and record.spread >= 0
    assert record.compile_s is not None and record.compile_s >= 0
    assert "cpus" in record.threads
    times = time_variant(variant, ((32, 32), (32, 32)), np.float32,
                         settings=TimingSettings(min_repeats=7, min_seconds=0.01))
    assert times.repeats >= 7
    assert len(times.times_s) == times.repeats
    assert min(times.times_s) <= times.median_s <= max(times.times_s)


def test_measure_stops_at_max_repeats_and_takes_given_operands() -> None:
    operands = [np.ones((5, 5)), np.ones((5, 5))]
    timing = measure(get_variant("matmul", "jax"), ((5, 5), (5, 5)), np.float64,
                     operands=operands, source="calibration",
                     settings=TimingSettings(min_repeats=3, max_repeats=3, min_seconds=10.0))
    assert timing.repeats == 3


def test_measure_warms_up_for_the_given_time_before_timing() -> None:
    calls = []

    def counting(*operands: np.ndarray) -> np.ndarray:
        calls.append(1)
        return operands[0]

    variant = get_variant("neg", "numpy")
    build = compiled(variant, ((4,),), np.float32)
    original = build.kernel
    object.__setattr__(build, "kernel", counting)
    try:
        timing = measure(variant, ((4,),), np.float32, source="calibration",
                         settings=TimingSettings(min_repeats=3, max_repeats=3, warmup=1,
                                                 warmup_seconds=0.05))
    finally:
        object.__setattr__(build, "kernel", original)
    assert timing.repeats == 3
    assert len(calls) > 3 + 10  # a 0.05 s warm-up of a ~1 µs call is many calls


def test_annc_keeps_freed_memory_and_dispatches_jax_synchronously() -> None:
    import jax

    from annc.hardware.devices import jax_runtime
    from annc.hardware.devices.allocator import keep_freed_memory

    assert jax_runtime.cpu_device() is not None
    assert jax.config.read("jax_cpu_enable_async_dispatch") is False
    if sys.platform.startswith("linux"):
        assert keep_freed_memory() is True
        assert keep_freed_memory() is True  # idempotent


@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 5), (1000, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_])
def test_aligned_empty_starts_on_a_64_byte_boundary(shape, dtype) -> None:
    from annc.hardware.devices.allocator import ALIGNMENT, aligned_empty

    array = aligned_empty(shape, dtype)
    assert array.shape == shape and array.dtype == dtype
    assert array.ctypes.data % ALIGNMENT == 0
    assert array.flags.c_contiguous and array.flags.writeable


def test_aligned_copies_only_what_is_off_the_boundary_or_strided() -> None:
    from annc.hardware.devices.allocator import aligned, aligned_empty, is_aligned

    on_boundary = aligned_empty((16,), np.float64)
    assert aligned(on_boundary) is on_boundary
    base = aligned_empty((17,), np.float64)
    base[:] = np.arange(17)
    off = base[1:]  # 8 bytes past the boundary
    assert not is_aligned(off)
    moved = aligned(off)
    assert is_aligned(moved) and np.array_equal(moved, off) and moved.dtype == off.dtype
    strided = aligned(base[::2])
    assert is_aligned(strided) and strided.flags.c_contiguous
    assert np.array_equal(strided, np.arange(17)[::2])


def test_measured_operands_and_program_inputs_are_aligned() -> None:
    from annc.hardware.devices.allocator import is_aligned
    from annc.hardware.execution.rundata import InputSpec, prepare_inputs
    from annc.hardware.measure.operands import uniform_operands

    for seed in range(8):
        assert all(is_aligned(a) for a in uniform_operands(((33,), (5, 7), ()), np.float64, seed))
    specs = [InputSpec("A", np.dtype(np.float32), (3, 5)),
             InputSpec("B", np.dtype(np.float64), (9,))]
    base = np.arange(10, dtype=np.float64)
    for given in (None, {"B": base[1:]}):
        arrays = prepare_inputs(specs, given, seed=0, generate_missing=True).arrays
        assert all(is_aligned(a) for a in arrays)
    given = prepare_inputs(specs, {"B": base[1:]}, seed=0, generate_missing=True).arrays
    assert np.array_equal(given[1], base[1:])


def test_a_jax_kernel_on_the_cpu_reads_an_aligned_copy_made_once() -> None:
    from annc.hardware.devices.allocator import aligned_empty, is_aligned
    from annc.hardware.execution.residency import Resident

    base = aligned_empty((65,), np.float64)
    base[:] = np.arange(65)
    value = Resident.on_host(base[1:])
    first = value.aligned_host({"cpu": CPU})
    assert is_aligned(first) and np.array_equal(first, np.arange(1, 65))
    assert value.aligned_host({"cpu": CPU}) is first  # kept: values never change
    assert value.host({"cpu": CPU}) is first


def test_spread_is_relative_width_of_the_middle() -> None:
    assert spread([1.0] * 5) == 0.0
    assert spread([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx((4.6 - 1.4) / 3.0)


@pytest.mark.gpu
def test_jax_variants_run_on_the_gpu() -> None:
    if "gpu" not in available_devices():
        pytest.skip("no CUDA GPU visible to JAX")
    timing = measure(get_variant("matmul", "jax", "gpu"), ((256, 256), (256, 256)), np.float32,
                     source="calibration", settings=TimingSettings(min_seconds=0.01))
    assert timing.seconds is not None and timing.seconds > 0


def test_copies_back_are_timed_on_a_fresh_device_copy_each_time() -> None:
    """A JAX array keeps its host copy once fetched: timing `get` on one handle again
    and again would time no copy at all."""
    from annc.hardware.calibration.transfers import REPEATS, copy_times
    from annc.hardware.devices.available import Device

    class CachingDevice(Device):
        name = "caching"

        def __init__(self) -> None:
            self.handles: list[object] = []
            self.fetched: list[object] = []

        def put(self, array: np.ndarray) -> object:
            self.handles.append(object())
            return self.handles[-1]

        def get(self, handle: object) -> np.ndarray:
            assert handle is self.handles[-1] and handle not in self.fetched
            self.fetched.append(handle)
            return np.zeros(1)

    device = CachingDevice()
    times = copy_times(device, 256, "to_host")
    assert len(times) == REPEATS
    assert len(device.fetched) == REPEATS + 1
