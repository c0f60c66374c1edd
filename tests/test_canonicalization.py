"""The `kernel` dialect's canonicalization: each rewrite applies, and is exact against
numpy for inf, NaN and -0.0; a look-alike that is not exact is left alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_ir import xdsl_opt
from xdsl.dialects.builtin import ModuleOp, StringAttr

import annc
from annc.compiler import compile_program
from annc.dsl import dialect
from annc.dsl.canonicalization import MOST_FOLDED, canonicalize

SPECIAL = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 1.5, -2.25, 3e38], dtype=np.float32)
"""Every kind of value an input can hold, as f32 (3e38 overflows f32 if doubled)."""


def lowered(text: str) -> ModuleOp:
    return compile_program(text, "p.ann", emit="ir").ir


def kernel_ops(module: ModuleOp) -> list[str]:
    return [op.name for op in module.walk() if isinstance(op, dialect.KernelOp)]


def run(text: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
    return annc.run_source(text, "p.ann", inputs=inputs, measure="never",
                           record=False).outputs


def same_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Equal as IEEE values: NaN where NaN, and the sign of every zero."""
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(want[~np.isnan(want)]))
    assert np.array_equal(got[~np.isnan(got)], want[~np.isnan(want)])


IDENTITIES = {
    "x * 1.0": lambda x: x * np.float32(1.0),
    "1.0 * x": lambda x: np.float32(1.0) * x,
    "x / 1.0": lambda x: x / np.float32(1.0),
    "x - 0.0": lambda x: x - np.float32(0.0),
    "x + -0.0": lambda x: x + np.float32(-0.0),
    "-(-x)": lambda x: np.negative(np.negative(x)),
    "abs(abs(x))": lambda x: np.abs(np.abs(x)),
    "abs(-x)": lambda x: np.abs(-x),
}


@pytest.mark.parametrize("expression", IDENTITIES)
def test_an_identity_is_rewritten_and_exact_for_inf_nan_and_negative_zero(
        expression: str) -> None:
    text = f"input x : f32[8]\ny = {expression}\noutput y\n"
    module = lowered(text)
    canonicalize(module)
    module.verify()
    assert kernel_ops(module) in ([], ["kernel.abs"])
    want = IDENTITIES[expression](SPECIAL)
    same_bits(run(text, x=SPECIAL)["y"], want)


def test_the_rewrites_are_exact_in_f64_with_a_vector_of_ones() -> None:
    text = ("input x : f64[8]\nconst one : f64[8] = [1, 1, 1, 1, 1, 1, 1, 1]\n"
            "y = one * x\noutput y\n")
    module = lowered(text)
    canonicalize(module)
    assert kernel_ops(module) == []
    assert not any(isinstance(op, dialect.ConstantOp) for op in module.walk())
    x = SPECIAL.astype(np.float64)
    same_bits(run(text, x=x)["y"], np.ones(8) * x)


def test_transpose_of_transpose_is_the_matrix() -> None:
    text = "input A : f32[2, 4]\nB = transpose(transpose(A))\noutput B\n"
    module = lowered(text)
    canonicalize(module)
    assert kernel_ops(module) == []
    a = SPECIAL.reshape(2, 4)
    same_bits(run(text, A=a)["B"], a.T.T)


def test_adding_positive_zero_is_not_rewritten_since_it_turns_minus_zero_into_zero() -> None:
    text = "input x : f32[8]\ny = x + 0.0\nz = 0.0 - x\noutput y, z\n"
    module = lowered(text)
    canonicalize(module)
    assert kernel_ops(module) == ["kernel.add", "kernel.sub"]
    outputs = run(text, x=SPECIAL)
    same_bits(outputs["y"], SPECIAL + np.float32(0.0))
    assert not np.signbit(outputs["y"][3])  # -0.0 + 0.0 is +0.0: x + 0.0 is not x


def test_a_product_that_broadcasts_is_not_rewritten() -> None:
    """`s * ones` with a scalar `s` is a vector: replacing it by `s` would change the type."""
    text = "input s : f32\nconst one : f32[3] = [1, 1, 1]\ny = s * one\noutput y\n"
    module = lowered(text)
    canonicalize(module)
    assert kernel_ops(module) == ["kernel.mul"]
    np.testing.assert_array_equal(run(text, s=np.float32(2.5))["y"], np.full(3, 2.5, np.float32))


def test_a_product_by_a_near_one_is_not_rewritten() -> None:
    text = "input x : f64[2]\nconst c : f64[2] = [1, 1.0000000000000002]\ny = x * c\noutput y\n"
    module = lowered(text)
    canonicalize(module)
    assert kernel_ops(module) == ["kernel.mul"]


def test_small_constants_fold_to_what_numpy_computes_in_their_dtype() -> None:
    text = ("const a : f32[2] = [0.1, 3]\nconst b : f32[2] = [0.2, 7]\n"
            "input x : f32[2]\ny = x + sqrt(a * b) / (a - b)\noutput y\n")
    module = lowered(text)
    canonicalize(module)
    assert kernel_ops(module) == ["kernel.add"]
    folded = next(op for op in module.walk() if isinstance(op, dialect.ConstantOp))
    a, b = np.array([0.1, 3], np.float32), np.array([0.2, 7], np.float32)
    want = np.sqrt(a * b) / (a - b)
    assert folded.array().dtype == np.float32
    np.testing.assert_array_equal(folded.array(), want)
    x = np.array([1.0, -0.0], np.float32)
    np.testing.assert_array_equal(run(text, x=x)["y"], x + want)


def test_a_constant_that_would_overflow_or_is_large_is_not_folded() -> None:
    text = "const a : f32 = 3e38\ny = a * a\noutput y\n"
    module = lowered(text)
    canonicalize(module)
    assert kernel_ops(module) == ["kernel.mul"]  # inf is no constant of the IR
    n = MOST_FOLDED + 1
    large = f"const a : f64[{n}] = [{', '.join(['2'] * n)}]\ny = a * a\noutput y\n"
    module = lowered(large)
    canonicalize(module)
    assert kernel_ops(module) == ["kernel.mul"]


def test_exp_and_sum_of_constants_are_not_folded() -> None:
    text = "const a : f64[2] = [1, 2]\ny = exp(a)\ns = sum(a)\noutput y, s\n"
    module = lowered(text)
    canonicalize(module)
    assert kernel_ops(module) == ["kernel.exp", "kernel.sum"]


def test_an_op_pinned_to_a_variant_is_not_rewritten() -> None:
    module = lowered("input x : f32[4]\ny = x * 1.0\noutput y\n")
    mul = next(op for op in module.walk() if isinstance(op, dialect.MulOp))
    mul.pin_variant = StringAttr("numpy")
    canonicalize(module)
    assert kernel_ops(module) == ["kernel.mul"]


def test_annc_canonicalizes_before_fusing() -> None:
    compiled = compile_program("input A : f32[4, 4]\nB = transpose(transpose(A)) * 1.0\n"
                               "C = B + A\noutput C\n", "p.ann", emit="fused")
    assert kernel_ops(compiled.ir) == ["kernel.add"]


def test_xdsl_opt_canonicalize_applies_the_patterns(tmp_path: Path) -> None:
    path = tmp_path / "t.mlir"
    path.write_text(str(lowered("input A : f32[3, 2]\nB = transpose(transpose(A))\n"
                                "output B\n")))
    done = subprocess.run([xdsl_opt(), str(path), "-p", "canonicalize"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "kernel.transpose" not in done.stdout
    assert "func.return %A" in done.stdout


def test_constants_are_constant_like() -> None:
    from xdsl.traits import ConstantLike

    assert dialect.ConstantOp.has_trait(ConstantLike)
