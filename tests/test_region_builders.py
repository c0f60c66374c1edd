"""The region builders against the region oracle (`regions.reference.run_reference`).

Every builder runs small random regions and is compared with the oracle computed in
f64; the tolerance is the variant checks' (`hardware.variants.check`): a few units of
rounding times √(terms summed), here also times the number of ops, normwise against
the largest reference value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from annc.hardware.variants.check import ROUNDING_UNITS
from annc.hardware.variants.regions.reference import numpy_dtype, run_reference
from annc.hardware.variants.regions.spec import RegionOp, RegionSpec

DTYPES = ("f32", "f64")


def operands(spec: RegionSpec, seed: int = 0, divisors: tuple[int, ...] = ()) -> list[np.ndarray]:
    """Uniform in [−1, 1), except divisors (inputs named by number): ±[0.5, 1.5)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for n, shape in enumerate(spec.inputs):
        if n in divisors:
            values = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
        else:
            values = rng.uniform(-1.0, 1.0, shape)
        arrays.append(np.asarray(values, dtype=numpy_dtype(spec)))
    return arrays


def assert_matches(spec: RegionSpec, outputs: list[np.ndarray], inputs: list[np.ndarray],
                   terms: int = 1) -> None:
    """Outputs of the spec's shapes and dtype, within tolerance of the f64 oracle."""
    expected = run_reference(spec, inputs, dtype=np.float64)
    assert len(outputs) == len(expected)
    eps = float(np.finfo(numpy_dtype(spec)).eps)
    tol = ROUNDING_UNITS * eps * math.sqrt(terms) * max(len(spec.ops), 1) * (spec.trips or 1)
    for got, want, shape in zip(outputs, expected, spec.output_shapes(), strict=True):
        assert isinstance(got, np.ndarray)
        assert got.shape == shape
        assert got.dtype == numpy_dtype(spec)
        scale = max(float(np.max(np.abs(want), initial=0.0)), 1.0)
        error = float(np.max(np.abs(got.astype(np.float64) - want), initial=0.0)) / scale
        assert error <= tol, f"error {error:.3g} > tolerance {tol:.3g}"


def elementwise_chain(seed: int, shape: tuple[int, ...], dtype: str) -> RegionSpec:
    """2–6 element-wise ops over A, B (shape), D (divisors, shape) and s (0-d, a divisor),
    some with the scalar broadcast on either side; some values are outputs. A binary op
    never takes the same value twice: such algebra (v − v, v / v) is tested on its own,
    with non-finite values, at the end of this file."""
    rng = np.random.default_rng(seed)
    inputs = (shape, shape, shape, ())
    ops: list[RegionOp] = []
    current = 0
    available = [0, 1, 3]
    for _ in range(int(rng.integers(2, 7))):
        choice = str(rng.choice(["add", "sub", "mul", "div", "neg", "abs", "sqrt", "exp"]))
        if choice == "div":
            ops.append(RegionOp("div", (current, int(rng.choice([2, 3])))))
        elif choice in ("add", "sub", "mul"):
            other = int(rng.choice(available[:-1] if current in available else available))
            pair = (other, current) if rng.random() < 0.5 else (current, other)
            ops.append(RegionOp(choice, pair))
        elif choice == "sqrt":
            ops.append(RegionOp("abs", (current,)))
            ops.append(RegionOp("sqrt", (len(inputs) + len(ops) - 1,)))
        elif choice == "exp":
            ops.append(RegionOp("abs", (current,)))  # exp(−|v|) stays bounded
            ops.append(RegionOp("neg", (len(inputs) + len(ops) - 1,)))
            ops.append(RegionOp("exp", (len(inputs) + len(ops) - 1,)))
        else:
            ops.append(RegionOp(choice, (current,)))
        current = len(inputs) + len(ops) - 1
        available.append(current)
    outputs = (current,) if seed % 2 else (current, available[3])
    return RegionSpec(inputs, dtype, tuple(ops), outputs)


def heat(shape: tuple[int, int], taps: int, dtype: str, trips: int | None = None) -> RegionSpec:
    """u + dt · conv2d(u, K): the heat equation's explicit step (a loop with `trips`)."""
    return RegionSpec(
        inputs=(shape, (taps, taps), ()), dtype=dtype,
        ops=(RegionOp("conv2d", (0, 1)), RegionOp("mul", (3, 2)), RegionOp("add", (0, 4))),
        outputs=(5,), trips=trips, carried=1 if trips is not None else 0)


def matmul_scale(dtype: str) -> RegionSpec:
    return RegionSpec(((9, 13), (13, 11), ()), dtype,
                      (RegionOp("matmul", (0, 1)), RegionOp("mul", (2, 3))), (4,))


def matvec_elementwise(dtype: str) -> RegionSpec:
    """exp(−|A·x − b|)."""
    return RegionSpec(((17, 23), (23,), (17,)), dtype,
                      (RegionOp("matvec", (0, 1)), RegionOp("sub", (3, 2)),
                       RegionOp("abs", (4,)), RegionOp("neg", (5,)), RegionOp("exp", (6,))),
                      (7,))


def dot_div(dtype: str) -> RegionSpec:
    """dot(x, y) / s: a 0-d result divided by a 0-d input."""
    return RegionSpec(((37,), (37,), ()), dtype,
                      (RegionOp("dot", (0, 1)), RegionOp("div", (3, 2))), (4,))


def sum_of_product(dtype: str) -> RegionSpec:
    return RegionSpec(((41,), (41,)), dtype,
                      (RegionOp("mul", (0, 1)), RegionOp("sum", (2,))), (3,))


def norm_of_difference(dtype: str) -> RegionSpec:
    return RegionSpec(((29,), (29,)), dtype,
                      (RegionOp("sub", (0, 1)), RegionOp("norm", (2,))), (3,))


def multiple_outputs(dtype: str) -> RegionSpec:
    """Three outputs, one of them an intermediate and one repeated."""
    return RegionSpec(((6, 10), (6, 10), ()), dtype,
                      (RegionOp("add", (0, 1)), RegionOp("mul", (3, 2)), RegionOp("exp", (1,))),
                      (4, 3, 5, 4))


FIXED = {
    "matmul_scale": (matmul_scale, (), 13),
    "matvec_elementwise": (matvec_elementwise, (), 23),
    "dot_div": (dot_div, (2,), 37),
    "sum_of_product": (sum_of_product, (), 41),
    "norm_of_difference": (norm_of_difference, (), 29),
    "multiple_outputs": (multiple_outputs, (), 1),
}
"""Named regions: (spec for a dtype, divisor inputs, terms per output element)."""

CHAIN_SHAPES = ((), (7,), (5, 9), (2, 3, 4))


# The oracle itself.


def test_reference_runs_ops_in_order() -> None:
    spec = matvec_elementwise("f64")
    a, x, b = operands(spec)
    (out,) = run_reference(spec, [a, x, b])
    np.testing.assert_allclose(out, np.exp(-np.abs(a @ x - b)))


def test_reference_loop_carries_outputs() -> None:
    spec = RegionSpec(((3,), ()), "f64", (RegionOp("mul", (0, 1)),), (2,), trips=4, carried=1)
    (out,) = run_reference(spec, [np.ones(3), np.asarray(2.0)])
    np.testing.assert_array_equal(out, np.full(3, 16.0))


def test_reference_zero_trips_returns_a_copy_of_the_carried_inputs() -> None:
    spec = heat((4, 5), 3, "f32", trips=0)
    inputs = operands(spec)
    (out,) = run_reference(spec, inputs)
    np.testing.assert_array_equal(out, inputs[0])
    assert out is not inputs[0] and out.dtype == np.float32


def test_reference_rejects_wrong_inputs() -> None:
    spec = dot_div("f64")
    with pytest.raises(ValueError, match="inputs"):
        run_reference(spec, [np.zeros(37)])
    with pytest.raises(ValueError, match="shape"):
        run_reference(spec, [np.zeros(37), np.zeros(36), np.zeros(())])


# JAX.


@pytest.fixture(scope="module")
def build_jax():
    from annc.hardware.variants.regions.jax_region import build_jax

    return build_jax


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_jax_elementwise_chain(build_jax, seed: int, dtype: str) -> None:
    spec = elementwise_chain(seed, CHAIN_SHAPES[seed % len(CHAIN_SHAPES)], dtype)
    inputs = operands(spec, seed, divisors=(2, 3))
    assert_matches(spec, build_jax(spec)(*inputs), inputs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("taps", [3, 5, 9])
def test_jax_heat_body(build_jax, taps: int, dtype: str) -> None:
    spec = heat((12, 15), taps, dtype)
    inputs = operands(spec)
    assert_matches(spec, build_jax(spec)(*inputs), inputs, terms=(12 + taps) * (15 + taps))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FIXED)
def test_jax_fixed_regions(build_jax, name: str, dtype: str) -> None:
    make, divisors, terms = FIXED[name]
    spec = make(dtype)
    inputs = operands(spec, divisors=divisors)
    assert_matches(spec, build_jax(spec)(*inputs), inputs, terms)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trips", [0, 1, 5])
def test_jax_heat_loop(build_jax, trips: int, dtype: str) -> None:
    spec = heat((10, 14), 3, dtype, trips=trips)
    inputs = operands(spec)
    inputs[2] = np.asarray(0.1, numpy_dtype(spec))  # a stable time step
    outputs = build_jax(spec)(*inputs)
    assert_matches(spec, outputs, inputs, terms=13 * 17)
    if trips == 0:
        outputs[0][...] = 0  # a copy, not the caller's input
        assert np.any(inputs[0] != 0)


def test_jax_loop_of_two_carried_values(build_jax) -> None:
    """(a, b) -> (b, a + b): carried values swap places, a loop-invariant is unused."""
    spec = RegionSpec(((3,), (3,), (2,)), "f64", (RegionOp("add", (0, 1)),), (1, 3),
                      trips=6, carried=2)
    (a, b) = build_jax(spec)(np.zeros(3), np.ones(3), np.zeros(2))
    np.testing.assert_array_equal(a, np.full(3, 8.0))
    np.testing.assert_array_equal(b, np.full(3, 13.0))


def test_jax_converts_inputs_to_the_region_dtype(build_jax) -> None:
    spec = sum_of_product("f32")
    inputs = operands(spec)
    (out,) = build_jax(spec)(*(a.astype(np.float64) for a in inputs))
    assert out.dtype == np.float32


# Halide.


@pytest.fixture(scope="module")
def halide_region():
    pytest.importorskip("halide")
    from annc.hardware.variants.regions import halide_region

    return halide_region


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_halide_elementwise_chain(halide_region, seed: int, dtype: str) -> None:
    spec = elementwise_chain(seed, CHAIN_SHAPES[seed % len(CHAIN_SHAPES)], dtype)
    inputs = operands(spec, seed, divisors=(2, 3))
    assert halide_region.halide_supports(spec) is None
    assert_matches(spec, halide_region.build_halide(spec)(*inputs), inputs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("taps", [3, 5])
def test_halide_heat_body(halide_region, taps: int, dtype: str) -> None:
    spec = heat((12, 15), taps, dtype)
    inputs = operands(spec)
    outputs = halide_region.build_halide(spec)(*inputs)
    assert_matches(spec, outputs, inputs, terms=(12 + taps) * (15 + taps))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FIXED)
def test_halide_fixed_regions(halide_region, name: str, dtype: str) -> None:
    make, divisors, terms = FIXED[name]
    spec = make(dtype)
    inputs = operands(spec, divisors=divisors)
    assert_matches(spec, halide_region.build_halide(spec)(*inputs), inputs, terms)


@pytest.mark.parametrize("scheduler", ["mullapudi2016", "li2018"])
@pytest.mark.parametrize("name", ["heat", "matmul_scale", "dot_div", "multiple_outputs", "chain"])
def test_halide_auto_scheduled(halide_region, name: str, scheduler: str) -> None:
    if name == "heat":
        spec, divisors, terms = heat((12, 15), 3, "f32"), (), 15 * 18
    elif name == "chain":
        spec, divisors, terms = elementwise_chain(3, (5, 9), "f64"), (2, 3), 1
    else:
        make, divisors, terms = FIXED[name]
        spec = make("f32")
    inputs = operands(spec, divisors=divisors)
    assert_matches(spec, halide_region.build_halide(spec, scheduler)(*inputs), inputs, terms)


def test_halide_larger_shapes_take_the_tiled_and_parallel_paths(halide_region) -> None:
    """Shapes past a vector and past PARALLEL_MIN_WORK: tails, tiles and threads."""
    cases = [
        (heat((67, 131), 5, "f32"), (), 71 * 135),
        (RegionSpec(((70, 45), (45, 53), ()), "f64",
                    (RegionOp("matmul", (0, 1)), RegionOp("mul", (2, 3))), (4,)), (), 45),
        (RegionSpec(((70000,), (70000,)), "f32",
                    (RegionOp("mul", (0, 1)), RegionOp("sum", (2,))), (3,)), (), 70000),
        (elementwise_chain(5, (70001,), "f32"), (2, 3), 1),
        (elementwise_chain(4, (131, 257), "f64"), (2, 3), 1),
    ]
    for spec, divisors, terms in cases:
        inputs = operands(spec, divisors=divisors)
        assert_matches(spec, halide_region.build_halide(spec)(*inputs), inputs, terms)


def test_halide_other_heavy_ops_and_outputs(halide_region) -> None:
    """transpose, a sum over two dimensions, a heavy op feeding two outputs, and an input
    returned as an output (a copy)."""
    specs = [
        RegionSpec(((7, 13), (13, 7)), "f32",
                   (RegionOp("transpose", (0,)), RegionOp("add", (2, 1))), (3, 2)),
        RegionSpec(((6, 11),), "f64", (RegionOp("exp", (0,)), RegionOp("norm", (1,))), (2,)),
        RegionSpec(((8, 8), (8, 8)), "f64",
                   (RegionOp("matmul", (0, 1)), RegionOp("exp", (2,)), RegionOp("neg", (2,))),
                   (3, 4)),
        RegionSpec(((5,), ()), "f64", (RegionOp("mul", (0, 1)),), (0, 2, 1)),
    ]
    for spec in specs:
        inputs = operands(spec)
        outputs = halide_region.build_halide(spec)(*inputs)
        assert_matches(spec, outputs, inputs, terms=66)
    assert not np.shares_memory(outputs[0], inputs[0])


def test_halide_refuses_what_it_does_not_compile(halide_region) -> None:
    loop = heat((4, 4), 3, "f32", trips=2)
    two_heavy = RegionSpec(((4, 4), (4, 4)), "f32",
                           (RegionOp("matmul", (0, 1)), RegionOp("matmul", (2, 1))), (3,))
    for spec, reason in ((loop, "loop"), (two_heavy, "at most one")):
        assert reason in (halide_region.halide_supports(spec) or "")
        with pytest.raises(halide_region.RegionUnsupported, match=reason):
            halide_region.build_halide(spec)
    assert halide_region.halide_supports(heat((4, 4), 3, "f32")) is None
    with pytest.raises(ValueError, match="schedule"):
        halide_region.build_halide(heat((4, 4), 3, "f32"), "fastest")


@pytest.mark.parametrize("dtype", DTYPES)
def test_jax_folds_a_known_stencil_and_gives_what_it_gives_unfolded(build_jax,
                                                                    dtype: str) -> None:
    """A constant 5×5 kernel with zero, ±1 and other taps, folded into the loop's code,
    against the oracle and against the same loop with the kernel as an argument."""
    weights = np.zeros((5, 5))
    weights[2, :] = [0.5, 1.0, -4.0, 1.0, -1.0]
    weights[:, 2] += [0.25, 1.0, 0.0, -1.0, 0.0]
    plain = heat((11, 13), 5, dtype, trips=4)
    folded = RegionSpec(plain.inputs, plain.dtype, plain.ops, plain.outputs, plain.trips,
                        plain.carried, constants=((1, tuple(weights.ravel())),))
    inputs = operands(plain)
    inputs[1] = weights.astype(numpy_dtype(plain))
    inputs[2] = np.asarray(0.05, numpy_dtype(plain))
    outputs = build_jax(folded)(*inputs)
    assert_matches(folded, outputs, inputs, terms=16 * 18)
    unfolded = build_jax(plain)(*inputs)
    np.testing.assert_allclose(outputs[0], unfolded[0], rtol=1e-5 if dtype == "f32" else 1e-12)


# numpy: the ops in one function, transposes as views.


def gram(dtype: str, left: bool) -> RegionSpec:
    """s · X Xᵀ (left) or s · Xᵀ X."""
    product = RegionOp("matmul", (0, 2) if left else (2, 0))
    return RegionSpec(((19, 7), ()), dtype,
                      (RegionOp("transpose", (0,)), product, RegionOp("mul", (1, 3))), (4,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_numpy_elementwise_chain(seed: int, dtype: str) -> None:
    from annc.hardware.variants.regions.numpy_region import build_numpy

    spec = elementwise_chain(seed, CHAIN_SHAPES[seed % len(CHAIN_SHAPES)], dtype)
    inputs = operands(spec, seed, divisors=(2, 3))
    assert_matches(spec, build_numpy(spec)(*inputs), inputs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FIXED)
def test_numpy_fixed_regions(name: str, dtype: str) -> None:
    from annc.hardware.variants.regions.numpy_region import build_numpy

    make, divisors, terms = FIXED[name]
    spec = make(dtype)
    inputs = operands(spec, divisors=divisors)
    outputs = build_numpy(spec)(*inputs)
    assert_matches(spec, outputs, inputs, terms)
    for i, out in enumerate(outputs):  # new arrays, never views of inputs or each other
        assert out.flags.c_contiguous and out.flags.writeable
        assert not any(np.shares_memory(out, a) for a in inputs)
        assert not any(np.shares_memory(out, other) for other in outputs[:i])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("left", [True, False])
def test_numpy_multiplies_by_a_transpose_without_copying_it(left: bool, dtype: str) -> None:
    from annc.hardware.variants.regions.numpy_region import build_numpy

    spec = gram(dtype, left)
    inputs = operands(spec)
    assert_matches(spec, build_numpy(spec)(*inputs), inputs, terms=7 if left else 19)


def test_numpy_refuses_loops_and_convolutions() -> None:
    from annc.hardware.variants.regions.numpy_region import build_numpy, numpy_supports

    assert "loops" in (numpy_supports(heat((8, 8), 3, "f32", trips=2)) or "")
    assert "convolution" in (numpy_supports(heat((8, 8), 3, "f32")) or "")
    with pytest.raises(ValueError, match="convolution"):
        build_numpy(heat((8, 8), 3, "f32"))


def test_halide_reads_read_only_inputs(halide_region) -> None:
    """XLA's results and the plan's constants are read-only arrays; a Halide region reads
    them as it reads any other."""
    spec = heat((9, 11), 3, "f32")
    inputs = operands(spec)
    for array in inputs:
        array.flags.writeable = False
    assert_matches(spec, halide_region.build_halide(spec)(*inputs), inputs, terms=12 * 14)


# Algebra that is exact only for finite values, and non-finite values, in every builder.

DEGENERATE = {
    "v - v": ((RegionOp("sub", (0, 0)),), 2),
    "v / v": ((RegionOp("div", (0, 0)),), 2),
    "-v / v": ((RegionOp("neg", (0,)), RegionOp("div", (2, 0))), 3),
    "v * (w - w)": ((RegionOp("sub", (1, 1)), RegionOp("mul", (0, 2))), 3),
    "v / (w - w)": ((RegionOp("sub", (1, 1)), RegionOp("div", (0, 2))), 3),
    "sum(v*v - v*v)": ((RegionOp("mul", (0, 0)), RegionOp("sub", (2, 2)),
                        RegionOp("sum", (3,))), 4),
}
"""Regions whose algebra a compiler may simplify only by assuming finite values; each
is (ops, output value) over inputs v and w."""


def nonfinite_inputs(shape: tuple[int, ...], dtype: str) -> list[np.ndarray]:
    """v and w holding 0, ±1, ±inf and NaN among ordinary values."""
    rng = np.random.default_rng(5)
    arrays = []
    for _ in range(2):
        values = rng.uniform(-2.0, 2.0, shape)
        flat = values.reshape(-1)
        flat[:6] = [0.0, 1.0, -1.0, np.inf, -np.inf, np.nan]
        arrays.append(np.asarray(values, dtype=np.dtype("float32" if dtype == "f32"
                                                          else "float64")))
    return arrays


def region_builders() -> dict[str, object]:
    from annc.hardware.variants.regions.jax_region import build_jax
    from annc.hardware.variants.regions.numpy_region import build_numpy

    builders: dict[str, object] = {"jax": build_jax, "numpy": build_numpy}
    try:
        from annc.hardware.variants.regions import halide_region
    except ImportError:
        return builders
    builders["halide"] = halide_region.build_halide
    builders["halide.mullapudi2016"] = lambda spec: halide_region.build_halide(
        spec, "mullapudi2016")
    return builders


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", DEGENERATE)
@pytest.mark.parametrize("builder", ["jax", "numpy", "halide", "halide.mullapudi2016"])
def test_every_builder_computes_ieee_results_where_algebra_would_simplify(
        builder: str, name: str, dtype: str) -> None:
    """What numpy computes, NaN and ±inf included, or a refusal (the region then runs its
    ops one by one): never the result of algebra that holds only for finite values.
    Halide leaves a division by a divisor it proves zero undefined and, without
    strict float, simplifies v − v to 0."""
    build = region_builders().get(builder)
    if build is None:
        pytest.skip(f"{builder} is not installed")
    ops, output = DEGENERATE[name]
    shape = (37, 29)
    spec = RegionSpec((shape, shape), dtype, ops, (output,))
    inputs = nonfinite_inputs(shape, dtype)
    try:
        function = build(spec)  # type: ignore[operator]
    except ValueError as refusal:  # RegionUnsupported and the numpy builder's refusals
        assert builder.startswith("halide"), refusal
        assert name == "v / (w - w)", refusal
        return
    with np.errstate(all="ignore"):
        (got,) = function(*inputs)
        (want,) = run_reference(spec, inputs, dtype=numpy_dtype(spec))
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want)), name
    finite = np.isfinite(want)
    assert np.array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-5, atol=1e-6)
