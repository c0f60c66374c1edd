"""The JAX formulation of every kernel, for `hardware.variants.jax_xla`, and the one way
annc compiles a JAX function (`compile_for`).

Kept apart from the registrations so that listing and selecting variants does not
import JAX (about a third of a second): this module is imported only when a JAX
variant is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from annc.hardware.devices import jax_runtime  # noqa: F401  (annc's JAX settings, before any compile)
from annc.hardware.variants import complexity
from annc.hardware.variants.registry import Kernel, Shapes

HIGHEST = jax.lax.Precision.HIGHEST

JaxFunction = Callable[..., Any]


def _matmul(shapes: Shapes) -> JaxFunction:
    return lambda a, b: jnp.matmul(a, b, precision=HIGHEST)


def _dot(shapes: Shapes) -> JaxFunction:
    return lambda x, y: jnp.dot(x, y, precision=HIGHEST)


def _conv2d_fft(shapes: Shapes) -> JaxFunction:
    (h, w), (p, q) = shapes
    size = complexity.fft_sizes(shapes)
    r, s = (p - 1) // 2, (q - 1) // 2

    def conv(image: jax.Array, weights: jax.Array) -> jax.Array:
        spectrum = jnp.fft.rfft2(image, s=size) * jnp.fft.rfft2(weights, s=size)
        full = jnp.fft.irfft2(spectrum, s=size)
        return full[r : r + h, s : s + w].astype(image.dtype)

    return conv


def _conv2d_lax(shapes: Shapes) -> JaxFunction:
    _, (p, q) = shapes
    r, s = (p - 1) // 2, (q - 1) // 2

    def conv(image: jax.Array, weights: jax.Array) -> jax.Array:
        # XLA convolves by correlation; the language's conv2d flips the kernel.
        flipped = weights[::-1, ::-1]
        out = jax.lax.conv_general_dilated(
            image[None, None], flipped[None, None], window_strides=(1, 1),
            padding=((r, r), (s, s)), precision=HIGHEST,
        )
        return out[0, 0]

    return conv


def _same_for_all_shapes(function: JaxFunction) -> Callable[[Shapes], JaxFunction]:
    return lambda shapes: function


FUNCTIONS: dict[tuple[str, str], Callable[[Shapes], JaxFunction]] = {
    ("matmul", "jax"): _matmul,
    ("matvec", "jax"): _matmul,
    ("conv2d", "fft.jax"): _conv2d_fft,
    ("conv2d", "jax.lax"): _conv2d_lax,
    ("transpose", "jax"): _same_for_all_shapes(jnp.transpose),
    ("dot", "jax"): _dot,
    ("sum", "jax"): _same_for_all_shapes(jnp.sum),
    ("norm", "jax"): _same_for_all_shapes(lambda a: jnp.sqrt(jnp.sum(a * a))),
    ("exp", "jax"): _same_for_all_shapes(jnp.exp),
    ("sqrt", "jax"): _same_for_all_shapes(jnp.sqrt),
    ("abs", "jax"): _same_for_all_shapes(jnp.abs),
    ("neg", "jax"): _same_for_all_shapes(jnp.negative),
    ("add", "jax"): _same_for_all_shapes(jnp.add),
    ("sub", "jax"): _same_for_all_shapes(jnp.subtract),
    ("mul", "jax"): _same_for_all_shapes(jnp.multiply),
    ("div", "jax"): _same_for_all_shapes(jnp.divide),
}
"""For each (kernel, variant name): the jnp function, given the operand shapes."""


def compile_for(
    function: Callable[..., Any],
    shapes: Shapes,
    dtype: np.dtype,
    device: jax.Device,
    *,
    to_host: bool,
) -> Kernel:
    """Jits `function` for exactly these operand shapes and dtype on `device`.

    The compile happens here (one call on zeros), not at the first real call.
    The returned kernel waits for its result; with `to_host` it returns a numpy
    array (a zero-copy, read-only view on the CPU), else the device-resident
    JAX array.
    """
    sharding = jax.sharding.SingleDeviceSharding(device)
    jitted = jax.jit(function, in_shardings=sharding, out_shardings=sharding)
    zeros = [jax.device_put(np.zeros(shape, dtype), device) for shape in shapes]
    jax.block_until_ready(jitted(*zeros))

    def run(*operands: Any) -> Any:
        result = jitted(*operands).block_until_ready()
        return np.asarray(result) if to_host else result

    return run
