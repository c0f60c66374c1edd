"""The kernel table: the one place a kernel is defined.

Every kernel of the language has one `KernelSpec` here: its name (the `kernel` dialect's
op is `kernel.<name>`), its parameters as the language names them, how a program writes
it (a call, or an operator), its kind, the rule giving its result shape (and saying what
is wrong with operands it does not take), its size parameters (the predictor's
features) and its textbook operation count (the complexity a model is augmented with).
The checker, the dialect's verifiers, lowering, the variant catalogue, the Halide
algorithms, calibration's sampling and the predictor's features all read this table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Shape = tuple[int, ...]
Shapes = tuple[Shape, ...]

Kind = Literal["matrix", "reduction", "elementwise"]
"""`matrix`: fixed operand ranks and an algorithm of its own (matmul, matvec, conv2d,
transpose); `reduction`: a 0-d result from every element (dot, sum, norm);
`elementwise`: one result element per operand element, a 0-d operand broadcast."""


class ShapeMismatch(ValueError):
    """Operand shapes a kernel does not take. `template` names the operands as
    `{shown}` (all of them, "A and B") or `{0}`, `{1}` (one of them)."""

    def __init__(self, template: str) -> None:
        super().__init__(template)
        self.template = template

    def describe(self, shown: Sequence[str]) -> str:
        """The message, with every operand shown as the caller writes types."""
        return self.template.format(*shown, shown=" and ".join(shown))


@dataclass(frozen=True)
class KernelSpec:
    """One kernel: everything every stage needs to know about it."""

    name: str
    parameters: tuple[str, ...]
    """Its operands, as `LANGUAGE.md` names them: `matmul(A, B)`."""
    kind: Kind
    size_names: tuple[str, ...]
    """The names of its size parameters, e.g. (m, k, n) for a matrix product."""
    result_shape: Callable[[Shapes], Shape]
    """The result's shape for these operand shapes; raises `ShapeMismatch`."""
    sizes: Callable[[Shapes], tuple[int, ...]]
    """Its size parameters for these operand shapes (valid shapes only)."""
    operator: str | None = None
    """The operator a program writes it with (`+`, unary `-`), or None for a call."""

    @property
    def arity(self) -> int:
        return len(self.parameters)

    @property
    def any_shape(self) -> bool:
        """Whether its operands may be tensors of any rank: element-wise kernels, and
        the reductions of one operand (sum, norm)."""
        return self.kind == "elementwise" or (self.kind == "reduction" and self.arity == 1)

    @property
    def called(self) -> bool:
        """Whether a program calls it by name, `exp(x)`, rather than with an operator."""
        return self.operator is None

    def complexity(self, shapes: Shapes) -> float:
        """The operation count of its textbook algorithm: the product of its sizes
        (m·k·n for matmul, h·w·p·q for a direct convolution, the element count for the
        rest)."""
        return float(math.prod(self.sizes(shapes)))


def _ranks(shapes: Shapes) -> tuple[int, ...]:
    return tuple(len(shape) for shape in shapes)


def _matmul(shapes: Shapes) -> Shape:
    if _ranks(shapes) != (2, 2):
        raise ShapeMismatch("expects two matrices, got {shown}")
    (m, k), (k2, n) = shapes
    if k != k2:
        raise ShapeMismatch("inner dimensions differ: {shown}")
    return (m, n)


def _matvec(shapes: Shapes) -> Shape:
    if _ranks(shapes) != (2, 1):
        raise ShapeMismatch("expects a matrix and a vector, got {shown}")
    (m, n), (n2,) = shapes
    if n != n2:
        raise ShapeMismatch(f"the matrix has {n} columns but the vector has {n2} "
                            "elements: {shown}")
    return (m,)


def _conv2d(shapes: Shapes) -> Shape:
    if _ranks(shapes) != (2, 2):
        raise ShapeMismatch("expects an image and a kernel, both 2-D, got {shown}")
    p, q = shapes[1]
    if p % 2 == 0 or q % 2 == 0:
        raise ShapeMismatch("kernel sizes must be odd, got {1}")
    return shapes[0]


def _transpose(shapes: Shapes) -> Shape:
    if _ranks(shapes) != (2,):
        raise ShapeMismatch("expects a matrix, got {shown}")
    m, n = shapes[0]
    return (n, m)


def _dot(shapes: Shapes) -> Shape:
    if _ranks(shapes) != (1, 1):
        raise ShapeMismatch("expects two vectors, got {shown}")
    if shapes[0] != shapes[1]:
        raise ShapeMismatch("vector lengths differ: {shown}")
    return ()


def _reduced(shapes: Shapes) -> Shape:
    return ()


def _same(shapes: Shapes) -> Shape:
    return shapes[0]


def _broadcast(shapes: Shapes) -> Shape:
    a, b = shapes
    if a != b and a and b:
        raise ShapeMismatch("shapes differ: {shown}; element-wise operands need equal "
                            "shapes or one scalar")
    return a or b


def _elements(shapes: Shapes) -> tuple[int, ...]:
    return (max(math.prod(shape) for shape in shapes),)


def _matmul_sizes(shapes: Shapes) -> tuple[int, ...]:
    (m, k), (_, n) = shapes
    return (m, k, n)


def _first_shape(shapes: Shapes) -> tuple[int, ...]:
    return tuple(shapes[0])


def _conv2d_sizes(shapes: Shapes) -> tuple[int, ...]:
    (h, w), (p, q) = shapes
    return (h, w, p, q)


def _elementwise(name: str, arity: int, operator: str | None = None) -> KernelSpec:
    return KernelSpec(name, ("A", "B")[:arity], "elementwise", ("elements",),
                      _same if arity == 1 else _broadcast, _elements, operator)


def _reduction(name: str, parameters: tuple[str, ...], rule: Callable[[Shapes], Shape]
               ) -> KernelSpec:
    return KernelSpec(name, parameters, "reduction", ("elements",), rule, _elements)


KERNELS: dict[str, KernelSpec] = {spec.name: spec for spec in (
    KernelSpec("matmul", ("A", "B"), "matrix", ("m", "k", "n"), _matmul, _matmul_sizes),
    KernelSpec("matvec", ("A", "x"), "matrix", ("m", "n"), _matvec, _first_shape),
    KernelSpec("conv2d", ("A", "K"), "matrix", ("h", "w", "p", "q"), _conv2d, _conv2d_sizes),
    KernelSpec("transpose", ("A",), "matrix", ("m", "n"), _transpose, _first_shape),
    _reduction("dot", ("x", "y"), _dot),
    _reduction("sum", ("A",), _reduced),
    _reduction("norm", ("A",), _reduced),
    _elementwise("exp", 1),
    _elementwise("sqrt", 1),
    _elementwise("abs", 1),
    _elementwise("neg", 1, "-"),
    _elementwise("add", 2, "+"),
    _elementwise("sub", 2, "-"),
    _elementwise("mul", 2, "*"),
    _elementwise("div", 2, "/"),
)}
"""Every kernel, in the order tables and listings show them."""

NAMES: tuple[str, ...] = tuple(KERNELS)


def kernel(name: str) -> KernelSpec:
    """The kernel of that name; a KeyError names the known ones."""
    try:
        return KERNELS[name]
    except KeyError:
        raise KeyError(f"unknown kernel {name!r} (kernels: {', '.join(NAMES)})") from None


def of_kind(kind: Kind) -> tuple[str, ...]:
    """The names of the kernels of one kind, in table order."""
    return tuple(name for name, spec in KERNELS.items() if spec.kind == kind)


def result_shape(name: str, shapes: Shapes) -> Shape:
    """The result shape of kernel `name` on these operand shapes (`ShapeMismatch` if
    it does not take them)."""
    return kernel(name).result_shape(shapes)
