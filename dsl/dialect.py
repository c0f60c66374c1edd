"""The `kernel` dialect: one op per kernel and per element-wise operation.

Every op works on `tensor<...xf32>` / `tensor<...xf64>` values (scalars are
0-d tensors). Where it came from in the source is its MLIR location (a
`FileLineColLoc`, printed with `--print-debuginfo`; `where` reads it). Kernel ops
and regions carry optional attributes, each prefixed with the dialect's name:

- `kernel.pin_device`: the user's device pin (`@cpu` in the source);
- `kernel.pin_variant`: the user's variant pin (set in the IR by hand or by
  `--variant`): selection keeps it, as it keeps a device pin;
- `kernel.variant`, `kernel.device`: the variant and device selection chose;
- `kernel.predicted_s` (seconds per execution) and its 90% interval
  `kernel.predicted_low_s`, `kernel.predicted_high_s`: what selection predicted;
- `kernel.start_variant`: set by selection where the chosen variant needs a build that
  is not kept: what the run starts on while the chosen one builds beside it.

The verifier checks that devices are known device kinds (`dsl.types.DEVICES`); whether
a variant name is one the variant library knows is the `verify-selection` pass's
check (`passes.verify_selection`), since the dialect does not know the library.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    AnyFloat,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    FileLineColLoc,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntAttr,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, Block, Dialect, Operation, Region, SSAValue
from xdsl.irdl import (
    AnyAttr,
    IRDLOperation,
    ParamAttrConstraint,
    VarConstraint,
    attr_def,
    irdl_op_definition,
    operand_def,
    opt_attr_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.pattern_rewriter import RewritePattern
from xdsl.traits import (
    ConstantLike,
    HasCanonicalizationPatternsTrait,
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    Pure,
)
from xdsl.utils.exceptions import VerifyException

from annc.dsl import dtypes, kernels, types

PREFIX = "kernel."
"""The prefix of every attribute the dialect declares on its ops."""


def location(filename: str, line: int, column: int) -> FileLineColLoc:
    """The MLIR location of a place in a source file."""
    return FileLineColLoc(StringAttr(filename), IntAttr(line), IntAttr(column))


def where(op: Operation) -> str:
    """`file:line:column` of the op's location, or "" where it has none (`loc(unknown)`)."""
    loc = op.location
    if isinstance(loc, FileLineColLoc):
        return f"{loc.filename.data}:{loc.line.data}:{loc.column.data}"
    return ""


def _shape(value: SSAValue | Attribute) -> tuple[int, ...]:
    type_ = value.type if isinstance(value, SSAValue) else value
    assert isinstance(type_, TensorType)
    return tuple(type_.get_shape())


def _element_type(value: SSAValue) -> Attribute:
    type_ = value.type
    assert isinstance(type_, TensorType)
    element: Attribute = type_.element_type
    return element


def _show(value: SSAValue | Attribute) -> str:
    type_ = value.type if isinstance(value, SSAValue) else value
    assert isinstance(type_, TensorType)
    return str(types.TensorType(dtypes.of_tensor(type_), _shape(type_)))


class ChosenOp(IRDLOperation):
    """The attributes that selection reads and writes, on kernel ops and regions."""

    pin_device = opt_attr_def(StringAttr, attr_name="kernel.pin_device")
    """The device the user pinned the op to; selection chooses only there."""
    pin_variant = opt_attr_def(StringAttr, attr_name="kernel.pin_variant")
    """The variant the user pinned the op to; selection chooses only it."""
    device = opt_attr_def(StringAttr, attr_name="kernel.device")
    """The device selection chose."""
    variant = opt_attr_def(StringAttr, attr_name="kernel.variant")
    """The variant selection chose."""
    start_variant = opt_attr_def(StringAttr, attr_name="kernel.start_variant")
    """Where `variant` needs a build that is not kept: what runs until it is built
    beside the run (`hardware.execution.tiers`)."""
    predicted_s = opt_attr_def(FloatAttr, attr_name="kernel.predicted_s")
    predicted_low_s = opt_attr_def(FloatAttr, attr_name="kernel.predicted_low_s")
    predicted_high_s = opt_attr_def(FloatAttr, attr_name="kernel.predicted_high_s")

    def verify_devices(self) -> None:
        for attribute in (self.pin_device, self.device):
            if attribute is not None and attribute.data not in types.DEVICES:
                raise VerifyException(
                    f"{self.name}: unknown device {attribute.data!r}; devices are "
                    f"{', '.join(types.DEVICES)}")


class KernelCanonicalization(HasCanonicalizationPatternsTrait):
    """The dialect's canonicalization patterns (`dsl.canonicalization`), which xDSL's
    `canonicalize` pass applies; each pattern matches only the ops it rewrites."""

    @classmethod
    def get_canonicalization_patterns(cls) -> tuple[RewritePattern, ...]:
        from annc.dsl.canonicalization import PATTERNS  # the patterns build ops of this module

        return PATTERNS


class KernelOp(ChosenOp):
    """Base of every kernel op."""

    @classmethod
    def kernel_name(cls) -> str:
        """The kernel's name in the variant library: the op name without `kernel.`."""
        return cls.name.removeprefix("kernel.")

    traits = traits_def(Pure(), KernelCanonicalization())

    def verify_element_types(self) -> None:
        element_types = {_element_type(v) for v in (*self.operands, *self.results)}
        if len(element_types) != 1:
            shown = ", ".join(_show(v) for v in (*self.operands, *self.results))
            raise VerifyException(f"{self.name}: operands and result must share one dtype, "
                                  f"got {shown}")
        if not isinstance(next(iter(element_types)), Float32Type | Float64Type):
            raise VerifyException(f"{self.name}: the dtype must be f32 or f64")

    def verify_(self) -> None:
        self.verify_devices()
        self.verify_element_types()
        try:
            expected = kernels.result_shape(self.kernel_name(),
                                            tuple(_shape(v) for v in self.operands))
        except kernels.ShapeMismatch as mismatch:
            shown = [_show(v) for v in self.operands]
            raise VerifyException(f"{self.name}: {mismatch.describe(shown)}") from None
        if _shape(self.results[0]) != expected:
            raise VerifyException(f"{self.name}: result should be "
                                  f"{list(expected)}, got {_show(self.results[0])}")


class BinaryKernelOp(KernelOp):
    """Two operands; the shapes each kernel takes are its rule in `dsl.kernels`."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)

    assembly_format = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute) -> None:
        super().__init__(operands=[lhs, rhs], result_types=[result_type])


class UnaryKernelOp(KernelOp):
    """One operand."""

    operand = operand_def(TensorType)
    result = result_def(TensorType)

    assembly_format = "$operand attr-dict `:` type($operand) `->` type($result)"

    def __init__(self, operand: SSAValue, result_type: Attribute) -> None:
        super().__init__(operands=[operand], result_types=[result_type])


@irdl_op_definition
class AddOp(BinaryKernelOp):
    """Element-wise sum.

    %c = kernel.add %a, %b : tensor<4x4xf32>, tensor<f32> -> tensor<4x4xf32>
    """

    name = "kernel.add"


@irdl_op_definition
class SubOp(BinaryKernelOp):
    """Element-wise difference.

    %c = kernel.sub %a, %b : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
    """

    name = "kernel.sub"


@irdl_op_definition
class MulOp(BinaryKernelOp):
    """Element-wise product.

    %c = kernel.mul %alpha, %t : tensor<f32>, tensor<8x8xf32> -> tensor<8x8xf32>
    """

    name = "kernel.mul"


@irdl_op_definition
class DivOp(BinaryKernelOp):
    """Element-wise quotient.

    %c = kernel.div %a, %b : tensor<f64>, tensor<f64> -> tensor<f64>
    """

    name = "kernel.div"


@irdl_op_definition
class NegOp(UnaryKernelOp):
    """Element-wise negation.

    %b = kernel.neg %a : tensor<4xf32> -> tensor<4xf32>
    """

    name = "kernel.neg"


@irdl_op_definition
class ExpOp(UnaryKernelOp):
    """Element-wise exponential.

    %b = kernel.exp %a : tensor<4xf32> -> tensor<4xf32>
    """

    name = "kernel.exp"


@irdl_op_definition
class SqrtOp(UnaryKernelOp):
    """Element-wise square root.

    %b = kernel.sqrt %a : tensor<4xf32> -> tensor<4xf32>
    """

    name = "kernel.sqrt"


@irdl_op_definition
class AbsOp(UnaryKernelOp):
    """Element-wise absolute value.

    %b = kernel.abs %a : tensor<4xf32> -> tensor<4xf32>
    """

    name = "kernel.abs"


@irdl_op_definition
class SumOp(UnaryKernelOp):
    """Sum of all elements.

    %s = kernel.sum %a : tensor<8x8xf32> -> tensor<f32>
    """

    name = "kernel.sum"


@irdl_op_definition
class NormOp(UnaryKernelOp):
    """Euclidean (Frobenius) norm of all elements.

    %s = kernel.norm %a : tensor<8xf64> -> tensor<f64>
    """

    name = "kernel.norm"


@irdl_op_definition
class TransposeOp(UnaryKernelOp):
    """Matrix transpose.

    %b = kernel.transpose %a : tensor<3x5xf32> -> tensor<5x3xf32>
    """

    name = "kernel.transpose"



@irdl_op_definition
class MatmulOp(BinaryKernelOp):
    """Matrix product of [m,k] and [k,n].

    %c = kernel.matmul %a, %b : tensor<64x32xf32>, tensor<32x16xf32> -> tensor<64x16xf32>
    """

    name = "kernel.matmul"



@irdl_op_definition
class MatvecOp(BinaryKernelOp):
    """Matrix-vector product of [m,n] and [n].

    %y = kernel.matvec %a, %x : tensor<64x32xf64>, tensor<32xf64> -> tensor<64xf64>
    """

    name = "kernel.matvec"



@irdl_op_definition
class Conv2dOp(BinaryKernelOp):
    """'Same'-size 2-D convolution of an [h,w] image with an odd [p,q] kernel, zero outside.

    %b = kernel.conv2d %t, %l : tensor<64x64xf32>, tensor<3x3xf32> -> tensor<64x64xf32>
    """

    name = "kernel.conv2d"



@irdl_op_definition
class DotOp(BinaryKernelOp):
    """Inner product of two vectors.

    %s = kernel.dot %x, %y : tensor<32xf64>, tensor<32xf64> -> tensor<f64>
    """

    name = "kernel.dot"



@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A constant tensor from a dense attribute.

    %l = kernel.constant dense<[[0.0, 1.0], [1.0, 0.0]]> : tensor<2x2xf32>
    """

    name = "kernel.constant"
    _T: ClassVar = VarConstraint("T", AnyAttr())
    value = attr_def(ParamAttrConstraint(DenseIntOrFPElementsAttr, (_T, AnyAttr())))
    result = result_def(_T)

    traits = traits_def(Pure(), ConstantLike())

    assembly_format = "$value attr-dict"

    def __init__(self, value: DenseIntOrFPElementsAttr[AnyFloat]) -> None:
        super().__init__(result_types=[value.type], attributes={"value": value})

    @classmethod
    def of_array(cls, type_: TensorType[Float32Type | Float64Type], values: np.ndarray
                 ) -> ConstantOp:
        """The constant of a tensor type holding `values` (row-major, any float dtype).
        The attribute is made from the array's bytes: xDSL's `from_list` of the same
        million numbers, a Python float each, took 78 ms and 48 MB against 7 ms and 8 MB
        (2026-12-07, medians of 5 under load)."""
        dtype = dtypes.to_numpy(dtypes.of_tensor(type_)).newbyteorder("<")
        data = np.ascontiguousarray(values, dtype=dtype).tobytes()
        return cls(DenseIntOrFPElementsAttr(type_, BytesAttr(data)))

    def array(self) -> np.ndarray:
        """The values, in the op's shape and dtype: a copy of the attribute's bytes
        (0.3 ms for a million, where a tuple of Python floats from `get_values` took
        99 ms)."""
        dtype = dtypes.to_numpy(dtypes.of_tensor(self.result.type))
        data = np.frombuffer(self.value.data.data, dtype=dtype.newbyteorder("<"))
        return data.astype(dtype).reshape(self.value.get_shape())

    def verify_(self) -> None:
        if not isinstance(self.value.get_element_type(), Float32Type | Float64Type):
            raise VerifyException("kernel.constant: the dtype must be f32 or f64")


@irdl_op_definition
class RegionOp(ChosenOp):
    """Kernel ops that may run as one compiled function: a fused chain, or a whole loop.

    Made by the `fuse-regions` pass; isolated from above, so its body reads only its
    block arguments (the region's inputs) and yields its results. `variant` says how
    it runs (set by `select-variants`): `ops` runs the body op by op, each op with
    its own variant; any other names a compiled version of the whole body.

    %r = kernel.region(%t, %l) {kernel.variant = "jax", kernel.device = "cpu"} : (tensor<8x8xf32>, tensor<3x3xf32>) -> tensor<8x8xf32> {
    ^bb0(%a: tensor<8x8xf32>, %k: tensor<3x3xf32>):
      %c = kernel.conv2d %a, %k : tensor<8x8xf32>, tensor<3x3xf32> -> tensor<8x8xf32>
      %s = kernel.add %a, %c : tensor<8x8xf32>, tensor<8x8xf32> -> tensor<8x8xf32>
      kernel.yield %s : tensor<8x8xf32>
    }
    """  # noqa: E501

    name = "kernel.region"

    inputs = var_operand_def(TensorType)
    outputs = var_result_def(TensorType)
    body = region_def("single_block")

    traits = traits_def(IsolatedFromAbove())

    assembly_format = "`(` $inputs `)` attr-dict `:` functional-type($inputs, $outputs) $body"

    def __init__(self, inputs: list[SSAValue], result_types: list[Attribute],
                 body: Region | None = None) -> None:
        if body is None:
            body = Region(Block(arg_types=[v.type for v in inputs]))
        super().__init__(operands=[inputs], result_types=[result_types], regions=[body])

    @property
    def block(self) -> Block:
        return self.body.block

    def is_loop(self) -> bool:
        """Whether it holds a whole loop (an `scf.for`) rather than a fused chain."""
        return any(op.name == "scf.for" for op in self.block.ops)

    def verify_(self) -> None:
        self.verify_devices()
        input_types = [v.type for v in self.inputs]
        if [a.type for a in self.block.args] != input_types:
            raise VerifyException("kernel.region: its block's arguments must have the "
                                  "types of its inputs")
        last = self.block.last_op
        if not isinstance(last, YieldOp):
            raise VerifyException("kernel.region: its body must end with kernel.yield")
        if [v.type for v in last.values] != [r.type for r in self.outputs]:
            raise VerifyException("kernel.region: kernel.yield must yield values of its "
                                  "result types")


@irdl_op_definition
class YieldOp(IRDLOperation):
    """The values a `kernel.region` returns."""

    name = "kernel.yield"

    values = var_operand_def(TensorType)

    traits = traits_def(IsTerminator(), HasParent(RegionOp))

    assembly_format = "$values attr-dict `:` type($values)"

    def __init__(self, values: list[SSAValue]) -> None:
        super().__init__(operands=[values])


KERNEL_OPS: tuple[type[KernelOp], ...] = (
    MatmulOp, MatvecOp, Conv2dOp, TransposeOp, DotOp, SumOp, NormOp,
    ExpOp, SqrtOp, AbsOp, NegOp, AddOp, SubOp, MulOp, DivOp,
)

OP_FOR_KERNEL: dict[str, type[KernelOp]] = {op.kernel_name(): op for op in KERNEL_OPS}
"""The op of every kernel of `dsl.kernels.KERNELS` (a test walks the table)."""

Kernel = Dialect("kernel", [*KERNEL_OPS, ConstantOp, RegionOp, YieldOp], [])
