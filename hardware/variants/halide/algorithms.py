"""The Halide algorithms of annc's kernels, written once and scheduled elsewhere.

Each function here says *what* a kernel computes, as Halide Funcs over ImageParams,
and returns a `Definition`: the output Func, the inputs in operand order, and the
handles (Vars, the RDom, intermediate Funcs) that a schedule refers to. No function
here schedules anything; `halide_schedules` and `halide_opencl` do.

Coordinates follow Halide's convention: dimension 0 (`x`) is numpy's last axis, so a
numpy array `A[row, col]` is the Halide image `A(x=col, y=row)`. Extents come from the
ImageParams, which `halide_pipeline.bind_shapes` fixes for the shapes being compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import halide as hl

from annc.dsl import kernels

ELEMENTWISE = kernels.of_kind("elementwise")
REDUCTIONS = kernels.of_kind("reduction")

_UNARY: dict[str, Callable[[hl.Expr], hl.Expr]] = {
    "exp": hl.exp,
    "sqrt": hl.sqrt,
    "abs": hl.abs,
    "neg": lambda a: -a,
}
_BINARY: dict[str, Callable[[hl.Expr, hl.Expr], hl.Expr]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@dataclass(frozen=True)
class Definition:
    """A kernel's algorithm: the output Func, its inputs, and the names schedules use."""

    output: hl.Func
    inputs: tuple[hl.ImageParam, ...]
    vars: tuple[hl.Var, ...]
    """The output's pure variables, innermost (numpy's last axis) first."""
    reduction: hl.RDom | None = None
    stages: Mapping[str, hl.Func] = field(default_factory=dict)
    """Intermediate Funcs by role, e.g. "product" (the update a schedule tiles)."""


def _output(kernel: str) -> hl.Func:
    """The output Func. Its name becomes the compiled function's symbol, so it must not
    be a C library function's: a pipeline named `exp` made f64 `exp` calls resolve to
    the pipeline itself."""
    return hl.Func(f"annc_{kernel}")


def _zero(element: hl.Type) -> hl.Expr:
    return hl.cast(element, 0)


def matmul(element: hl.Type) -> Definition:
    """C(x, y) = Σ_k A(k, y) · B(x, k): numpy's C[i, j] = Σ_k A[i, k] B[k, j]."""
    a, b = hl.ImageParam(element, 2, "A"), hl.ImageParam(element, 2, "B")
    x, y = hl.Var("x"), hl.Var("y")
    k = hl.RDom([hl.Range(0, a.dim(0).extent())], "k")
    product = hl.Func("product")
    product[x, y] = _zero(element)
    product[x, y] += a[k.x, y] * b[x, k.x]
    out = _output("matmul")
    out[x, y] = product[x, y]
    return Definition(out, (a, b), (x, y), k, {"product": product})


def matvec(element: hl.Type) -> Definition:
    """y(i) = Σ_k A(k, i) · v(k)."""
    a, v = hl.ImageParam(element, 2, "A"), hl.ImageParam(element, 1, "v")
    x = hl.Var("x")
    k = hl.RDom([hl.Range(0, a.dim(0).extent())], "k")
    product = hl.Func("product")
    product[x] = _zero(element)
    product[x] += a[k.x, x] * v[k.x]
    out = _output("matvec")
    out[x] = product[x]
    return Definition(out, (a, v), (x,), k, {"product": product})


def conv2d(element: hl.Type) -> Definition:
    """out(x, y) = Σ_a Σ_b K(b, a) · A(x + s − b, y + r − a), A zero outside its bounds.

    This is LANGUAGE.md's definition with x the column and y the row; the kernel may be
    larger than the image, since the padded image is defined everywhere.
    """
    image, weights = hl.ImageParam(element, 2, "A"), hl.ImageParam(element, 2, "K")
    x, y = hl.Var("x"), hl.Var("y")
    q, p = weights.dim(0).extent(), weights.dim(1).extent()
    s, r = (q - 1) / 2, (p - 1) / 2
    taps = hl.RDom([hl.Range(0, q), hl.Range(0, p)], "taps")
    padded = hl.BoundaryConditions.constant_exterior(image, _zero(element))
    conv = hl.Func("conv")
    conv[x, y] = _zero(element)
    conv[x, y] += weights[taps.x, taps.y] * padded[x + s - taps.x, y + r - taps.y]
    out = _output("conv2d")
    out[x, y] = conv[x, y]
    return Definition(out, (image, weights), (x, y), taps, {"product": conv, "padded": padded})


def transpose(element: hl.Type) -> Definition:
    """out(x, y) = A(y, x)."""
    a = hl.ImageParam(element, 2, "A")
    x, y = hl.Var("x"), hl.Var("y")
    out = _output("transpose")
    out[x, y] = a[y, x]
    return Definition(out, (a,), (x, y))


def reduction(kernel: str, element: hl.Type) -> Definition:
    """dot, sum or norm of flat (1-D) operands, into a 0-d output.

    The accumulation is the stage "total"; the output applies the final step (the square
    root of a norm), so a schedule can rfactor the accumulation alone.
    """
    if kernel not in REDUCTIONS:
        raise ValueError(f"{kernel!r} is not a reduction")
    a = hl.ImageParam(element, 1, "A")
    inputs: tuple[hl.ImageParam, ...] = (
        (a, hl.ImageParam(element, 1, "B")) if kernel == "dot" else (a,))
    i = hl.RDom([hl.Range(0, a.dim(0).extent())], "i")
    total = hl.Func("total")
    total[()] = _zero(element)
    if kernel == "dot":
        total[()] += a[i.x] * inputs[1][i.x]
    elif kernel == "sum":
        total[()] += a[i.x]
    else:
        total[()] += a[i.x] * a[i.x]
    out = _output(kernel)
    out[()] = hl.sqrt(total[()]) if kernel == "norm" else total[()]
    return Definition(out, inputs, (), i, {"total": total})


def elementwise(kernel: str, ranks: tuple[int, ...], element: hl.Type) -> Definition:
    """An element-wise kernel; a 0-d operand (rank 0) is broadcast over the other."""
    if kernel not in ELEMENTWISE:
        raise ValueError(f"{kernel!r} is not element-wise")
    arity = kernels.kernel(kernel).arity
    if len(ranks) != arity:
        raise ValueError(f"{kernel} takes {arity} operand(s), got {len(ranks)}")
    rank = max(ranks)
    names = ("A", "B")
    inputs = tuple(hl.ImageParam(element, r, names[n]) for n, r in enumerate(ranks))
    coords = tuple(hl.Var(f"d{n}") for n in range(rank))
    loads = [param[coords] if param.dimensions() else param[()] for param in inputs]
    value = _BINARY[kernel](*loads) if arity == 2 else _UNARY[kernel](loads[0])
    out = _output(kernel)
    out[coords if coords else ()] = value
    return Definition(out, inputs, coords)


def define(kernel: str, ranks: tuple[int, ...], element: hl.Type) -> Definition:
    """The algorithm of any kernel, given its operands' ranks (as compiled)."""
    fixed: dict[str, Callable[[hl.Type], Definition]] = {
        "matmul": matmul,
        "matvec": matvec,
        "conv2d": conv2d,
        "transpose": transpose,
    }
    if kernel in fixed:
        return fixed[kernel](element)
    if kernel in REDUCTIONS:
        return reduction(kernel, element)
    return elementwise(kernel, ranks, element)
