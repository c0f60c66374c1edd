"""Value types of the language and the typed program that semantic checks produce.

The checker turns the AST into this small typed form, in which every kernel
and element-wise operation carries its result type, literals have taken the
dtype of their context, and each `repeat` knows its loop-carried names.
Lowering to IR reads only this form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annc.dsl.ast import Location
from annc.dsl.dtypes import DTYPES as DTYPES

DEVICES = ("cpu", "gpu", "opencl")


@dataclass(frozen=True)
class TensorType:
    """A dtype and a shape; the empty shape is a scalar."""

    dtype: str
    shape: tuple[int, ...]

    def __str__(self) -> str:
        if not self.shape:
            return self.dtype
        return f"{self.dtype}[{', '.join(map(str, self.shape))}]"

    @property
    def is_scalar(self) -> bool:
        return not self.shape


# Typed expressions -------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """A read of a bound name."""

    name: str
    type: TensorType


@dataclass(frozen=True)
class Constant:
    """A number that has taken a dtype: a 0-d constant tensor."""

    value: float
    type: TensorType
    loc: Location


@dataclass(frozen=True)
class Operation:
    """One kernel or element-wise operation: an op of the IR.

    `kernel` is the op's name in the `kernel` dialect (`matmul`, `add`, `neg`, ...).
    """

    kernel: str
    operands: tuple[TypedExpr, ...]
    type: TensorType
    loc: Location
    device: str | None


TypedExpr = Value | Constant | Operation


# Typed statements --------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ConstDecl:
    name: str
    type: TensorType
    values: np.ndarray
    """The elements in row-major order, in the dtype of `type`."""
    loc: Location


@dataclass(frozen=True)
class Bind:
    """`name = value`."""

    name: str
    value: TypedExpr


@dataclass(frozen=True)
class Loop:
    """`repeat count { body }`; `carried` are the loop-carried names, in order."""

    count: int
    carried: tuple[tuple[str, TensorType], ...]
    body: tuple[TypedStatement, ...]
    loc: Location


TypedStatement = ConstDecl | Bind | Loop


@dataclass(frozen=True)
class TypedProgram:
    filename: str
    params: dict[str, int]
    inputs: tuple[tuple[str, TensorType], ...]
    targets: tuple[str, ...] | None
    """The devices the compiler may use; None means every device found."""
    body: tuple[TypedStatement, ...]
    outputs: tuple[tuple[str, TypedExpr], ...]
    output_loc: Location
    """Where the output statement is: the location of `func.return`."""
