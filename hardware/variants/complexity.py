"""Operation counts of the algorithms behind the variants.

These are the features the predictor is augmented with: the textbook count for
the direct algorithms (from `reference.standard_complexity`), `N log N` for
FFT convolution and the exact recursive count for Strassen's matrix product.
"""

from __future__ import annotations

import math

from annc.hardware.variants.registry import Shapes

STRASSEN_LEAF = 128
"""Strassen recurses while every dimension exceeds this; below, one BLAS call."""


def fast_length(n: int) -> int:
    """The smallest 5-smooth integer (2^a 3^b 5^c) not below n: a fast FFT size."""
    candidate = max(n, 1)
    while True:
        rest = candidate
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return candidate
        candidate += 1


def fft_sizes(shapes: Shapes) -> tuple[int, int]:
    """The transform size that holds the full (linear) convolution without wrap-around."""
    (h, w), (p, q) = shapes
    return fast_length(h + p - 1), fast_length(w + q - 1)


def fft_conv2d(shapes: Shapes) -> float:
    """N log2 N for the padded transform size N of an FFT convolution."""
    fh, fw = fft_sizes(shapes)
    n = fh * fw
    return float(n * max(math.log2(n), 1.0))


def fft_conv2d_workspace(shapes: Shapes, itemsize: int) -> int:
    """Two half-spectra (complex) and the full real inverse transform."""
    fh, fw = fft_sizes(shapes)
    spectrum = fh * (fw // 2 + 1) * 2 * itemsize
    return 2 * spectrum + fh * fw * itemsize


def _halves(m: int, k: int, n: int) -> tuple[int, int, int]:
    return (m + 1) // 2, (k + 1) // 2, (n + 1) // 2


def strassen_operations(m: int, k: int, n: int, leaf: int = STRASSEN_LEAF) -> float:
    """Multiply-adds at the BLAS leaves plus the additions of every level."""
    if min(m, k, n) <= leaf:
        return float(m * k * n)
    m2, k2, n2 = _halves(m, k, n)
    additions = 5 * m2 * k2 + 5 * k2 * n2 + 8 * m2 * n2
    return 7 * strassen_operations(m2, k2, n2, leaf) + additions


def strassen_workspace(m: int, k: int, n: int, leaf: int = STRASSEN_LEAF) -> int:
    """Elements alive besides the operands and result: padding copies, then per
    level one sum of A blocks, one of B blocks and one product."""
    if min(m, k, n) <= leaf:
        return 0
    m2, k2, n2 = _halves(m, k, n)
    padding = 0
    if m % 2 or k % 2 or n % 2:
        padding = 4 * (m2 * k2 + k2 * n2 + m2 * n2)
    return padding + m2 * k2 + k2 * n2 + m2 * n2 + strassen_workspace(m2, k2, n2, leaf)


def strassen(shapes: Shapes) -> float:
    (m, k), (_, n) = shapes
    return strassen_operations(m, k, n)
