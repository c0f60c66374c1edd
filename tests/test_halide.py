"""The Halide variants: right answers on odd and degenerate shapes in both dtypes,
auto-schedules that really come from the named auto-scheduler, and the OpenCL
device's copies and residency.

Shapes are few but chosen to reach every branch of the schedules: extents below one
vector, tails, and sizes large enough to take the parallel paths.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("halide")

from annc.hardware import events
from annc.hardware.devices.opencl import opencl_available, opencl_device
from annc.hardware.variants import load_library, variants_for
from annc.hardware.variants.check import check_variant
from annc.hardware.variants.halide.pipeline import AUTOSCHEDULERS
from annc.hardware.variants.halide.schedule_traits import fused
from annc.hardware.variants.halide.schedules import tile
from annc.hardware.variants.registry import Shapes, Variant

load_library()

SHAPES: dict[str, tuple[Shapes, ...]] = {
    "matmul": (((1, 1), (1, 1)), ((1, 7), (7, 1)), ((7, 1), (1, 5)), ((40, 41), (41, 43))),
    "matvec": (((1, 1), (1,)), ((9, 1), (1,)), ((1, 9), (9,)), ((130, 300), (300,))),
    "conv2d": (((1, 1), (3, 3)), ((1, 9), (1, 3)), ((5, 5), (7, 9)), ((48, 50), (3, 5))),
    "transpose": (((1, 1),), ((1, 7),), ((7, 1),), ((190, 210),)),
    "dot": (((1,), (1,)), ((31,), (31,)), ((150_001,), (150_001,))),
    "sum": (((),), ((1, 1),), ((3, 5, 7),), ((300, 500),)),
    "norm": (((),), ((1, 9),), ((300, 500),)),
}
_UNARY: tuple[Shapes, ...] = (((),), ((1,),), ((3, 5, 7),), ((300, 500),))
_BINARY: tuple[Shapes, ...] = (
    ((), ()), ((1,), (1,)), ((), (13, 17)), ((13, 17), ()), ((3, 5, 7), (3, 5, 7)),
    ((300, 500), (300, 500)),
)
SHAPES |= {kernel: _UNARY for kernel in ("exp", "sqrt", "abs", "neg")}
SHAPES |= {kernel: _BINARY for kernel in ("add", "sub", "mul", "div")}

DTYPES = (np.float32, np.float64)
needs_opencl = pytest.mark.skipif(not opencl_available(), reason="no OpenCL platform")


def halide_variants(device: str) -> list[Variant]:
    return [
        variant
        for kernel in SHAPES
        for variant in variants_for(kernel, device)
        if variant.backend == "halide"
    ]


def cases(device: str) -> list[pytest.param]:
    return [
        pytest.param(variant, shapes, id=f"{variant.kernel}-{variant.name}-{shapes}")
        for variant in halide_variants(device)
        for shapes in SHAPES[variant.kernel]
    ]


def test_every_kernel_has_halide_variants_on_the_cpu() -> None:
    kernels = {variant.kernel for variant in halide_variants("cpu")}
    assert kernels == set(SHAPES)
    names = {variant.name for variant in variants_for("matmul", "cpu")}
    assert {"halide.tiled", *(f"halide.auto.{name}" for name in AUTOSCHEDULERS)} <= names


@pytest.mark.parametrize(("variant", "shapes"), cases("cpu"))
def test_cpu_variant_matches_reference(variant: Variant, shapes: Shapes) -> None:
    for dtype in DTYPES:
        result = check_variant(variant, shapes, dtype)
        assert result.passed, result.describe()


@needs_opencl
@pytest.mark.parametrize(("variant", "shapes"), cases("opencl"))
def test_opencl_variant_matches_reference(variant: Variant, shapes: Shapes) -> None:
    for dtype in DTYPES:
        result = check_variant(variant, shapes, dtype)
        assert result.passed, result.describe()


@pytest.mark.parametrize("scheduler", sorted(AUTOSCHEDULERS))
@pytest.mark.parametrize("kernel", ["matmul", "conv2d"])
def test_auto_variants_are_scheduled_by_the_named_autoscheduler(
    kernel: str, scheduler: str
) -> None:
    variant = next(v for v in variants_for(kernel, "cpu") if v.name.endswith(scheduler))
    built = variant.build(SHAPES[kernel][-1], np.dtype(np.float32))
    assert built.schedule is not None
    assert built.schedule.scheduler == AUTOSCHEDULERS[scheduler]
    assert "compute_" in built.schedule.source or "vectorize" in built.schedule.source


def test_own_schedules_carry_no_autoschedule() -> None:
    variant = next(v for v in variants_for("matmul", "cpu") if v.name == "halide.tiled")
    assert variant.build(((4, 4), (4, 4)), np.dtype(np.float64)).schedule is None


@pytest.mark.parametrize(("extent", "wanted", "lane"), [(1, 32, 8), (7, 32, 8), (9, 32, 8),
                                                       (100, 32, 8), (100, 64, 1)])
def test_tiles_never_exceed_the_extent(extent: int, wanted: int, lane: int) -> None:
    size = tile(extent, wanted, lane)
    assert 1 <= size <= min(extent, max(wanted, lane))
    assert size == extent or size % lane == 0


def test_opencl_probe_is_false_without_a_loader() -> None:
    assert opencl_available("annc-no-such-opencl-library") is False


@needs_opencl
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (1,), (3, 4), (2, 3, 5)])
def test_opencl_put_get_round_trips(shape: tuple[int, ...], dtype: type) -> None:
    device = opencl_device()
    assert device is not None and device.name == "opencl"
    array = np.random.default_rng(1).random(shape).astype(dtype)
    handle = device.put(array)
    assert handle.has_device_allocation()
    back = device.get(handle)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@needs_opencl
def test_opencl_results_stay_on_the_device_until_fetched() -> None:
    device = opencl_device()
    assert device is not None
    variant = next(v for v in variants_for("add", "opencl") if v.backend == "halide")
    kernel = variant.build(((5, 6), (5, 6)), np.dtype(np.float32))
    a, b = np.ones((5, 6), np.float32), np.full((5, 6), 2.0, np.float32)
    out = kernel(device.put(a), device.put(b))
    assert out.device_dirty() and not out.host_dirty()
    np.testing.assert_array_equal(device.get(out), a + b)


def test_f64_exp_in_a_fresh_process_calls_the_c_library_not_the_pipeline():
    """A pipeline whose output Func was named `exp` made Halide's f64 `exp` calls resolve
    to the pipeline itself ("Buffer argument A is nullptr", then a crash). It showed in a
    process that had imported only the Halide variants, so check in such a process."""
    script = (
        "import numpy as np\n"
        "from hardware.variants import get_variant, load_source\n"
        "load_source('annc.hardware.variants.halide.cpu')\n"
        "for kernel in ('exp', 'sqrt', 'abs'):\n"
        "    run = get_variant(kernel, 'halide').build(((64,),), np.dtype('f8'))\n"
        "    a = np.linspace(0.1, 2.0, 64)\n"
        "    assert np.allclose(run(a), getattr(np, kernel)(a)), kernel\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


def test_only_mullapudi2016s_products_and_convolutions_report_traits() -> None:
    traited = {(v.kernel, v.name) for kernel in ("matmul", "matvec", "conv2d")
               for v in variants_for(kernel, "cpu") if v.traits is not None}
    assert traited == {("matmul", "halide.auto.mullapudi2016"),
                       ("conv2d", "halide.auto.mullapudi2016")}


@pytest.mark.parametrize("shapes", [((13, 13), (13, 13)), ((461, 53), (53, 623))])
def test_the_fused_trait_is_the_schedule_the_build_runs(shapes: Shapes) -> None:
    """The trait is read from the schedule the build then finds in the build cache, so
    the model is told what will run."""

    variant = next(v for v in variants_for("matmul", "cpu")
                   if v.name == "halide.auto.mullapudi2016")
    assert variant.traits is not None
    ((name, value),) = variant.traits(shapes, "f32")
    hits = events.snapshot()["cache hit:schedule"]
    built = variant.build(shapes, np.dtype(np.float32))
    assert built.cached or events.snapshot()["cache hit:schedule"] > hits  # the same schedule
    assert name == "fused"
    assert value == float(fused(built.schedule.source))
