"""A region as one XLA computation: every op of the spec in one `jax.jit` function.

XLA fuses the element-wise ops into their neighbours itself; what this module decides
is only which JAX formulation each kernel gets (`hardware.variants.jax_functions`,
the same ones the single-kernel variants use) and how a loop is written: one
`jax.lax.fori_loop` whose carry is the loop-carried values, with the loop-invariant
inputs passed as arguments of the jitted function (not baked in as constants), so
the whole loop is one compiled call.

Compiled eagerly, for the spec's exact shapes and dtype on one device, ahead of time
(`lower(...).compile()`): unlike `jax_functions.compile_for`, no warm call on zeros,
which for a whole loop would run all its trips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hardware.devices import jax_runtime  # turns on f64 in JAX before any array exists
from hardware.variants.jax_functions import FUNCTIONS, JaxFunction
from hardware.variants.regions.reference import check_inputs, numpy_dtype
from hardware.variants.regions.spec import RegionSpec, Shape

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


def region_function(spec: RegionSpec) -> Callable[..., tuple[Any, ...]]:
    """The region as a (not yet jitted) JAX function of its inputs, returning its outputs.
    Its known constants are numpy arrays inside it, which XLA folds (the arguments
    passed for them are not read)."""
    functions = op_functions(spec)
    dtype = numpy_dtype(spec)
    known = {number: np.array(values, dtype).reshape(spec.inputs[number])
             for number, values in spec.constants}

    def once(values: Sequence[Any]) -> tuple[Any, ...]:
        values = [known.get(number, value) for number, value in enumerate(values)]
        for op, function in zip(spec.ops, functions, strict=True):
            values.append(function(*(values[v] for v in op.operands)))
        return tuple(values[v] for v in spec.outputs)

    if not spec.is_loop:
        return lambda *inputs: once(inputs)

    def loop(*inputs: Any) -> tuple[Any, ...]:
        carried, invariant = tuple(inputs[: spec.carried]), tuple(inputs[spec.carried :])
        return jax.lax.fori_loop(0, spec.trips or 0,
                                 lambda _, carry: once(carry + invariant), carried)

    return loop


def _may_alias_inputs(spec: RegionSpec) -> bool:
    """Whether an output can be an input's own buffer (JAX forwards an input that a
    function returns unchanged): such outputs are copied, never handed out as views."""
    if spec.is_loop:
        return spec.trips == 0
    return any(v < len(spec.inputs) for v in spec.outputs)


def build_jax(spec: RegionSpec, device: jax.Device | None = None) -> RegionKernel:
    """The region jitted for its exact shapes and dtype on `device` (the CPU by default).

    The compile happens here. The returned function takes one numpy array per input
    (converted to the region's dtype) and returns a list of numpy arrays, one per
    output, read-only views of XLA's result buffers (copies where an output could be
    an input's buffer).
    """
    device = device if device is not None else jax_runtime.cpu_device()
    dtype = numpy_dtype(spec)
    sharding = jax.sharding.SingleDeviceSharding(device)
    jitted = jax.jit(region_function(spec), in_shardings=sharding, out_shardings=sharding)
    # Compiled ahead of time, not by a call on zeros: a warm-up call of a whole loop
    # would run all its trips.
    arguments = [jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
                 for shape in spec.inputs]
    compiled = jitted.lower(*arguments).compile()
    copy = _may_alias_inputs(spec)

    def run(*inputs: np.ndarray) -> list[np.ndarray]:
        check_inputs(spec, list(inputs))
        results = jax.block_until_ready(compiled(*(np.asarray(a, dtype) for a in inputs)))
        return [np.array(r) if copy else np.asarray(r) for r in results]

    return run

