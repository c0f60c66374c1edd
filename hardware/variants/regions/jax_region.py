"""A region as one XLA computation: every op of the spec in one `jax.jit` function.

XLA fuses the element-wise ops into their neighbours itself; what this module decides
is only which JAX formulation each kernel gets (`hardware.variants.jax_functions`,
the same ones the single-kernel variants use) and how a loop is written: one
`jax.lax.fori_loop` whose carry is the loop-carried values, with the loop-invariant
inputs passed as arguments of the jitted function (not baked in as constants), so
the whole loop is one compiled call.

Compiled eagerly, like `jax_functions.compile_for`: for the spec's exact shapes and
dtype on one device, with one warm call on zeros.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from hardware.devices import jax_runtime  # turns on f64 in JAX before any array exists
from hardware.variants.jax_functions import FUNCTIONS, JaxFunction
from hardware.variants.regions.reference import check_inputs, numpy_dtype
from hardware.variants.regions.spec import RegionSpec, Shape

LAX_CONV_MAX_TAPS = 49
"""conv2d in a region uses XLA's direct convolution (`jax.lax`) for kernels of up to
this many taps (7×7) and the FFT formulation beyond: a direct convolution costs
h·w·p·q, the FFT about N log N of the padded size, and on the CPU the direct one wins
for the small stencils regions are made of (a heat equation's 3×3 or 5×5) while the
FFT wins once the kernel is large."""

RegionKernel = Callable[..., list[np.ndarray]]


def variant_name(kernel: str, shapes: Sequence[Shape]) -> str:
    """The `jax_functions.FUNCTIONS` formulation a kernel gets inside a region."""
    if kernel != "conv2d":
        return "jax"
    p, q = shapes[1]
    return "jax.lax" if p * q <= LAX_CONV_MAX_TAPS else "fft.jax"


def op_functions(spec: RegionSpec) -> list[JaxFunction]:
    """The jnp function of every op, for its operand shapes."""
    functions = []
    for index, op in enumerate(spec.ops):
        shapes = spec.operand_shapes(index)
        functions.append(FUNCTIONS[(op.kernel, variant_name(op.kernel, shapes))](shapes))
    return functions


def region_function(spec: RegionSpec) -> Callable[..., tuple[Any, ...]]:
    """The region as a (not yet jitted) JAX function of its inputs, returning its outputs."""
    functions = op_functions(spec)

    def once(values: Sequence[Any]) -> tuple[Any, ...]:
        values = list(values)
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
    zeros = [jax.device_put(np.zeros(shape, dtype), device) for shape in spec.inputs]
    jax.block_until_ready(jitted(*zeros))
    copy = _may_alias_inputs(spec)

    def run(*inputs: np.ndarray) -> list[np.ndarray]:
        check_inputs(spec, list(inputs))
        results = jax.block_until_ready(jitted(*(np.asarray(a, dtype) for a in inputs)))
        return [np.array(r) if copy else np.asarray(r) for r in results]

    return run

