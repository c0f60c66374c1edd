"""A region as one XLA computation: every op of the spec in one `jax.jit` function.

XLA fuses the element-wise ops into their neighbours itself; what this module decides
is only which JAX formulation each kernel gets (`hardware.variants.jax_functions`,
the same ones the single-kernel variants use) and how a loop is written: one
`jax.lax.fori_loop` whose carry is the loop-carried values, with the loop-invariant
inputs passed as arguments of the jitted function (not baked in as constants), so
the whole loop is one compiled call, and its trip count an argument of that call.

Compiled eagerly, for the spec's exact shapes and dtype on one device, ahead of time
(`lower(...).compile()`): unlike `jax_functions.compile_for`, no warm call on zeros,
which for a whole loop would run all its trips. XLA keeps the executable in its
persistent cache; annc keeps a marker of the build (`jax_builds`), so that selection
knows a later process loads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from annc.hardware.devices import jax_runtime  # turns on f64 in JAX before any array exists
from annc.hardware.variants import jax_builds
from annc.hardware.variants.jax_functions import FUNCTIONS, JaxFunction
from annc.hardware.variants.regions.jax_keys import region_key
from annc.hardware.variants.regions.reference import check_inputs, numpy_dtype
from annc.hardware.variants.regions.spec import MAX_CALL_TRIPS, RegionSpec, Shape

SHIFTED_CONV_MAX_TAPS = 49
"""conv2d in a region is a sum of shifted slices of the zero-padded image for kernels
of up to this many taps (7×7), and the FFT formulation beyond. The shifted sum is an
element-wise expression, so XLA fuses it with the scaling and adding around it into
one pass over memory, which its convolution op never is; and XLA 0.10.2's CPU
convolution kernel crashes (a segmentation fault in an Eigen worker) inside a
`fori_loop` on fields of about 700² and more, which the shifted sum avoids. The FFT
wins once the kernel is large: p·q work per element against about log N."""

RegionKernel = Callable[..., list[np.ndarray]]


def variant_name(kernel: str, shapes: Sequence[Shape]) -> str:
    """The formulation a kernel gets inside a region: `shifted` (this module's) or a
    name in `jax_functions.FUNCTIONS`."""
    if kernel != "conv2d":
        return "jax"
    p, q = shapes[1]
    return "shifted" if p * q <= SHIFTED_CONV_MAX_TAPS else "fft.jax"


def conv2d_shifted(shapes: Sequence[Shape]) -> JaxFunction:
    """out[i, j] = Σ_a Σ_b K[a, b] · A[i + r − a, j + s − b], zero outside A: the
    numpy reference's sum of shifted slices, one term per tap. Where the kernel is a
    known constant (a numpy array, not a traced value), its zero taps are left out and
    its ±1 taps need no product: a five-point Laplacian is four adds and a multiply."""
    (h, w), (p, q) = shapes
    r, s = (p - 1) // 2, (q - 1) // 2

    def conv(image: jax.Array, weights: jax.Array | np.ndarray) -> jax.Array:
        padded = jnp.pad(image, ((r, r), (s, s)))
        total = jnp.zeros_like(image)
        for a in range(p):
            for b in range(q):
                window = padded[2 * r - a : 2 * r - a + h, 2 * s - b : 2 * s - b + w]
                if not isinstance(weights, np.ndarray):
                    total = total + weights[a, b] * window
                    continue
                tap = float(weights[a, b])
                if tap == 1.0:
                    total = total + window
                elif tap == -1.0:
                    total = total - window
                elif tap != 0.0:
                    total = total + tap * window
        return total

    return conv


def op_functions(spec: RegionSpec) -> list[JaxFunction]:
    """The jnp function of every op, for its operand shapes."""
    functions = []
    for index, op in enumerate(spec.ops):
        shapes = spec.operand_shapes(index)
        name = variant_name(op.kernel, shapes)
        functions.append(conv2d_shifted(shapes) if name == "shifted"
                         else FUNCTIONS[(op.kernel, name)](shapes))
    return functions


TRIPS_DTYPE = np.int32
"""A whole loop's trip count, an argument of its compiled function."""
MAX_TRIPS = MAX_CALL_TRIPS


def body_function(spec: RegionSpec, functions: Sequence[JaxFunction] | None = None
                  ) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """The region's ops once, as a JAX function of the sequence of its input values,
    returning its outputs. Its known constants are numpy arrays inside it, which XLA
    folds (the values passed for them are not read). `functions`: every op's jnp
    function (`op_functions`'s by default; a sharded region swaps some)."""
    functions = op_functions(spec) if functions is None else functions
    dtype = numpy_dtype(spec)
    known = {number: np.array(values, dtype).reshape(spec.inputs[number])
             for number, values in spec.constants}

    def once(values: Sequence[Any]) -> tuple[Any, ...]:
        values = [known.get(number, value) for number, value in enumerate(values)]
        for op, function in zip(spec.ops, functions, strict=True):
            values.append(function(*(values[v] for v in op.operands)))
        return tuple(values[v] for v in spec.outputs)

    return once


def region_function(spec: RegionSpec, functions: Sequence[JaxFunction] | None = None
                    ) -> Callable[..., tuple[Any, ...]]:
    """The region as a (not yet jitted) JAX function of its inputs, returning its outputs.

    A whole loop's function takes its trip count first, then its inputs: traced, the
    count is a value of the compiled function, not part of its code, so one
    compilation runs any number of trips (a plan can run a loop in chunks of trips),
    and loops that differ only in their trips share one build and one entry of XLA's
    cache."""
    once = body_function(spec, functions)
    if not spec.is_loop:
        return lambda *inputs: once(inputs)

    def loop(trips: Any, *inputs: Any) -> tuple[Any, ...]:
        carried, invariant = tuple(inputs[: spec.carried]), tuple(inputs[spec.carried :])
        return jax.lax.fori_loop(0, trips, lambda _, carry: once(carry + invariant), carried)

    return loop


def _compile(spec: RegionSpec, device: jax.Device) -> Any:
    """The region jitted and compiled for its shapes and dtype on `device`, ahead of
    time (a warm-up call of a whole loop would run its trips)."""
    dtype = numpy_dtype(spec)
    sharding = jax.sharding.SingleDeviceSharding(device)
    jitted = jax.jit(region_function(spec), in_shardings=sharding, out_shardings=sharding)
    arguments = [jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
                 for shape in spec.inputs]
    if spec.is_loop:
        arguments.insert(0, jax.ShapeDtypeStruct((), TRIPS_DTYPE, sharding=sharding))
    return jitted.lower(*arguments).compile()


def build_jax(spec: RegionSpec, device: jax.Device | None = None) -> RegionKernel:
    """The region jitted for its exact shapes and dtype on `device` (the CPU by default).

    The compile happens here (a load where XLA's cache holds it), and a marker of the
    build is kept (`hardware.variants.jax_builds`). The returned function takes one
    numpy array per input (converted to the region's dtype) and returns a list of numpy
    arrays, one per output, read-only views of XLA's result buffers (copies where an
    output could be an input's buffer). A whole loop's function also takes
    `trips: int | None = None`, the trips to run this call (None: `spec.trips`).

    A whole loop is called once here, for one trip on zeros: XLA's first call of an
    executable in a process pays for setting it up (about 1.7 ms more than the next
    for heat's loop at 1024², 2026-12-07), which belongs to making the loop ready, not
    to running the program's trips.
    """
    device = device if device is not None else jax_runtime.cpu_device()
    hits = jax_runtime.cache_events["hit"]
    start = time.perf_counter()
    compiled = _compile(spec, device)
    jax_builds.record_build(region_key(spec, jax_builds.annc_device(device.platform)),
                            time.perf_counter() - start, hits)
    if not spec.is_loop:
        return _runner(spec, compiled)
    run = _loop_runner(spec, compiled)
    run(*(np.zeros(shape, numpy_dtype(spec)) for shape in spec.inputs), trips=1)
    return run


def _runner(spec: RegionSpec, compiled: Any) -> RegionKernel:
    dtype = numpy_dtype(spec)
    # JAX forwards an input that a function returns unchanged: such outputs are copied,
    # never handed out as views of the caller's array.
    copy = any(v < len(spec.inputs) for v in spec.outputs)

    def run(*inputs: np.ndarray) -> list[np.ndarray]:
        check_inputs(spec, list(inputs))
        results = jax.block_until_ready(compiled(*(np.asarray(a, dtype) for a in inputs)))
        return [np.array(r) if copy else np.asarray(r) for r in results]

    return run


def _loop_runner(spec: RegionSpec, compiled: Any) -> RegionKernel:
    dtype = numpy_dtype(spec)

    def run(*inputs: np.ndarray, trips: int | None = None) -> list[np.ndarray]:
        check_inputs(spec, list(inputs))
        count = int(spec.trips or 0) if trips is None else int(trips)
        if not 0 <= count <= MAX_TRIPS:
            raise ValueError(f"a loop runs 0 to {MAX_TRIPS} trips, not {count}")
        arrays = [np.asarray(a, dtype) for a in inputs]
        if count == 0:  # its carried inputs, copied
            return [np.array(a) for a in arrays[: spec.carried]]
        results = jax.block_until_ready(compiled(TRIPS_DTYPE(count), *arrays))
        return [np.asarray(r) for r in results]

    return run
