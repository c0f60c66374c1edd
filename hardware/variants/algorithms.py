"""Algorithmic CPU variants in numpy: Strassen's matrix product and three ways
to compute conv2d (FFT, im2col with BLAS, sums of shifted slices).

Each is exact in exact arithmetic; they differ in operation count, memory and
how well they use BLAS, which is what makes the choice between them depend on
the sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from annc.hardware.variants import complexity
from annc.hardware.variants.reference import standard_complexity
from annc.hardware.variants.registry import Kernel, Shapes, Variant


def strassen(a: np.ndarray, b: np.ndarray, leaf: int = complexity.STRASSEN_LEAF) -> np.ndarray:
    """a @ b by Strassen's seven-product recursion, with BLAS below `leaf`.

    Odd dimensions are padded with one zero row or column at that level, so
    any sizes work; a level stops recursing as soon as one dimension is small.
    """
    m, k = a.shape
    n = b.shape[1]
    if min(m, k, n) <= leaf:
        return a @ b
    if m % 2 or k % 2 or n % 2:
        a = np.pad(a, ((0, m % 2), (0, k % 2)))
        b = np.pad(b, ((0, k % 2), (0, n % 2)))
        return strassen(a, b, leaf)[:m, :n]
    m2, k2, n2 = m // 2, k // 2, n // 2
    a11, a12, a21, a22 = a[:m2, :k2], a[:m2, k2:], a[m2:, :k2], a[m2:, k2:]
    b11, b12, b21, b22 = b[:k2, :n2], b[:k2, n2:], b[k2:, :n2], b[k2:, n2:]
    c = np.empty((m, n), dtype=np.result_type(a, b))
    c11, c12, c21, c22 = c[:m2, :n2], c[:m2, n2:], c[m2:, :n2], c[m2:, n2:]
    # Each product is added into the quadrants it belongs to as soon as it is
    # formed, so only one of the seven is alive at a time.
    product = strassen(a11 + a22, b11 + b22, leaf)
    c11[...] = product
    c22[...] = product
    product = strassen(a21 + a22, b11, leaf)
    c21[...] = product
    c22 -= product
    product = strassen(a11, b12 - b22, leaf)
    c12[...] = product
    c22 += product
    product = strassen(a22, b21 - b11, leaf)
    c11 += product
    c21 += product
    product = strassen(a11 + a12, b22, leaf)
    c11 -= product
    c12 += product
    c22 += strassen(a21 - a11, b11 + b12, leaf)
    c11 += strassen(a12 - a22, b21 + b22, leaf)
    return c


def conv2d_fft(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """conv2d as a product of real FFTs, padded so the circular convolution is linear."""
    (h, w), (p, q) = image.shape, weights.shape
    size = complexity.fft_sizes((image.shape, weights.shape))
    spectrum = np.fft.rfft2(image, s=size) * np.fft.rfft2(weights, s=size)
    full = np.fft.irfft2(spectrum, s=size)
    r, s = (p - 1) // 2, (q - 1) // 2
    return np.ascontiguousarray(full[r : r + h, s : s + w], dtype=image.dtype)


def conv2d_im2col(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """conv2d as one BLAS product of the (h·w, p·q) patch matrix with the flipped kernel."""
    (h, w), (p, q) = image.shape, weights.shape
    r, s = (p - 1) // 2, (q - 1) // 2
    padded = np.pad(image, ((r, r), (s, s)))
    patches = sliding_window_view(padded, (p, q)).reshape(h * w, p * q)
    return (patches @ weights[::-1, ::-1].reshape(p * q)).reshape(h, w)


def conv2d_shifted(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """conv2d as the sum of p·q scaled, shifted slices of the zero-padded image."""
    (h, w), (p, q) = image.shape, weights.shape
    r, s = (p - 1) // 2, (q - 1) // 2
    padded = np.pad(image, ((r, r), (s, s)))
    out = np.zeros_like(image)
    term = np.empty_like(image)
    for a in range(p):
        for b in range(q):
            window = padded[2 * r - a : 2 * r - a + h, 2 * s - b : 2 * s - b + w]
            np.multiply(window, weights[a, b], out=term)
            out += term
    return out


def _padded_image(shapes: Shapes) -> int:
    (h, w), (p, q) = shapes
    return (h + p - 1) * (w + q - 1)


def _im2col_workspace(shapes: Shapes, itemsize: int) -> int:
    (h, w), (p, q) = shapes
    return (h * w * p * q + _padded_image(shapes)) * itemsize


def _shifted_workspace(shapes: Shapes, itemsize: int) -> int:
    (h, w), _ = shapes
    return (_padded_image(shapes) + h * w) * itemsize


def _strassen_workspace(shapes: Shapes, itemsize: int) -> int:
    (m, k), (_, n) = shapes
    return complexity.strassen_workspace(m, k, n) * itemsize


def _direct_conv2d(shapes: Shapes) -> float:
    return standard_complexity("conv2d", shapes)


def _fixed(function: Kernel) -> Callable[[Shapes, np.dtype], Kernel]:
    """A build for a variant that needs no compilation: the same function for any shapes."""

    def build(shapes: Shapes, dtype: np.dtype) -> Kernel:
        return function

    return build


def _strassen_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(strassen(a, b))


def variants() -> list[Variant]:
    """Strassen's matrix product and three convolutions, all in numpy."""
    return [
        Variant(kernel="matmul", name="strassen", device="cpu", backend="numpy",
                build=_fixed(_strassen_kernel), complexity=complexity.strassen,
                workspace_bytes=_strassen_workspace),
        Variant(kernel="conv2d", name="fft.numpy", device="cpu", backend="numpy",
                build=_fixed(conv2d_fft), complexity=complexity.fft_conv2d,
                workspace_bytes=complexity.fft_conv2d_workspace),
        Variant(kernel="conv2d", name="im2col", device="cpu", backend="numpy",
                build=_fixed(conv2d_im2col), complexity=_direct_conv2d,
                workspace_bytes=_im2col_workspace),
        Variant(kernel="conv2d", name="shifted", device="cpu", backend="numpy",
                build=_fixed(conv2d_shifted), complexity=_direct_conv2d,
                workspace_bytes=_shifted_workspace),
    ]
