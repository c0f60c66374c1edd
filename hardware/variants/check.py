"""Checking a variant against `numpy.reference` on random inputs.

The reference runs in f64 on the same operands the variant sees. Errors are
measured against a *scale* that bounds how large rounding errors can be:

* contractions and reductions (matmul, matvec, conv2d, dot, sum, norm) are
  compared normwise, `max|out − ref| / max(scale)`, where the scale is the
  kernel applied to |operands| (the classical bound for sums of products);
  the tolerance grows with the square root of the number of terms summed
  (for conv2d, of the padded FFT size, which also covers FFT variants);
* element-wise kernels are compared element by element, relative to
  |ref| (|a| + |b| for add and sub), within a few units of rounding;
* transpose, neg and abs must be exact.

These bounds are hundreds of times the errors real implementations make on
the check shapes, yet far below what a wrong result (a transposed product,
an unflipped convolution kernel, a dropped element) produces. Operands are
uniform in [−1, 1) so that signs matter (in [0, 1) for sqrt; divisors in
±[0.5, 1.5)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from annc.dsl import kernels
from annc.hardware.devices.available import get_device
from annc.hardware.variants.compiled import compiled, normalise_shapes
from annc.hardware.variants.reference import REFERENCE_FUNCTIONS
from annc.hardware.variants.registry import Shapes, Variant

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_VECTORS = (((1,),), ((2,),), ((31,),), ((1000,),))
_TENSORS = (((),), ((1,),), ((7,),), ((1, 1),), ((1, 9),), ((13, 17),), ((3, 5, 7),))
_PAIRS = (
    ((), ()), ((1,), (1,)), ((7,), (7,)), ((), (7,)), ((7,), ()),
    ((13, 17), (13, 17)), ((), (13, 17)), ((13, 17), ()), ((3, 5, 7), (3, 5, 7)),
)

CHECK_SHAPES: dict[str, tuple[Shapes, ...]] = {
    "matmul": (
        ((1, 1), (1, 1)), ((1, 7), (7, 1)), ((7, 1), (1, 5)), ((1, 13), (13, 17)),
        ((2, 3), (3, 4)), ((31, 17), (17, 23)), ((64, 64), (64, 64)),
        ((129, 131), (131, 137)),
    ),
    "matvec": (
        ((1, 1), (1,)), ((1, 9), (9,)), ((9, 1), (1,)), ((31, 17), (17,)), ((64, 128), (128,)),
    ),
    "conv2d": (
        ((1, 1), (1, 1)), ((1, 1), (3, 3)), ((1, 9), (1, 3)), ((9, 1), (3, 1)),
        ((7, 11), (1, 1)), ((5, 5), (7, 9)), ((13, 29), (15, 3)), ((17, 23), (3, 5)),
        ((32, 32), (5, 5)),
    ),
    "transpose": (((1, 1),), ((1, 7),), ((7, 1),), ((13, 31),), ((64, 64),)),
    "dot": tuple((shape[0], shape[0]) for shape in _VECTORS),
    "sum": _TENSORS,
    "norm": _TENSORS,
    "exp": _TENSORS,
    "sqrt": _TENSORS,
    "abs": _TENSORS,
    "neg": _TENSORS,
    "add": _PAIRS,
    "sub": _PAIRS,
    "mul": _PAIRS,
    "div": _PAIRS,
}
"""Operand shapes every variant is checked on: odd, prime and degenerate sizes,
a convolution kernel larger than its image, 0-d scalars on either side."""

EXACT = frozenset({"transpose", "neg", "abs"})
ELEMENTWISE = frozenset({"exp", "sqrt", "add", "sub", "mul", "div"}) | EXACT
LINEAR = frozenset({"matmul", "matvec", "conv2d", "dot", "sum", "add", "sub"})
"""Kernels whose error scale is the kernel applied to |operands| (sub: |a| + |b|)."""

ROUNDING_UNITS = 8.0
"""Tolerance in units of the dtype's epsilon (times √terms for sums)."""


@dataclass(frozen=True)
class CheckResult:
    kernel: str
    variant: str
    device: str
    shapes: Shapes
    dtype: str
    passed: bool
    error: float
    """The scaled error measured (0 when the result could not be compared)."""
    tolerance: float
    message: str = ""
    """What is wrong; empty when passed."""
    applicable: bool = True
    """False when the variant does not apply to these shapes (then `passed` is True)."""

    def describe(self) -> str:
        shapes = " x ".join(str(list(shape)) for shape in self.shapes)
        where = f"{self.kernel} {self.variant} on {self.device}, {self.dtype} {shapes}"
        return f"{where}: {self.message}"


def terms(kernel: str, shapes: Shapes) -> int:
    """How many rounded terms each output element accumulates."""
    if kernel in ("matmul", "matvec"):
        return shapes[0][1]
    if kernel == "conv2d":
        (h, w), (p, q) = shapes
        return (h + p - 1) * (w + q - 1)
    if kernels.kernel(kernel).kind == "reduction":
        return math.prod(shapes[0])
    return 1


def tolerance(kernel: str, shapes: Shapes, dtype: np.dtype) -> float:
    """The largest scaled error a correct variant may make."""
    if kernel in EXACT:
        return 0.0
    eps = float(np.finfo(dtype).eps)
    return ROUNDING_UNITS * eps * math.sqrt(terms(kernel, shapes))


def check_operands(kernel: str, shapes: Shapes, dtype: np.dtype, seed: int = 0) -> list[np.ndarray]:
    """Seeded operands that exercise signs, within each kernel's domain."""
    rng = np.random.default_rng(seed)
    operands = [rng.uniform(-1.0, 1.0, shape) for shape in shapes]
    if kernel == "sqrt":
        operands = [np.abs(a) for a in operands]
    if kernel == "div":
        divisor = rng.uniform(0.5, 1.5, shapes[1]) * rng.choice([-1.0, 1.0], shapes[1])
        operands[1] = divisor
    return [np.asarray(a, dtype=dtype) for a in operands]


def _scale(kernel: str, operands: list[np.ndarray], expected: np.ndarray) -> np.ndarray:
    if kernel in LINEAR:
        reference = REFERENCE_FUNCTIONS["add" if kernel == "sub" else kernel]
        return np.abs(np.asarray(reference(*[np.abs(a) for a in operands]), dtype=np.float64))
    return np.abs(expected)


def _scaled_error(
    kernel: str, result: np.ndarray, expected: np.ndarray, scale: np.ndarray
) -> float:
    difference = np.abs(result.astype(np.float64) - expected)
    if kernel in ELEMENTWISE:
        return float(np.max(difference / np.maximum(scale, np.finfo(np.float64).tiny)))
    return float(np.max(difference) / max(float(np.max(scale)), np.finfo(np.float64).tiny))


def check_variant(
    variant: Variant, shapes: Shapes, dtype: np.dtype | type, seed: int = 0
) -> CheckResult:
    """Runs the variant on seeded operands on its device and compares with the reference."""
    shapes = normalise_shapes(shapes)
    dtype = np.dtype(dtype)
    tol = tolerance(variant.kernel, shapes, dtype)

    def result(
        passed: bool, error: float = 0.0, message: str = "", applicable: bool = True
    ) -> CheckResult:
        return CheckResult(variant.kernel, variant.name, variant.device, shapes, dtype.name,
                           passed, error, tol, message, applicable)

    if not variant.applies(shapes, dtype):
        return result(True, message="does not apply", applicable=False)
    operands = check_operands(variant.kernel, shapes, dtype, seed)
    wide = [a.astype(np.float64) for a in operands]
    expected = np.asarray(REFERENCE_FUNCTIONS[variant.kernel](*wide), dtype=np.float64)
    try:
        device = get_device(variant.device)
        kernel = compiled(variant, shapes, dtype).kernel
        output = device.get(kernel(*[device.put(a) for a in operands]))
    except Exception as raised:  # a crashing variant is a failed check, not a crashed checker
        return result(False, message=f"raised {type(raised).__name__}: {raised}")
    if not isinstance(output, np.ndarray):
        return result(False, message=f"returned {type(output).__name__}, not a numpy array")
    if output.shape != expected.shape:
        return result(False, message=f"shape {output.shape}, expected {expected.shape}")
    if output.dtype != dtype:
        return result(False, message=f"dtype {output.dtype}, expected {dtype}")
    if not np.all(np.isfinite(output)):
        return result(False, message="non-finite values")
    error = _scaled_error(variant.kernel, output, expected, _scale(variant.kernel, wide, expected))
    if error > tol:
        return result(False, error, f"error {error:.3g} exceeds tolerance {tol:.3g}")
    return result(True, error)

