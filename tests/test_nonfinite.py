"""NaN and infinity in inputs flow through every kernel as they would in numpy.

No kernel crashes on them and no floating-point warning escapes to the user: the
plan runs kernels under `np.errstate(all="ignore")`, so the outputs are
IEEE results (NaN, ±inf) exactly as numpy computes them, silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import annc
from annc.hardware.devices.available import get_device
from annc.hardware.variants import Variant, all_variants, load_library
from annc.hardware.variants.check import CHECK_SHAPES
from annc.hardware.variants.compiled import compiled
from annc.hardware.variants.reference import REFERENCE_FUNCTIONS, conv2d_same

PROGRAM = """
input A : f64[6, 6]
input v : f64[6]
const K : f64[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
B = matmul(A, transpose(A))
w = matvec(A, v)
C = conv2d(A, K)
s = dot(v, w)
t = sum(B) + norm(v)
D = -(exp(A) - sqrt(A) * (A / (A - A)))
output B, w, C, s, t, D
"""

NUMPY_VARIANTS = {"matmul": "numpy", "matvec": "numpy", "conv2d": "shifted",
                  "transpose": "numpy", "dot": "numpy", "sum": "numpy", "norm": "numpy",
                  "exp": "numpy", "sqrt": "numpy", "abs": "numpy", "add": "numpy",
                  "sub": "numpy", "mul": "numpy", "div": "numpy", "neg": "numpy"}


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.uniform(-1.0, 1.0, (6, 6))
    a[0, 0], a[1, 2], a[3, 4] = np.nan, np.inf, -np.inf
    v = rng.uniform(-1.0, 1.0, 6)
    v[2] = np.inf
    return {"A": a, "v": v}


def _expected(a: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(all="ignore"):
        b = a @ a.T
        w = a @ v
        kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
        return {"B": b, "w": w, "C": conv2d_same(a, kernel), "s": np.dot(v, w),
                "t": np.sum(b) + np.sqrt(np.sum(v * v)),
                "D": -(np.exp(a) - np.sqrt(a) * (a / (a - a)))}


def _program(tmp_path: Path) -> Path:
    path = tmp_path / "nonfinite.ann"
    path.write_text(PROGRAM)
    return path


def test_nan_and_inf_inputs_give_numpys_results_without_warnings(tmp_path, monkeypatch):
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    inputs = _inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = annc.run_file(_program(tmp_path), inputs=inputs, variants=NUMPY_VARIANTS)
    for name, expected in _expected(inputs["A"], inputs["v"]).items():
        np.testing.assert_allclose(result.outputs[name], expected, rtol=1e-12, err_msg=name)
    assert not np.all(np.isfinite(result.outputs["D"]))


def test_nan_and_inf_through_the_chosen_variants_stay_non_finite(tmp_path, monkeypatch):
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    inputs = _inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = annc.run_file(_program(tmp_path), inputs=inputs)
    for name, expected in _expected(inputs["A"], inputs["v"]).items():
        got = result.outputs[name]
        assert np.all(~np.isfinite(got)[~np.isfinite(expected)]), name


def test_nan_and_inf_from_an_inputs_archive_on_the_command_line(tmp_path):
    archive = tmp_path / "in.npz"
    np.savez(archive, **_inputs())
    saved = tmp_path / "out.npz"
    env = {**os.environ, "ANNC_HOME": str(tmp_path / "home"), "PYTHONWARNINGS": "error"}
    env.pop("ANNC_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-m", "annc", "run", str(_program(tmp_path)), "--inputs",
         str(archive), "--save", str(saved), *[f"--variant={k}={v}" for k, v in
                                               NUMPY_VARIANTS.items()]],
        capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr
    with np.load(saved) as outputs:
        d = outputs["D"]
    np.testing.assert_allclose(d, _expected(**{k.lower(): x for k, x in
                                                _inputs().items()})["D"], rtol=1e-12)


def _cpu_variants() -> list[Variant]:
    load_library()
    return [v for v in all_variants() if v.device == "cpu"]


def _shapes(variant: Variant) -> tuple:
    applicable = [s for s in CHECK_SHAPES[variant.kernel]
                  if variant.applies(s, np.dtype(np.float64))]
    roomy = [s for s in applicable if all(np.prod(shape) >= 3 for shape in s)]
    return (roomy or applicable)[0]


def _operands(shapes: tuple) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    operands = []
    for shape in shapes:
        a = rng.uniform(-1.0, 1.0, shape)
        flat = a.reshape(-1)
        flat[: min(3, flat.size)] = [np.nan, np.inf, -np.inf][: min(3, flat.size)]
        operands.append(a)
    return operands


@pytest.mark.parametrize("variant", _cpu_variants(), ids=lambda v: f"{v.kernel}-{v.name}")
def test_every_cpu_variant_survives_nan_and_inf_operands(variant: Variant) -> None:
    """Non-finite where numpy is non-finite; where numpy is finite, the same number,
    except that an FFT convolution spreads one NaN or inf over its whole output."""
    shapes = _shapes(variant)
    operands = _operands(shapes)
    with np.errstate(all="ignore"):
        expected = np.asarray(REFERENCE_FUNCTIONS[variant.kernel](*operands))
    device = get_device("cpu")
    kernel = compiled(variant, shapes, np.float64).kernel
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("error")
        got = np.asarray(device.get(kernel(*[device.put(a) for a in operands])))
    assert got.shape == expected.shape
    assert np.all(~np.isfinite(got)[~np.isfinite(expected)])
    if not variant.name.startswith("fft"):
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-9, atol=1e-12)


def test_f64_inputs_already_infinite_stay_so_in_f32_silently(tmp_path, monkeypatch):
    """Only a finite value that f32 cannot hold is refused (tests/test_faults_inputs.py)."""
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    program = tmp_path / "f32.ann"
    program.write_text("input A : f32[3]\nB = A * A\noutput B\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = annc.run_file(program, inputs={"A": np.array([-np.inf, np.nan, 2.0])})
    b = result.outputs["B"]
    assert b.dtype == np.float32 and np.isposinf(b[0]) and np.isnan(b[1]) and b[2] == 4.0
    assert not any("converted" in note for note in result.notes)


def test_complex_inputs_are_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))
    program = tmp_path / "c.ann"
    program.write_text("input A : f64[2]\nB = A * A\noutput B\n")
    with pytest.raises(annc.AnncError, match=r"input A: .*complex128.*not real numbers"):
        annc.run_file(program, inputs={"A": np.array([1 + 2j, 3.0])})
