"""Every shipped example runs, at small sizes, and agrees with numpy written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import convolve2d

import annc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])


def run(name: str, inputs: dict, **params: int) -> dict[str, np.ndarray]:
    return annc.run_file(EXAMPLES / f"{name}.ann", inputs=inputs, params=params,
                         targets=["cpu"]).outputs


def conv(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    return convolve2d(a, k, mode="same")


def test_every_example_is_covered_here():
    tested = {"heat", "wave", "poisson", "power_iteration", "conjugate_gradients",
              "detector_smoothing", "gram_matrix", "markov_chain"}
    assert {p.stem for p in EXAMPLES.glob("*.ann")} == tested


def test_heat():
    rng = np.random.default_rng(0)
    t, alpha = rng.random((24, 24), dtype=np.float32), np.float32(0.9)
    out = run("heat", {"T": t, "alpha": alpha}, N=24, STEPS=7)
    expected = t.astype(np.float64)
    for _ in range(7):
        expected = expected + 0.2 * 0.9 * conv(expected, LAPLACIAN)
    np.testing.assert_allclose(out["T"], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["E"], np.sum(expected**2), rtol=1e-4)


def test_wave():
    rng = np.random.default_rng(1)
    u, u_prev = rng.random((20, 20), dtype=np.float32), rng.random((20, 20), dtype=np.float32)
    out = run("wave", {"U": u, "U_prev": u_prev}, N=20, STEPS=6)
    now, before = u.astype(np.float64), u_prev.astype(np.float64)
    for _ in range(6):
        now, before = 2 * now - before + 0.25 * conv(now, LAPLACIAN), now
    np.testing.assert_allclose(out["U"], now, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(out["energy"], np.sum(now**2), rtol=1e-3)


def test_poisson():
    rho = np.random.default_rng(2).random((18, 18))
    out = run("poisson", {"rho": rho}, N=18, SWEEPS=25)
    neighbours = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]])
    phi = np.zeros_like(rho)
    for _ in range(25):
        phi = conv(phi, neighbours) + 0.25 * rho
    np.testing.assert_allclose(out["phi"], phi, rtol=1e-12)
    np.testing.assert_allclose(out["residual"], np.linalg.norm(conv(phi, LAPLACIAN) + rho),
                               rtol=1e-10)


def test_power_iteration():
    rng = np.random.default_rng(3)
    a = rng.random((30, 30))
    h = a + a.T
    v = rng.random(30)
    out = run("power_iteration", {"H": h, "v": v}, N=30, ITERATIONS=40)
    for _ in range(40):
        w = h @ v
        v = w / np.linalg.norm(w)
    np.testing.assert_allclose(out["v"], v, rtol=1e-10)
    np.testing.assert_allclose(out["energy"], np.max(np.abs(np.linalg.eigvalsh(h))), rtol=1e-6)


def test_conjugate_gradients():
    rng = np.random.default_rng(4)
    a = rng.random((40, 40))
    k = a @ a.T + 40 * np.eye(40)
    f = rng.random(40)
    out = run("conjugate_gradients", {"K": k, "f": f}, N=40, ITERATIONS=25)
    np.testing.assert_allclose(out["u"], np.linalg.solve(k, f), rtol=1e-8)
    assert out["residual"] < 1e-8


@pytest.mark.parametrize("passes", [0, 2])
def test_detector_smoothing(passes):
    rng = np.random.default_rng(5)
    image = rng.random((33, 33), dtype=np.float32)
    w = rng.random((7, 7), dtype=np.float32)
    w /= w.sum()
    out = run("detector_smoothing", {"image": image, "W": w}, N=33, P=7, PASSES=passes)
    smooth = image.astype(np.float64)
    for _ in range(passes):
        smooth = conv(smooth, w)
    np.testing.assert_allclose(out["smooth"], smooth, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["signal"], smooth.sum(), rtol=1e-4)
    np.testing.assert_allclose(out["contrast"], np.linalg.norm(smooth - image), rtol=1e-3,
                               atol=1e-5)


def test_gram_matrix():
    x = np.random.default_rng(6).random((12, 50))
    out = run("gram_matrix", {"X": x}, S=12, P=50)
    np.testing.assert_allclose(out["G"], x @ x.T, rtol=1e-12)
    np.testing.assert_allclose(out["energy"], np.sum(x * x), rtol=1e-12)


def test_markov_chain():
    rng = np.random.default_rng(7)
    t = rng.random((25, 25))
    t /= t.sum(axis=1, keepdims=True)
    p0 = np.full(25, 1 / 25)
    out = run("markov_chain", {"T": t, "p0": p0}, M=25, SQUARINGS=6)
    p = t.copy()
    for _ in range(6):
        p = p @ p
        p = p / np.linalg.norm(p)
    np.testing.assert_allclose(out["P"], p, rtol=1e-10)
    np.testing.assert_allclose(out["p"], p.T @ p0, rtol=1e-10)
