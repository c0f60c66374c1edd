"""Every registered variant computes its kernel: checked against the numpy
reference on odd, prime and degenerate shapes in f32 and f64; and the checker
itself rejects wrong implementations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from annc.hardware.variants import (
    KERNELS,
    Variant,
    algorithms,
    all_variants,
    complexity,
    load_library,
)
from annc.hardware.variants.check import CHECK_SHAPES, DTYPES, check_variant
from annc.hardware.variants.reference import REFERENCE_FUNCTIONS, conv2d_same

load_library()

ROOT = Path(__file__).resolve().parents[1]


def _param(variant: Variant, dtype: np.dtype) -> object:
    marks = [pytest.mark.gpu] if variant.device == "gpu" else []
    ident = f"{variant.kernel}-{variant.name}-{variant.device}-{dtype.name}"
    return pytest.param(variant, dtype, id=ident, marks=marks)


@pytest.mark.parametrize(
    ("variant", "dtype"), [_param(v, d) for v in all_variants() for d in DTYPES]
)
def test_variant_matches_reference_on_every_check_shape(variant: Variant, dtype: np.dtype) -> None:
    results = [check_variant(variant, shapes, dtype) for shapes in CHECK_SHAPES[variant.kernel]]
    failures = [r.describe() for r in results if not r.passed]
    assert not failures, "\n".join(failures)
    assert any(r.applicable for r in results), "the variant applies to none of the check shapes"


@pytest.mark.parametrize("variant", list(all_variants()), ids=lambda v: "-".join(v.key))
def test_complexity_and_workspace_are_sane(variant: Variant) -> None:
    for shapes in CHECK_SHAPES[variant.kernel]:
        assert variant.complexity(shapes) > 0
        assert variant.workspace_bytes(shapes, 8) >= 0


def test_every_kernel_has_more_than_the_reference() -> None:
    for kernel in KERNELS:
        names = {v.name for v in all_variants() if v.kernel == kernel and v.device == "cpu"}
        assert len(names) >= 3, (kernel, names)


def test_load_library_is_idempotent() -> None:
    before = list(all_variants())
    load_library()
    assert list(all_variants()) == before


def test_importing_the_catalogue_loads_neither_jax_nor_halide() -> None:
    code = ("import sys, hardware.variants; "
            "print(sorted(m for m in ('jax', 'halide') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the checker catches wrong implementations ---------------------------------------------


def _wrong(kernel: str, function: object) -> Variant:
    return Variant(kernel=kernel, name="wrong", device="cpu", backend="numpy",
                   build=lambda shapes, dtype: function, complexity=lambda shapes: 1.0)


def _other_dtype(dtype: np.dtype) -> type:
    return np.float64 if dtype == np.float32 else np.float32


def _correlate(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return conv2d_same(image, weights[::-1, ::-1])


WRONG = [
    ("matmul", lambda a, b: np.ascontiguousarray((a @ b).T), ((64, 64), (64, 64))),
    ("matmul", lambda a, b: (a @ b).astype(_other_dtype(a.dtype)), ((7, 5), (5, 3))),
    ("conv2d", _correlate, ((17, 23), (3, 5))),
    ("conv2d", _correlate, ((5, 5), (7, 9))),
    ("conv2d", lambda a, k: conv2d_same(a, k)[::-1].copy(), ((13, 29), (15, 3))),
    ("transpose", lambda a: a.copy(), ((13, 13),)),
    ("sum", lambda a: np.asarray(np.sum(a.reshape(-1)[:-1])), ((13, 17),)),
    ("norm", lambda a: np.asarray(np.sum(a * a)), ((13, 17),)),
    ("dot", lambda x, y: np.asarray(np.dot(x[1:], y[1:])), ((31,), (31,))),
    ("abs", lambda a: a.copy(), ((13, 17),)),
    ("div", lambda a, b: b / a, ((7,), (7,))),
    ("sub", lambda a, b: b - a, ((), (13, 17))),
    ("exp", lambda a: np.exp(a.astype(np.float16)).astype(a.dtype), ((13, 17),)),
    ("matvec", lambda a, x: (a @ x)[:, None], ((31, 17), (17,))),
]


@pytest.mark.parametrize(("kernel", "function", "shapes"), WRONG,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(WRONG)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_checker_rejects_a_wrong_implementation(kernel, function, shapes, dtype) -> None:
    result = check_variant(_wrong(kernel, function), shapes, dtype)
    assert not result.passed, result


def test_checker_reports_a_crash_as_a_failure() -> None:
    def crash(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise MemoryError("out of memory")

    result = check_variant(_wrong("matmul", crash), ((2, 3), (3, 4)), np.float32)
    assert not result.passed and "MemoryError" in result.message


def test_the_reference_passes_its_own_checks_exactly_where_it_should() -> None:
    for kernel in ("matmul", "conv2d", "sum"):
        variant = _wrong(kernel, REFERENCE_FUNCTIONS[kernel])
        for shapes in CHECK_SHAPES[kernel]:
            assert check_variant(variant, shapes, np.float64).passed


# -- algorithms ----------------------------------------------------------------------------


@pytest.mark.parametrize(("m", "k", "n"), [(33, 17, 65), (40, 40, 40), (101, 67, 1), (70, 99, 71)])
def test_strassen_recurses_correctly_on_odd_and_rectangular_sizes(m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random((m, k)), rng.random((k, n))
    np.testing.assert_allclose(algorithms.strassen(a, b, leaf=4), a @ b, rtol=1e-12, atol=1e-12)


def test_strassen_operation_count_grows_like_n_to_the_log2_7() -> None:
    assert complexity.strassen_operations(64, 64, 64) == 64**3
    big, bigger = (complexity.strassen_operations(n, n, n, leaf=16) for n in (1024, 2048))
    assert big < 1024**3
    assert bigger / big == pytest.approx(7, rel=0.05)


def test_fast_length_is_five_smooth_and_not_below_n() -> None:
    for n in range(1, 300):
        length = complexity.fast_length(n)
        assert length >= n
        for factor in (2, 3, 5):
            while length % factor == 0:
                length //= factor
        assert length == 1


def test_every_built_in_source_claims_exactly_its_own_variants() -> None:
    """`load_variant` imports only the source whose claim matches a name: each claim must
    match its module's variants and no other source's."""
    import importlib

    from annc.hardware.variants import BUILT_IN, load_library, skipped_modules

    load_library()
    for source in BUILT_IN:
        if source.module in skipped_modules():
            continue
        own = importlib.import_module(source.module).variants()
        assert all(source.claims(v.name, v.device) for v in own), source.module
        for other in BUILT_IN:
            if other is not source and other.module not in skipped_modules():
                theirs = importlib.import_module(other.module).variants()
                assert not any(source.claims(v.name, v.device) for v in theirs), \
                    (source.module, other.module)


def test_no_module_registers_a_variant_when_imported() -> None:
    """The library is built explicitly: importing a source changes nothing."""
    code = ("import hardware.variants as v, hardware.variants.cpu_numpy, "
            "annc.hardware.variants.algorithms\n"
            "print(sorted({x.name for x in v.all_variants()}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['numpy.reference']"

