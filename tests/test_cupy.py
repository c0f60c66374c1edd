"""The CuPy variants: nothing registered without a GPU; their formulas checked on the CPU
through a numpy stand-in for CuPy; on a machine with a GPU (`-m gpu`), JAX and CuPy
kernels passing values to one another on the device.

The stand-in offers exactly the CuPy calls the variants make, each backed by numpy,
so the index arithmetic of the FFT convolution, the reductions and the 0-d operands
are checked here against the numpy reference; `tests/test_variants.py` checks the
real CuPy variants the same way where they are registered.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from annc.hardware.devices import cupy_runtime
from annc.hardware.devices.available import JaxGpuDevice, available_devices
from annc.hardware.variants import all_variants, cupy_gpu, load_library
from annc.hardware.variants.check import CHECK_SHAPES, DTYPES, check_variant
from annc.hardware.variants.reference import standard_complexity_of
from annc.hardware.variants.registry import Variant

load_library()


def _numpy_as_cupy() -> types.SimpleNamespace:
    stream = types.SimpleNamespace(synchronize=lambda: None)
    cuda = types.SimpleNamespace(
        Device=lambda ordinal: contextlib.nullcontext(),
        get_current_stream=lambda: stream,
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
    )
    names = ("matmul", "dot", "sum", "sqrt", "exp", "abs", "negative", "add", "subtract",
             "multiply", "divide", "ones", "from_dlpack")
    return types.SimpleNamespace(cuda=cuda, fft=np.fft, __version__="stand-in",
                                 **{name: _arrays_only(getattr(np, name)) for name in names})


def _arrays_only(function: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """numpy returns scalars for 0-d results; CuPy, like annc, returns 0-d arrays."""
    return lambda *args, **kwargs: np.asarray(function(*args, **kwargs))


def test_without_a_gpu_the_module_imports_and_returns_no_variants() -> None:
    if cupy_runtime.cupy_module() is not None:
        pytest.skip("CuPy sees a GPU here")
    assert not [v for v in all_variants() if v.backend == "cupy"]
    code = "import hardware.variants.cupy_gpu as m; print(m.variants())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_the_variant_table_covers_every_kernel_once() -> None:
    table = cupy_gpu.functions(_numpy_as_cupy())
    kernels = sorted(kernel for kernel, _ in table)
    assert len(kernels) == len(set(kernels)) == 15
    assert table.keys() >= {("matmul", "cupy"), ("matvec", "cupy"), ("conv2d", "cupy.fft")}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_each_formula_matches_the_reference_through_a_numpy_stand_in(
    dtype: np.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _numpy_as_cupy()
    monkeypatch.setattr(cupy_runtime, "cupy_module", lambda: fake)
    failures = []
    for (kernel, name), factory in cupy_gpu.functions(fake).items():
        # On the CPU device: operands are numpy arrays, results come back as JAX arrays.
        variant = Variant(kernel=kernel, name=name, device="cpu", backend="cupy",
                          build=cupy_gpu._build(fake, factory, 0),
                          complexity=standard_complexity_of(kernel))
        for shapes in CHECK_SHAPES[kernel]:
            result = check_variant(variant, shapes, dtype)
            if not result.passed:
                failures.append(result.describe())
    assert not failures, "\n".join(failures)


def test_the_gpu_device_copies_a_cupy_array_back_when_asked() -> None:
    class FakeCupyArray:
        __module__ = "cupy._core.core"

        def get(self) -> np.ndarray:
            return np.arange(3.0)

    device = JaxGpuDevice.__new__(JaxGpuDevice)
    assert cupy_runtime.is_cupy_array(FakeCupyArray())
    assert not cupy_runtime.is_cupy_array(np.zeros(1))
    assert np.array_equal(device.get(FakeCupyArray()), np.arange(3.0))


def _gpu_with_cupy() -> None:
    if "gpu" not in available_devices() or cupy_runtime.cupy_module() is None:
        pytest.skip("no CUDA GPU seen by both JAX and CuPy")


@pytest.mark.gpu
def test_cupy_variants_are_registered_where_cupy_sees_the_gpu() -> None:
    _gpu_with_cupy()
    names = {(v.kernel, v.name) for v in all_variants()
             if v.device == "gpu" and v.backend == "cupy"}
    assert names == set(cupy_gpu.functions(cupy_runtime.cupy_module()))


@pytest.mark.gpu
def test_jax_and_cupy_kernels_pass_values_on_the_gpu() -> None:
    _gpu_with_cupy()
    from annc.hardware.variants import get_variant
    from annc.hardware.variants.compiled import compiled

    gpu = available_devices()["gpu"]
    rng = np.random.default_rng(0)
    a, b = rng.random((33, 17), dtype=np.float32), rng.random((17, 9), dtype=np.float32)
    shapes = ((33, 17), (17, 9))
    product = compiled(get_variant("matmul", "cupy", "gpu"), shapes, np.float32).kernel(
        gpu.put(a), gpu.put(b))
    doubled = compiled(get_variant("add", "jax", "gpu"), ((33, 9), (33, 9)), np.float32).kernel(
        product, product)
    back = compiled(get_variant("neg", "cupy", "gpu"), ((33, 9),), np.float32).kernel(doubled)
    np.testing.assert_allclose(gpu.get(back), -2 * (a @ b), rtol=1e-5)
    assert gpu.get(gpu.put(cupy_runtime.to_cupy(gpu.put(a)))).tolist() == a.tolist()
