"""Canonicalization patterns of the `kernel` dialect: rewrites that never change a result.

Each is exact under numpy's semantics (IEEE 754 arithmetic), for every value an input
can hold, inf, NaN and -0.0 included, and keeps the result's type (dtype and shape):

- `transpose(transpose(a))` is `a`: the same elements in the same places.
- `x * 1`, `1 * x` and `x / 1` are `x`: multiplying or dividing by one is exact in
  IEEE arithmetic (±0, ±inf and NaN come back as they went in).
- `x - 0` and `x + (-0)` are `x`: `-0 - 0` is `-0` and `+0 - 0` is `+0`. Not `x + 0`:
  `-0 + 0` is `+0`, so `x + 0.0` stays (a test checks it does).
- `-(-x)` is `x`; `abs(abs(x))` and `abs(-x)` are `abs(x)`: sign flips and clears.
- An element-wise op (add, sub, mul, div, neg, abs, sqrt) or a transpose of constants
  of at most `MOST_FOLDED` elements becomes the constant numpy computes, in the op's
  dtype: these operations are correctly rounded in IEEE arithmetic, so every variant
  gives the same bits. A result that is not finite is not folded (the IR's constants
  are finite); `exp`, `sum` and `norm` are not folded, since their variants may round
  differently from numpy.

An identity applies only where the other operand already has the result's type: `x * 1`
with a scalar `x` and a matrix of ones broadcasts, and stays. An op the user pinned to
a variant (`kernel.pin_variant`) is never rewritten. An op a rewrite leaves without
uses is erased with it.

`canonicalize` (the pass `canonicalize-kernel`) applies them; annc's pipeline runs it
after lowering, and `xdsl-opt -p canonicalize` finds them through the ops' trait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.traits import Pure

from annc.dsl import dialect

MOST_FOLDED = 64
"""The most elements a folded constant may have: folding is for small constants (a
coefficient like `0.5 * dt`); a large one would grow the IR and the compile."""

_FOLDED: dict[str, Callable[..., np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "neg": np.negative, "abs": np.abs, "sqrt": np.sqrt, "transpose": np.transpose,
}
"""The kernels folded, with numpy's function for each."""


def _constant(value: SSAValue) -> np.ndarray | None:
    """The value's elements where a `kernel.constant` makes it, else None."""
    owner = value.owner
    return owner.array() if isinstance(owner, dialect.ConstantOp) else None


def _pinned(op: Operation) -> bool:
    return isinstance(op, dialect.ChosenOp) and op.pin_variant is not None


def _replace(rewriter: PatternRewriter, op: Operation, value: SSAValue,
             new_ops: tuple[Operation, ...] = ()) -> None:
    """Replaces the op's result with `value` (made by `new_ops`, if any); the ops that
    fed the op and are left without uses go with it."""
    feeding = [o.owner for o in op.operands if isinstance(o.owner, Operation)]
    rewriter.replace(op, list(new_ops), [value])
    for owner in feeding:
        if owner.parent is not None and owner.has_trait(Pure) and not any(
                r.uses for r in owner.results):
            rewriter.erase(owner)


class TransposeOfTranspose(RewritePattern):
    """`transpose(transpose(a))` -> `a`."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, dialect.TransposeOp) or _pinned(op):
            return
        inner = op.operand.owner
        if isinstance(inner, dialect.TransposeOp) and not _pinned(inner) \
                and inner.operand.type == op.result.type:
            _replace(rewriter, op, inner.operand)


def _all(value: SSAValue, test: Callable[[np.ndarray], np.ndarray]) -> bool:
    array = _constant(value)
    return array is not None and bool(np.all(test(array)))


def _one(array: np.ndarray) -> np.ndarray:
    return np.asarray(array == 1)


def _positive_zero(array: np.ndarray) -> np.ndarray:
    return np.asarray((array == 0) & ~np.signbit(array))


def _negative_zero(array: np.ndarray) -> np.ndarray:
    return np.asarray((array == 0) & np.signbit(array))


_IDENTITIES: dict[type[Operation], tuple[tuple[int, Callable[[np.ndarray], np.ndarray]], ...]] = {
    dialect.MulOp: ((1, _one), (0, _one)),
    dialect.DivOp: ((1, _one),),
    dialect.SubOp: ((1, _positive_zero),),
    dialect.AddOp: ((1, _negative_zero), (0, _negative_zero)),
}
"""For each op, which operand may be which constant for the op to be its other operand."""


class Identity(RewritePattern):
    """`x * 1`, `1 * x`, `x / 1`, `x - 0`, `x + (-0)`, `(-0) + x` -> `x`."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        rules = _IDENTITIES.get(type(op), ())
        if not rules or _pinned(op):
            return
        for index, test in rules:
            other = op.operands[1 - index]
            if other.type == op.results[0].type and _all(op.operands[index], test):
                _replace(rewriter, op, other)
                return


class SignOfSign(RewritePattern):
    """`-(-x)` -> `x`; `abs(abs(x))`, `abs(-x)` -> `abs(x)`."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, dialect.NegOp | dialect.AbsOp) or _pinned(op):
            return
        inner = op.operand.owner
        if not isinstance(inner, dialect.NegOp | dialect.AbsOp) or _pinned(inner):
            return
        if isinstance(op, dialect.NegOp):
            if isinstance(inner, dialect.NegOp):
                _replace(rewriter, op, inner.operand)
        elif isinstance(inner, dialect.AbsOp):
            _replace(rewriter, op, inner.result)
        else:
            replacement = dialect.AbsOp(inner.operand, op.result.type)
            replacement.location = op.location
            _replace(rewriter, op, replacement.result, (replacement,))


class FoldConstants(RewritePattern):
    """An element-wise op or transpose of small constants -> the constant numpy computes."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, dialect.KernelOp) or _pinned(op):
            return
        function = _FOLDED.get(op.kernel_name())
        if function is None:
            return
        result_type = op.results[0].type
        assert isinstance(result_type, TensorType)
        if _size(result_type) > MOST_FOLDED or not all(
                isinstance(v.owner, dialect.ConstantOp) for v in op.operands):
            return  # before reading any constant's values, which copies them
        known = [a for a in map(_constant, op.operands) if a is not None]
        with np.errstate(all="ignore"):
            folded = np.asarray(function(*known))
        if folded.dtype != known[0].dtype or not np.all(np.isfinite(folded)) \
                or folded.shape != tuple(result_type.get_shape()):
            return
        constant = dialect.ConstantOp.of_array(result_type, folded)
        constant.location = op.location
        _replace(rewriter, op, constant.result, (constant,))


def _size(type_: TensorType) -> int:
    return int(np.prod(type_.get_shape(), dtype=np.int64))


PATTERNS: tuple[RewritePattern, ...] = (
    TransposeOfTranspose(), Identity(), SignOfSign(), FoldConstants())
"""Every canonicalization pattern of the dialect."""


_FOR_OP: dict[type[Operation], tuple[RewritePattern, ...]] = {
    op: tuple(p for p in PATTERNS if not isinstance(p, TransposeOfTranspose | SignOfSign)
              or op in (dialect.TransposeOp, dialect.NegOp, dialect.AbsOp))
    for op in dialect.KERNEL_OPS if op.kernel_name() in _FOLDED
}
"""The patterns that may apply to each op (the kernels that fold are the only ones any
pattern rewrites)."""


class _ByOp(RewritePattern):
    """The patterns for the op's type alone: the walk visits every op of the program,
    most of them ops no pattern rewrites."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        for pattern in _FOR_OP.get(type(op), ()):
            pattern.match_and_rewrite(op, rewriter)
            if rewriter.has_done_action:
                return


def canonicalize(module: ModuleOp) -> bool:
    """Applies the dialect's patterns until none applies; whether any did."""
    return PatternRewriteWalker(_ByOp()).rewrite_module(module)


@dataclass(frozen=True)
class CanonicalizeKernel(ModulePass):
    """`canonicalize-kernel`: the `kernel` dialect's patterns alone, which annc's pipeline
    runs after lowering. xDSL's `canonicalize` applies them too, with every other
    dialect's and dead-code elimination (which would drop a value the program computes
    and never outputs: annc leaves that to the user)."""

    name = "canonicalize-kernel"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        canonicalize(op)
