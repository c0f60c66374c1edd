"""Physics workloads run by `annc.run_file`, checked against numpy written here."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import convolve2d

import annc
from annc import RunError

ROOT = Path(__file__).resolve().parent.parent
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)


def write(tmp_path: Path, text: str, name: str = "w.ann") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def annc_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "annc", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=60)


HEAT = """
param N = 12
param STEPS = 7
input T : {dtype}[N, N]
input alpha : {dtype}
const L : {dtype}[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
repeat STEPS {{
  T = T + alpha * conv2d(T, L)
}}
E = sum(T * T)
output T, E
"""


@pytest.mark.parametrize(("dtype", "rtol"), [("f64", 1e-12), ("f32", 1e-5)])
def test_heat_diffusion(tmp_path: Path, dtype: str, rtol: float) -> None:
    np_dtype = np.float64 if dtype == "f64" else np.float32
    rng = np.random.default_rng(1)
    T0 = rng.random((12, 12)).astype(np_dtype)
    result = annc.run_file(write(tmp_path, HEAT.format(dtype=dtype)),
                           inputs={"T": T0, "alpha": np.array(0.2)})
    T = T0.astype(np.float64)
    for _ in range(7):
        T = T + 0.2 * convolve2d(T, LAPLACIAN, mode="same")
    assert result.outputs["T"].dtype == np_dtype
    assert result.outputs["E"].shape == ()
    np.testing.assert_allclose(result.outputs["T"], T, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(result.outputs["E"], np.sum(T * T), rtol=rtol)


def test_heat_with_an_asymmetric_kernel_matches_scipy(tmp_path: Path) -> None:
    text = """
input A : f64[7, 9]
input K : f64[3, 5]
B = conv2d(A, K)
output B
"""
    rng = np.random.default_rng(2)
    A, K = rng.random((7, 9)), rng.random((3, 5))
    result = annc.run_file(write(tmp_path, text), inputs={"A": A, "K": K})
    np.testing.assert_allclose(result.outputs["B"], convolve2d(A, K, mode="same"), rtol=1e-12)


WAVE = """
# leapfrog for the 2-D wave equation
param N = 10
param STEPS = 6
input U : f64[N, N]
input c2 : f64
const L : f64[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
U_prev = U
repeat STEPS {
  U_next = 2 * U - U_prev + c2 * conv2d(U, L)
  U_prev = U
  U = U_next
}
output U, U_prev
"""


def test_wave_equation_leapfrog(tmp_path: Path) -> None:
    x = np.linspace(-1, 1, 10)
    U0 = np.exp(-10 * (x[:, None] ** 2 + x[None, :] ** 2))
    result = annc.run_file(write(tmp_path, WAVE), inputs={"U": U0, "c2": np.float64(0.1)})
    U, U_prev = U0.copy(), U0.copy()
    for _ in range(6):
        U, U_prev = 2 * U - U_prev + 0.1 * convolve2d(U, LAPLACIAN, mode="same"), U
    np.testing.assert_allclose(result.outputs["U"], U, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(result.outputs["U_prev"], U_prev, rtol=1e-12, atol=1e-14)


POWER = """
param N = 8
param ITERATIONS = 60
input H : f64[N, N]
input v : f64[N]
repeat ITERATIONS {
  v = matvec(H, v)
  v = v / norm(v)
}
lambda = dot(v, matvec(H, v))
output v, lambda
"""


def test_power_iteration_finds_the_largest_eigenvalue(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    eigenvalues = np.array([10.0, 5, 4, 3, 2, 1, 0.5, 0.1])
    H = Q @ np.diag(eigenvalues) @ Q.T
    v0 = np.ones(8)
    result = annc.run_file(write(tmp_path, POWER), inputs={"H": H, "v": v0})
    v = v0
    for _ in range(60):
        v = H @ v
        v = v / np.linalg.norm(v)
    np.testing.assert_allclose(result.outputs["v"], v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.outputs["lambda"], 10.0, rtol=1e-8)


CG = """
# conjugate gradients for A x = b, A symmetric positive definite
param N = 16
param ITERATIONS = 16
input A : f64[N, N]
input b : f64[N]
x = b * 0
r = b
p = r
rr = dot(r, r)
repeat ITERATIONS {
  Ap = matvec(A, p)
  a = rr / dot(p, Ap)
  x = x + a * p
  r = r - a * Ap
  rr_new = dot(r, r)
  p = r + (rr_new / rr) * p
  rr = rr_new
}
output x, rr
"""


def test_conjugate_gradients_solves_an_spd_system(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    M = rng.standard_normal((16, 16))
    A = M @ M.T + 16 * np.eye(16)
    b = rng.standard_normal(16)
    result = annc.run_file(write(tmp_path, CG), inputs={"A": A, "b": b})
    x, r = np.zeros(16), b.copy()
    p, rr = r.copy(), r @ r
    for _ in range(16):
        Ap = A @ p
        a = rr / (p @ Ap)
        x, r = x + a * p, r - a * Ap
        rr_new = r @ r
        p, rr = r + (rr_new / rr) * p, rr_new
    np.testing.assert_allclose(result.outputs["x"], x, rtol=1e-10)
    np.testing.assert_allclose(result.outputs["x"], np.linalg.solve(A, b), rtol=1e-8)
    assert result.outputs["rr"].shape == ()


GRAM = """
input A : {dtype}[6, 4]
G = matmul(transpose(A), A)
trace_like = sum(G)
output G, trace_like
"""


@pytest.mark.parametrize(("dtype", "rtol"), [("f64", 1e-12), ("f32", 1e-5)])
def test_gram_matrix(tmp_path: Path, dtype: str, rtol: float) -> None:
    A = np.random.default_rng(5).random((6, 4))
    result = annc.run_file(write(tmp_path, GRAM.format(dtype=dtype)), inputs={"A": A})
    np.testing.assert_allclose(result.outputs["G"], A.T @ A, rtol=rtol)
    np.testing.assert_allclose(result.outputs["trace_like"], np.sum(A.T @ A), rtol=rtol)
    assert result.outputs["G"].dtype == (np.float64 if dtype == "f64" else np.float32)


def test_elementwise_kernels_and_scalars(tmp_path: Path) -> None:
    text = """
input x : f64[5]
input s : f64
y = -exp(x) + sqrt(abs(x - 0.5)) * s / 2
n = norm(y) + 1
output y, n
"""
    x = np.linspace(-1, 1, 5)
    result = annc.run_file(write(tmp_path, text), inputs={"x": x, "s": np.float64(3)})
    y = -np.exp(x) + np.sqrt(np.abs(x - 0.5)) * 3 / 2
    np.testing.assert_allclose(result.outputs["y"], y, rtol=1e-12)
    np.testing.assert_allclose(result.outputs["n"], np.linalg.norm(y) + 1, rtol=1e-12)


def test_loops_with_zero_trips_leave_values_unchanged(tmp_path: Path) -> None:
    text = """
param STEPS = 3
input x : f64[4]
repeat 0 { x = x * 100 }
repeat STEPS { x = x + 1 }
output x
"""
    x = np.arange(4.0)
    path = write(tmp_path, text)
    result = annc.run_file(path, inputs={"x": x}, params={"STEPS": 0})
    np.testing.assert_array_equal(result.outputs["x"], x)
    assert all(op["kernel"] != "mul" for op in result.report["ops"])


def test_a_loop_of_zero_trips_whose_variants_are_built_is_selected_without_warnings(
        tmp_path: Path) -> None:
    """Its ops cost nothing with a variant built already: no ratio to divide by zero."""
    annc.run_file(write(tmp_path, "input x : f64[4]\nrepeat 2 { x = x * 2 }\noutput x\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = annc.run_file(write(tmp_path, "input x : f64[4]\nrepeat 0 { x = x * 2 }\n"
                                               "output x\n"), inputs={"x": np.arange(4.0)})
    np.testing.assert_array_equal(result.outputs["x"], np.arange(4.0))


def test_nested_loops_run_inner_times_outer(tmp_path: Path) -> None:
    text = """
input x : f64[3]
c = 0
repeat 3 {
  repeat 4 {
    x = x * 2
    c = c + 1
  }
  x = x - 1
}
output x, c
"""
    x0 = np.array([1.0, 2.0, 3.0])
    result = annc.run_file(write(tmp_path, text), inputs={"x": x0})
    x = x0
    for _ in range(3):
        x = x * 16 - 1
    np.testing.assert_array_equal(result.outputs["x"], x)
    assert float(result.outputs["c"]) == 12.0
    executions = {op["loc"]: op["executions"] for op in result.report["ops"]}
    assert sorted(executions.values()) == [3, 12, 12]


def test_a_literal_output_and_a_constant_output(tmp_path: Path) -> None:
    text = """
const g : f32 = 9.81
k = 2
output g, k
"""
    result = annc.run_file(write(tmp_path, text))
    assert result.outputs["g"].dtype == np.float32
    np.testing.assert_allclose(result.outputs["g"], 9.81, rtol=1e-6)
    assert float(result.outputs["k"]) == 2.0


def test_absent_inputs_are_generated_from_the_seed(tmp_path: Path) -> None:
    text = "input A : f64[3, 4]\ninput b : f32[4]\noutput A, b\n"
    path = write(tmp_path, text)
    first = annc.run_file(path, seed=7)
    again = annc.run_file(path, seed=7)
    other = annc.run_file(path, seed=8)
    rng = np.random.default_rng(7)
    A = rng.random((3, 4), dtype=np.float64)
    b = rng.random((4,), dtype=np.float32)
    np.testing.assert_array_equal(first.outputs["A"], A)
    np.testing.assert_array_equal(first.outputs["b"], b)
    np.testing.assert_array_equal(again.outputs["A"], first.outputs["A"])
    assert not np.array_equal(other.outputs["A"], first.outputs["A"])
    assert ((first.outputs["A"] >= 0) & (first.outputs["A"] < 1)).all()


def test_given_inputs_are_converted_to_the_declared_dtype(tmp_path: Path) -> None:
    path = write(tmp_path, "input x : f32[3]\ny = x * 2\noutput y\n")
    result = annc.run_file(path, inputs={"x": np.array([1, 2, 3])})
    assert result.outputs["y"].dtype == np.float32
    np.testing.assert_array_equal(result.outputs["y"], [2, 4, 6])


def test_a_wrong_shape_input_names_both_shapes(tmp_path: Path) -> None:
    path = write(tmp_path, "input x : f32[3]\noutput x\n")
    with pytest.raises(annc.AnncError, match=r"input x: .*\[4\].*f32\[3\]"):
        annc.run_file(path, inputs={"x": np.zeros(4)})


def test_a_pin_to_a_missing_device_fails_when_run(tmp_path: Path) -> None:
    path = write(tmp_path, "input x : f32[3]\ny = x * 2 @gpu\noutput y\n")
    annc.compile_file(path)
    from annc.running import _devices

    if "gpu" in _devices():
        pytest.skip("this machine has a gpu device")
    with pytest.raises(RunError) as caught:
        annc.run_file(path)
    assert "w.ann:2:7" in str(caught.value)
    assert "pinned to @gpu, but this machine has no gpu device" in str(caught.value)


# The report -----------------------------------------------------------------------


def test_report_has_the_design_schema(tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNC_HOME", str(tmp_path / "home"))  # nothing built yet
    program = write(tmp_path, HEAT.format(dtype="f32"))
    result = annc.run_file(program, builds="never")  # every op one by one: nothing built
    report = result.report
    assert {"ops", "total_predicted_s", "total_measured_s", "models"} <= set(report)
    assert [op["index"] for op in report["ops"]] == list(range(len(report["ops"])))
    for op in report["ops"]:
        assert {"index", "kernel", "variant", "device", "shapes", "predicted_s",
                "measured_s"} <= set(op)
        assert isinstance(op["measured_s"], float) and op["measured_s"] >= 0
    conv = next(op for op in report["ops"] if op["kernel"] == "conv2d")
    assert conv["shapes"] == [[12, 12], [3, 3]]
    records = {r.index: r for r in result.records}
    for op in report["ops"]:  # the median per execution, the first left out from 3 on
        times = records[op["index"]].times
        assert len(times) == op["executions"]
        steady = statistics.median(times[1:] if len(times) >= 3 else times)
        assert op["steady_s"] == pytest.approx(steady)
    assert conv["device"] == "cpu"
    assert report["total_measured_s"] == pytest.approx(
        sum(op["measured_s"] for op in report["ops"]))
    json.dumps(report)
    report = annc.run_file(program, builds="first").report  # what selection chose, built
    for region in report["regions"]:
        assert 0 < region["steady_s"] <= region["measured_s"]
    assert report["total_measured_s"] == pytest.approx(
        sum(op["measured_s"] for op in report["ops"])
        + sum(region["measured_s"] for region in report["regions"]))
    json.dumps(report)


# The command line -----------------------------------------------------------------


def test_cli_inputs_save_and_report(tmp_path: Path) -> None:
    write(tmp_path, HEAT.format(dtype="f64"), "heat.ann")
    T0 = np.random.default_rng(9).random((6, 6))
    np.savez(tmp_path / "in.npz", T=T0, alpha=np.array(0.1))
    done = annc_cli("run", "heat.ann", "-D", "N=6", "-D", "STEPS=2", "--inputs", "in.npz",
                    "--save", "out.npz", "--report", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [op["kernel"] for op in report["ops"]] == ["conv2d", "mul", "add", "mul", "sum"]
    assert isinstance(report["total_measured_s"], float)
    with np.load(tmp_path / "out.npz") as saved:
        assert sorted(saved.files) == ["E", "T"]
        T = T0
        for _ in range(2):
            T = T + 0.1 * convolve2d(T, LAPLACIAN, mode="same")
        np.testing.assert_allclose(saved["T"], T, rtol=1e-12)
        assert saved["E"].shape == ()
        np.testing.assert_allclose(saved["E"], np.sum(T * T), rtol=1e-12)


def test_cli_wrong_shape_and_non_archive_inputs(tmp_path: Path) -> None:
    write(tmp_path, "input T : f64[4, 4]\noutput T\n", "w.ann")
    np.savez(tmp_path / "bad.npz", T=np.zeros((3, 4)))
    (tmp_path / "junk.npz").write_text("not an archive")
    done = annc_cli("run", "w.ann", "--inputs", "bad.npz", cwd=tmp_path)
    assert done.returncode == 1
    assert "input T" in done.stderr and "[3, 4]" in done.stderr and "f64[4, 4]" in done.stderr
    assert "Traceback" not in done.stderr
    done = annc_cli("run", "w.ann", "--inputs", "junk.npz", cwd=tmp_path)
    assert done.returncode == 1
    assert "junk.npz" in done.stderr and "Traceback" not in done.stderr


def test_read_archive_refuses_a_single_array_file(tmp_path: Path) -> None:
    from annc import DataError
    from annc.hardware.execution.rundata import read_archive

    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match="single array"):
        read_archive(tmp_path / "one.npy")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.npz"):
        read_archive(tmp_path / "empty.npz")


def test_memory_refusal_names_the_largest_tensor_before_allocating() -> None:
    start = time.perf_counter()
    with pytest.raises(annc.AnncError) as caught:
        annc.run_file(ROOT / "examples" / "heat.ann", params={"N": 200000})
    assert time.perf_counter() - start < 10
    message = str(caught.value)
    assert "T : f32[200000, 200000]" in message
    assert "160000000000 bytes" in message


def test_cli_memory_refusal_exits_1(tmp_path: Path) -> None:
    done = annc_cli("run", ROOT / "examples" / "heat.ann", "-D", "N=200000", cwd=tmp_path)
    assert done.returncode == 1
    assert "f32[200000, 200000]" in done.stderr and "bytes" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_counter_bound_to_a_number_takes_the_dtype_its_loop_needs(tmp_path: Path) -> None:
    text = """
input x : f32[2]
s = 1
c = 0
repeat 3 {
  s = s * 2
  x = x * s
  c = c + 1
}
output x, s, c
"""
    result = annc.run_file(write(tmp_path, text), inputs={"x": np.ones(2)})
    assert result.outputs["x"].dtype == np.float32
    assert result.outputs["s"].dtype == np.float32
    assert result.outputs["c"].dtype == np.float64
    np.testing.assert_array_equal(result.outputs["x"], [64, 64])
    assert float(result.outputs["c"]) == 3.0


def test_a_text_file_as_inputs_is_not_called_pickled_data(tmp_path: Path) -> None:
    from annc import DataError
    from annc.hardware.execution.rundata import read_archive

    (tmp_path / "notes.npz").write_text("T = 1, 2, 3\n")
    with pytest.raises(DataError, match=r"notes\.npz: not an \.npz archive; save inputs") as info:
        read_archive(tmp_path / "notes.npz")
    assert "pickle" not in str(info.value)
