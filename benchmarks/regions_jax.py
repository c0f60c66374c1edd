"""The `benchmarks/regions.py` workloads as idiomatic whole-program `jax.jit` code.

    .venv/bin/python benchmarks/regions_jax.py WORKLOAD IN.npz OUT.npz NAME=VALUE ...

Each builder takes the example's params and returns one jitted function from the
inputs (a dict of arrays named as in the example) to the outputs (a dict named as
the example's `output` statement); its loop is a `jax.lax.fori_loop` inside the
jitted function. Dtypes are the example's: f64 needs `jax_enable_x64`, set on import.

Run as a script, it is the JAX end-to-end process that `regions.py` times: it imports
JAX and this module only, loads the inputs, runs the workload once (tracing and
compiling it), saves the outputs and prints its own phase times as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

STARTED = time.perf_counter()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402
from jax.scipy.signal import convolve2d  # noqa: E402

jax.config.update("jax_enable_x64", True)

Arrays = dict[str, jax.Array]
LAPLACIAN = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]


def heat(p: dict[str, int]) -> Callable[[Arrays], Arrays]:
    @jax.jit
    def run(x: Arrays) -> Arrays:
        T = x["T"]
        L = jnp.asarray(LAPLACIAN, T.dtype)
        c = 0.2 * x["alpha"]
        T = lax.fori_loop(0, p["STEPS"], lambda _, T: T + c * convolve2d(T, L, mode="same"), T)
        return {"T": T, "E": jnp.sum(T * T)}
    return run


def wave(p: dict[str, int]) -> Callable[[Arrays], Arrays]:
    @jax.jit
    def run(x: Arrays) -> Arrays:
        U, U_prev = x["U"], x["U_prev"]
        L = jnp.asarray(LAPLACIAN, U.dtype)

        def step(_: int, state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
            U, U_prev = state
            return 2 * U - U_prev + 0.25 * convolve2d(U, L, mode="same"), U

        U, _ = lax.fori_loop(0, p["STEPS"], step, (U, U_prev))
        return {"U": U, "energy": jnp.sum(U * U)}
    return run


def conjugate_gradients(p: dict[str, int]) -> Callable[[Arrays], Arrays]:
    @jax.jit
    def run(x: Arrays) -> Arrays:
        K, f = x["K"], x["f"]
        u = jnp.zeros_like(f)
        r = f - K @ u
        rr = r @ r

        def step(_: int, state: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
            u, r, p, rr = state
            Kp = K @ p
            alpha = rr / (p @ Kp)
            u = u + alpha * p
            r = r - alpha * Kp
            rr_next = r @ r
            return u, r, r + (rr_next / rr) * p, rr_next

        u, r, _, rr = lax.fori_loop(0, p["ITERATIONS"], step, (u, r, r, rr))
        return {"u": u, "residual": jnp.sqrt(rr)}
    return run


def power_iteration(p: dict[str, int]) -> Callable[[Arrays], Arrays]:
    @jax.jit
    def run(x: Arrays) -> Arrays:
        H = x["H"]

        def step(_: int, v: jax.Array) -> jax.Array:
            w = H @ v
            return w / jnp.linalg.norm(w)

        v = lax.fori_loop(0, p["ITERATIONS"], step, x["v"])
        return {"v": v, "energy": v @ (H @ v)}
    return run


def detector_smoothing(p: dict[str, int]) -> Callable[[Arrays], Arrays]:
    @jax.jit
    def run(x: Arrays) -> Arrays:
        image, W = x["image"], x["W"]
        smooth = lax.fori_loop(0, p["PASSES"], lambda _, s: convolve2d(s, W, mode="same"),
                               image)
        return {"smooth": smooth, "signal": jnp.sum(smooth),
                "contrast": jnp.linalg.norm(smooth - image)}
    return run


def gram_matrix(p: dict[str, int]) -> Callable[[Arrays], Arrays]:
    @jax.jit
    def run(x: Arrays) -> Arrays:
        X = x["X"]
        return {"G": X @ X.T, "energy": jnp.sum(X * X)}
    return run


BUILDERS: dict[str, Callable[[dict[str, int]], Callable[[Arrays], Arrays]]] = {
    "heat": heat, "wave": wave, "conjugate_gradients": conjugate_gradients,
    "power_iteration": power_iteration, "detector_smoothing": detector_smoothing,
    "gram_matrix": gram_matrix,
}


def on_device(inputs: dict[str, np.ndarray]) -> Arrays:
    return {name: jnp.asarray(value) for name, value in inputs.items()}


def main(argv: list[str]) -> None:
    workload, inputs_path, outputs_path, *defines = argv
    params = {name: int(value) for name, _, value in (d.partition("=") for d in defines)}
    imported = time.perf_counter()
    with np.load(inputs_path) as archive:
        x = on_device({name: archive[name] for name in archive.files})
    run = BUILDERS[workload](params)
    start = time.perf_counter()
    outputs = jax.block_until_ready(run(x))
    ran = time.perf_counter()
    np.savez(outputs_path, **{name: np.asarray(value) for name, value in outputs.items()})
    print(json.dumps({"import_s": imported - STARTED, "first_call_s": ran - start,
                      "total_s": time.perf_counter() - STARTED}))


if __name__ == "__main__":
    main(sys.argv[1:])
