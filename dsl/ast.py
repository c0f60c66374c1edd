"""The abstract syntax tree: small frozen dataclasses, each with its source location."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Location:
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


# Expressions ---------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A number literal; `text` is how it was written."""

    text: str
    loc: Location

    @property
    def value(self) -> float:
        return float(self.text)


@dataclass(frozen=True)
class Name:
    id: str
    loc: Location


@dataclass(frozen=True)
class Call:
    """A kernel call such as `matmul(A, B)`."""

    kernel: str
    args: tuple[Expr, ...]
    loc: Location


@dataclass(frozen=True)
class Binary:
    """An element-wise `+ - * /`; `loc` is the operator's location."""

    op: str
    left: Expr
    right: Expr
    loc: Location


@dataclass(frozen=True)
class Negate:
    operand: Expr
    loc: Location


Expr = Number | Name | Call | Binary | Negate


# Declarations ----------------------------------------------------------------


@dataclass(frozen=True)
class Dim:
    """One dimension of a declared shape: an integer literal or a param name."""

    value: str
    loc: Location

    @property
    def is_name(self) -> bool:
        return self.value[0].isalpha() or self.value[0] == "_"


@dataclass(frozen=True)
class TypeSpec:
    """`f32[N, 3]`, or `f64` for a scalar (dims empty)."""

    dtype: str
    dims: tuple[Dim, ...]
    loc: Location


@dataclass(frozen=True)
class ListLiteral:
    items: tuple[Literal, ...]
    loc: Location


@dataclass(frozen=True, eq=False)
class NumberArray:
    """A literal of numbers only, read at once (`dsl.literals`): its numbers as float64
    in its shape, or None where its rows have different lengths."""

    values: np.ndarray | None
    loc: Location


Literal = Number | ListLiteral | NumberArray


@dataclass(frozen=True)
class Device:
    name: str
    loc: Location


# Statements ------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    value: Number
    loc: Location


@dataclass(frozen=True)
class Input:
    name: str
    type: TypeSpec
    loc: Location


@dataclass(frozen=True)
class Const:
    name: str
    type: TypeSpec
    value: Literal
    loc: Location


@dataclass(frozen=True)
class Target:
    devices: tuple[Device, ...]
    loc: Location


@dataclass(frozen=True)
class Assign:
    """`NAME = EXPR [@DEV]`."""

    name: str
    value: Expr
    pin: Device | None
    loc: Location


@dataclass(frozen=True)
class Repeat:
    """`repeat COUNT { BODY }`; `count` is a Number or a param Name."""

    count: Number | Name
    body: tuple[Statement, ...]
    loc: Location


@dataclass(frozen=True)
class Output:
    names: tuple[Name, ...]
    loc: Location


Statement = Param | Input | Const | Target | Assign | Repeat | Output


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
    filename: str
    end: Location
    """Where the file ends: the place to report what is missing."""


def _describe(node: object) -> tuple[str, list[object]]:
    """A node's one-line description and its children, for `format_tree`."""
    match node:
        case Program():
            return f"Program {node.filename}", list(node.statements)
        case Param():
            return f"Param {node.name} = {node.value.text}", []
        case Input():
            return f"Input {node.name} : {_format_type(node.type)}", []
        case Const():
            return f"Const {node.name} : {_format_type(node.type)}", []
        case Target():
            return f"Target {', '.join(d.name for d in node.devices)}", []
        case Assign():
            pin = f" @{node.pin.name}" if node.pin else ""
            return f"Assign {node.name}{pin}", [node.value]
        case Repeat():
            count = node.count.text if isinstance(node.count, Number) else node.count.id
            return f"Repeat {count}", list(node.body)
        case Output():
            return f"Output {', '.join(n.id for n in node.names)}", []
        case Number():
            return f"Number {node.text}", []
        case Name():
            return f"Name {node.id}", []
        case Call():
            return f"Call {node.kernel}", list(node.args)
        case Binary():
            return f"Binary {node.op}", [node.left, node.right]
        case Negate():
            return "Negate", [node.operand]
    raise AssertionError(f"unexpected node {node!r}")


def _format_type(spec: TypeSpec) -> str:
    dims = f"[{', '.join(d.value for d in spec.dims)}]" if spec.dims else ""
    return spec.dtype + dims


def format_tree(node: object, indent: int = 0) -> str:
    """The AST as an indented tree, one node per line with its location."""
    text, children = _describe(node)
    loc = getattr(node, "loc", None)
    line = "  " * indent + text + (f"  <{loc}>" if loc else "")
    return "\n".join([line, *(format_tree(child, indent + 1) for child in children)])
