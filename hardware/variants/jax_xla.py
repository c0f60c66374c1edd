"""JAX/XLA variants: every kernel jitted by XLA, on the CPU and on each CUDA GPU.

`jax` is the natural jnp formulation of each kernel; conv2d has two, `fft.jax`
(real FFTs) and `jax.lax` (XLA's direct convolution). Products ask for
`Precision.HIGHEST` so that a GPU does not quietly use TF32 for f32.

On the CPU a kernel takes and returns numpy arrays (results are read-only
views of XLA's buffers); on a GPU it takes and returns device-resident JAX
arrays, so a timing excludes the copies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hardware import jax_runtime
from hardware.variants import complexity
from hardware.variants.reference import standard_complexity_of
from hardware.variants.registry import Kernel, Shapes, Variant, register

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


def _complexity(kernel: str, name: str) -> Callable[[Shapes], float]:
    if name == "fft.jax":
        return complexity.fft_conv2d
    return standard_complexity_of(kernel)


def _workspace(name: str) -> Callable[[Shapes, int], int]:
    if name == "fft.jax":
        return complexity.fft_conv2d_workspace
    if name == "jax.lax":
        return _padded_image_bytes
    return lambda shapes, itemsize: 0


def _padded_image_bytes(shapes: Shapes, itemsize: int) -> int:
    (h, w), (p, q) = shapes
    return (h + p - 1) * (w + q - 1) * itemsize


def _build(
    factory: Callable[[Shapes], JaxFunction], device: jax.Device, to_host: bool
) -> Callable[[Shapes, np.dtype], Kernel]:
    def build(shapes: Shapes, dtype: np.dtype) -> Kernel:
        return jax_runtime.compile_for(factory(shapes), shapes, dtype, device, to_host=to_host)

    return build


def _register_on(device_name: str, device: jax.Device, to_host: bool) -> None:
    for (kernel, name), factory in FUNCTIONS.items():
        register(Variant(
            kernel=kernel, name=name, device=device_name, backend="jax",
            build=_build(factory, device, to_host),
            complexity=_complexity(kernel, name),
            workspace_bytes=_workspace(name),
        ))


_register_on("cpu", jax_runtime.cpu_device(), to_host=True)
_gpus = jax_runtime.gpu_devices()
if _gpus:
    _register_on("gpu", _gpus[0], to_host=False)
