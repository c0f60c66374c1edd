"""The kernel table (`dsl.kernels`) is complete: every kernel in it can be written in a
program, checked, lowered to its dialect op, verified, run by its numpy reference and
checked against it, and the stages agree on its result shape."""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import pytest
from xdsl.dialects.builtin import TensorType, f64
from xdsl.ir import Block

from annc.dsl import dialect, kernels
from annc.dsl.checks import BINARY_KERNELS, KERNEL_PARAMETERS, check
from annc.dsl.kernels import KERNELS, KernelSpec
from annc.dsl.lowering import lower
from annc.dsl.parser import parse
from annc.hardware.calibration.sampling import DRAWS, QUICK_SHAPES
from annc.hardware.variants import KERNELS as CATALOGUE_KERNELS
from annc.hardware.variants import get_variant, jax_functions, load_library
from annc.hardware.variants.check import CHECK_SHAPES
from annc.hardware.variants.reference import REFERENCE, REFERENCE_FUNCTIONS
from annc.hardware.variants.regions import catalogue, halide_support, jax_region, numpy_region
from annc.hardware.variants.regions.reference import run_reference
from annc.hardware.variants.regions.spec import (
    ELEMENTWISE_COST,
    HEAVY_ORDER,
    RegionOp,
    RegionSpec,
    region_class,
)
from annc.predictor.features import feature_names, size_names, sizes

load_library()

SPECS = list(KERNELS.values())


def _shapes(spec: KernelSpec) -> kernels.Shapes:
    """The largest check shapes of the kernel without a 0-d operand."""
    candidates = [s for s in CHECK_SHAPES[spec.name] if all(s)]
    return max(candidates, key=lambda s: sum(np.prod(shape) for shape in s))


def _halide_pipeline() -> ModuleType | None:
    """`hardware.variants.halide.pipeline` where Halide is installed (it is optional)."""
    try:
        return importlib.import_module("annc.hardware.variants.halide.pipeline")
    except ImportError:
        return None


def _halide_region() -> ModuleType | None:
    """`hardware.variants.regions.halide_region` where Halide is installed."""
    try:
        return importlib.import_module("annc.hardware.variants.regions.halide_region")
    except ImportError:
        return None


def _program(spec: KernelSpec, shapes: kernels.Shapes) -> str:
    names = ("a", "b")[: spec.arity]
    lines = [f"input {n} : f64[{', '.join(map(str, s))}]" for n, s in zip(names, shapes,
                                                                        strict=True)]
    if spec.called:
        expression = f"{spec.name}({', '.join(names)})"
    elif spec.arity == 1:
        expression = f"{spec.operator}a"
    else:
        expression = f"a {spec.operator} b"
    return "\n".join([*lines, f"y = {expression}", "output y", ""])


def test_the_table_lists_every_kernel_once_in_the_catalogue_order() -> None:
    assert kernels.NAMES == CATALOGUE_KERNELS
    assert len(set(kernels.NAMES)) == len(kernels.NAMES)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_kernel_has_a_dialect_op_with_its_operand_count(spec: KernelSpec) -> None:
    op = dialect.OP_FOR_KERNEL[spec.name]
    assert op.name == f"kernel.{spec.name}"
    assert op in dialect.Kernel.operations
    operands = [TensorType(f64, shape) for shape in _shapes(spec)]
    built = op(*Block(arg_types=operands).args,
               TensorType(f64, spec.result_shape(_shapes(spec))))
    assert len(built.operands) == spec.arity
    built.verify()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_kernel_can_be_written_checked_and_lowered(spec: KernelSpec) -> None:
    if spec.called:
        assert KERNEL_PARAMETERS[spec.name] == spec.parameters
    elif spec.arity == 2:
        assert BINARY_KERNELS[spec.operator] == spec.name
    shapes = _shapes(spec)
    text = _program(spec, shapes)
    typed = check(parse(text, "table.ann"), text)
    module = lower(typed)
    ops = [op for op in module.walk() if isinstance(op, dialect.KernelOp)]
    assert [op.kernel_name() for op in ops] == [spec.name]
    assert tuple(ops[0].results[0].type.get_shape()) == spec.result_shape(shapes)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_kernel_has_a_reference_whose_result_the_table_predicts(spec: KernelSpec) -> None:
    variant = get_variant(spec.name, REFERENCE, "cpu")
    assert spec.name in REFERENCE_FUNCTIONS
    halide_pipeline = _halide_pipeline()
    rng = np.random.default_rng(0)
    for shapes in CHECK_SHAPES[spec.name]:
        operands = [rng.uniform(0.5, 1.5, shape) for shape in shapes]
        result = variant.build(shapes, np.dtype(np.float64))(*operands)
        assert result.shape == spec.result_shape(shapes), shapes
        if halide_pipeline is not None:
            assert halide_pipeline.result_shape(spec.name, shapes) == result.shape
        assert variant.complexity(shapes) == spec.complexity(shapes) > 0


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_kernel_has_features_and_a_sampling_rule(spec: KernelSpec) -> None:
    assert size_names(spec.name) == spec.size_names
    assert feature_names(spec.name, augmented=True)[: len(spec.size_names)] == tuple(
        f"log {name}" for name in spec.size_names)
    assert spec.name in QUICK_SHAPES
    drawn = DRAWS[spec.name](np.random.default_rng(0))
    spec.result_shape(drawn)
    assert len(sizes(spec.name, drawn)) == len(spec.size_names)


def test_a_shape_mismatch_names_the_operands_as_the_caller_shows_them() -> None:
    with pytest.raises(kernels.ShapeMismatch) as raised:
        kernels.result_shape("conv2d", ((8, 8), (2, 3)))
    assert raised.value.describe(["f64[8, 8]", "f64[2, 3]"]) == (
        "kernel sizes must be odd, got f64[2, 3]")


def test_an_unknown_kernel_is_named() -> None:
    with pytest.raises(KeyError, match="unknown kernel 'fft'"):
        kernels.kernel("fft")


def _one_op_region(spec: KernelSpec) -> RegionSpec:
    """A region of the kernel alone, on its largest check shapes, in f64."""
    return RegionSpec(inputs=_shapes(spec), dtype="f64",
                      ops=(RegionOp(spec.name, tuple(range(spec.arity))),),
                      outputs=(spec.arity,))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_kernel_is_taught_to_the_region_back_ends(spec: KernelSpec) -> None:
    """A kernel runs inside fused regions too, through each region builder's own table of
    ops: `numpy_region.FUNCTIONS`, JAX's `jax_functions.FUNCTIONS` (as
    `jax_region.variant_name` picks), Halide's `halide_region._UNARY`/`_BINARY` for an
    element-wise kernel or `halide_support.HEAVY` (and `halide_region._heavy`) for the
    others; and the region specs' cost table: `spec.ELEMENTWISE_COST` weighs an
    element-wise kernel (1 unless named), `spec.HEAVY_ORDER` classes the others."""
    region = _one_op_region(spec)
    assert spec.name in numpy_region.FUNCTIONS
    name = jax_region.variant_name(spec.name, region.operand_shapes(0))
    assert name == "shifted" or (spec.name, name) in jax_functions.FUNCTIONS
    if spec.kind == "elementwise":
        assert region_class(region) == "elementwise"
        assert ELEMENTWISE_COST.get(spec.name, 1) >= 1
    else:
        assert region_class(region) in HEAVY_ORDER, "add the kernel's class to HEAVY_ORDER"
        assert spec.name in halide_support.HEAVY
    halide_region = _halide_region()
    if halide_region is not None and spec.kind == "elementwise":
        assert spec.name in halide_region._UNARY or spec.name in halide_region._BINARY


def test_the_region_cost_table_names_only_element_wise_kernels() -> None:
    assert all(kernels.kernel(name).kind == "elementwise" for name in ELEMENTWISE_COST)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_region_back_end_computes_every_kernel(spec: KernelSpec) -> None:
    """Each region variant that takes the kernel's one-op region matches the reference;
    only numpy may decline, and only a convolution (it has no fast one)."""
    region = _one_op_region(spec)
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0.5, 1.5, shape) for shape in region.inputs]
    expected = run_reference(region, inputs)
    for variant in catalogue.VARIANTS:
        if variant.searches or (variant.backend == "halide" and _halide_region() is None):
            continue  # an auto-scheduler's search is the same algorithm, slower to build
        why_not = variant.why_not(region)
        if why_not is not None:
            assert (variant.name, spec.name) == ("numpy", "conv2d"), why_not
            continue
        outputs = variant.build(region)(*inputs)
        np.testing.assert_allclose(outputs[0], expected[0], rtol=1e-10, atol=1e-12,
                                   err_msg=f"{variant.name} region of {spec.name}")
