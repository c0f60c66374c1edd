"""The IR: it verifies, prints and parses back unchanged, also through `xdsl-opt`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from xdsl.dialects.builtin import (
    ArrayAttr,
    FileLineColLoc,
    ModuleOp,
    StringAttr,
    TensorType,
    f32,
    f64,
)
from xdsl.ir import Block
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

import annc
from annc.dsl import dialect
from annc.dsl.context import annc_context

PROGRAMS = {
    "heat": """
param N = 8
input T : f32[N, N]
input alpha : f32
const L : f32[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
target cpu, opencl
repeat 5 {
  T = T + alpha * conv2d(T, L)
}
E = sum(T * T) @cpu
output T, E
""",
    "cg": """
param N = 6
input A : f64[N, N]
input b : f64[N]
x = b * 0
r = b
p = r
rr = dot(r, r)
repeat 4 {
  Ap = matvec(A, p)
  a = rr / dot(p, Ap)
  x = x + a * p
  r = r - a * Ap
  rr_new = dot(r, r)
  p = r + (rr_new / rr) * p
  rr = rr_new
}
output x
""",
    "every kernel": """
input A : f64[4, 3]
input v : f64[3]
input K : f64[3, 5]
G = matmul(transpose(A), A)
y = matvec(A, v)
C = conv2d(A, K)
s = dot(v, v) + sum(A) + norm(y)
E = -exp(A) - sqrt(abs(A)) / 2
output G, y, C, s, E
""",
    "nested": """
input x : f32[2]
repeat 2 {
  repeat 3 {
    x = x * 2 @gpu
  }
  repeat 0 { x = x - 1 }
}
output x
""",
}


def compile_ir(text: str) -> ModuleOp:
    module = annc.compile_source(text, filename="p.ann", emit="ir")
    assert isinstance(module, ModuleOp)
    return module


def parse(text: str) -> ModuleOp:
    return Parser(annc_context(), text).parse_module()


@pytest.mark.parametrize("text", PROGRAMS.values(), ids=PROGRAMS.keys())
def test_print_parse_print_is_identical(text: str) -> None:
    module = compile_ir(text)
    module.verify()
    printed = str(module)
    reparsed = parse(printed)
    reparsed.verify()
    assert str(reparsed) == printed
    assert reparsed.is_structurally_equivalent(module)


def xdsl_opt() -> str:
    found = Path(sys.executable).with_name("xdsl-opt")
    if found.exists():
        return str(found)
    which = shutil.which("xdsl-opt")
    if which is None:
        pytest.skip("xdsl-opt is not installed")
    return which


def test_xdsl_opt_parses_annc_ir_through_the_entry_point(tmp_path: Path) -> None:
    printed = str(compile_ir(PROGRAMS["every kernel"]))
    path = tmp_path / "every.mlir"
    path.write_text(printed)
    done = subprocess.run([xdsl_opt(), str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == printed.strip()


def test_xdsl_opt_fuses_regions_like_the_compiler(tmp_path: Path) -> None:
    from annc.compiler import compile_program

    text = PROGRAMS["heat"]
    path = tmp_path / "heat.mlir"
    path.write_text(str(compile_ir(text)))
    done = subprocess.run([xdsl_opt(), "-p", "fuse-regions", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    fused = compile_program(text, "p.ann", emit="fused").ir
    assert done.stdout.strip() == str(fused).strip()
    assert "kernel.region" in done.stdout


BROKEN_IR = """\
func.func @f(%a: tensor<4x3xf64>, %v: tensor<3xf64>) -> tensor<3xf64> {
  %y = kernel.matvec %a, %v : tensor<4x3xf64>, tensor<3xf64> -> tensor<3xf64>
  func.return %y : tensor<3xf64>
}
"""


def test_xdsl_opt_reports_an_op_that_does_not_verify(tmp_path: Path) -> None:
    path = tmp_path / "broken.mlir"
    path.write_text(BROKEN_IR)
    done = subprocess.run([xdsl_opt(), str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "kernel.matvec: result should be [4], got f64[3]" in done.stdout + done.stderr


def test_ops_carry_their_source_location_and_pins() -> None:
    module = compile_ir(PROGRAMS["heat"])
    ops = [op for op in module.walk() if isinstance(op, dialect.KernelOp)]
    assert [(op.name, dialect.where(op)) for op in ops] == [
        ("kernel.conv2d", "p.ann:8:19"),
        ("kernel.mul", "p.ann:8:17"),
        ("kernel.add", "p.ann:8:9"),
        ("kernel.mul", "p.ann:10:11"),
        ("kernel.sum", "p.ann:10:5"),
    ]
    assert [op.pin_device.data if op.pin_device else None for op in ops] == [
        None, None, None, "cpu", "cpu"]
    assert 'kernel.pin_device = "cpu"' in str(module)
    assert "loc" not in str(module)  # locations are not attributes


def test_every_op_has_a_file_line_column_location() -> None:
    module = compile_ir(PROGRAMS["heat"])
    unlocated = [op.name for op in module.walk()
                 if op is not module and not isinstance(op.location, FileLineColLoc)]
    assert unlocated == []
    assert all(dialect.where(op).startswith("p.ann:") for op in module.walk())


def test_pins_inside_nested_loops() -> None:
    module = compile_ir(PROGRAMS["nested"])
    muls = [op for op in module.walk() if isinstance(op, dialect.MulOp)]
    assert [op.pin_device.data for op in muls if op.pin_device] == ["gpu"]


def test_targets_and_names_are_module_attributes() -> None:
    module = compile_ir(PROGRAMS["heat"])
    assert module.attributes["annc.targets"] == ArrayAttr([StringAttr("cpu"),
                                                           StringAttr("opencl")])
    assert module.attributes["annc.inputs"] == ArrayAttr([StringAttr("T"), StringAttr("alpha")])
    assert module.attributes["annc.outputs"] == ArrayAttr([StringAttr("T"), StringAttr("E")])
    assert "annc.targets" not in compile_ir(PROGRAMS["cg"]).attributes


def test_a_target_override_replaces_the_target_statement() -> None:
    module = annc.compile_source(PROGRAMS["heat"], targets=["cpu"], emit="ir")
    assert isinstance(module, ModuleOp)
    assert module.attributes["annc.targets"] == ArrayAttr([StringAttr("cpu")])


# Each op's verify_ rejects a wrong result type --------------------------------


def values(*types: TensorType) -> list:
    return list(Block(arg_types=types).args)


def t(element: object, *shape: int) -> TensorType:
    return TensorType(element, shape)  # type: ignore[arg-type]


WRONG_OPS = {
    "matmul result": (dialect.MatmulOp, (t(f32, 4, 3), t(f32, 3, 5)), t(f32, 4, 4),
                      "result should be [4, 5]"),
    "matmul inner": (dialect.MatmulOp, (t(f32, 4, 3), t(f32, 4, 3)), t(f32, 4, 3),
                     "inner dimensions differ"),
    "matvec": (dialect.MatvecOp, (t(f64, 4, 3), t(f64, 3)), t(f64, 3), "result should be [4]"),
    "conv2d even": (dialect.Conv2dOp, (t(f64, 8, 8), t(f64, 2, 3)), t(f64, 8, 8),
                    "kernel sizes must be odd"),
    "conv2d result": (dialect.Conv2dOp, (t(f64, 8, 8), t(f64, 3, 3)), t(f64, 6, 6),
                      "result should be [8, 8]"),
    "transpose": (dialect.TransposeOp, (t(f32, 2, 3),), t(f32, 2, 3), "result should be [3, 2]"),
    "dot": (dialect.DotOp, (t(f64, 3), t(f64, 3)), t(f64, 3), "result should be []"),
    "sum": (dialect.SumOp, (t(f64, 3, 3),), t(f64, 3, 3), "result should be []"),
    "norm": (dialect.NormOp, (t(f32, 3),), t(f32, 1), "result should be []"),
    "exp": (dialect.ExpOp, (t(f32, 3),), t(f32, 4), "result should be [3]"),
    "sqrt": (dialect.SqrtOp, (t(f32, 3),), t(f32), "result should be [3]"),
    "abs": (dialect.AbsOp, (t(f32, 3),), t(f32, 3, 1), "result should be [3]"),
    "neg": (dialect.NegOp, (t(f32, 3),), t(f32, 2), "result should be [3]"),
    "add shapes": (dialect.AddOp, (t(f32, 3), t(f32, 4)), t(f32, 3),
                   "shapes differ: f32[3] and f32[4]"),
    "sub result": (dialect.SubOp, (t(f32, 3), t(f32)), t(f32), "result should be [3]"),
    "mul dtype": (dialect.MulOp, (t(f32, 3), t(f64, 3)), t(f32, 3), "share one dtype"),
    "div result dtype": (dialect.DivOp, (t(f64, 3), t(f64, 3)), t(f32, 3), "share one dtype"),
}


@pytest.mark.parametrize(("op", "operands", "result", "message"), WRONG_OPS.values(),
                         ids=WRONG_OPS.keys())
def test_verify_rejects_a_wrong_type(op: type, operands: tuple, result: TensorType,
                                     message: str) -> None:
    built = op(*values(*operands), result)
    with pytest.raises(VerifyException, match=message.replace("[", r"\[").replace("]", r"\]")):
        built.verify()


def test_every_kernel_op_has_a_wrong_type_case() -> None:
    assert {case[0] for case in WRONG_OPS.values()} == set(dialect.KERNEL_OPS)


@pytest.mark.parametrize(("op", "operands", "result"), [
    (dialect.MatmulOp, (t(f32, 4, 3), t(f32, 3, 5)), t(f32, 4, 5)),
    (dialect.AddOp, (t(f64), t(f64, 2, 2)), t(f64, 2, 2)),
    (dialect.DotOp, (t(f64, 3), t(f64, 3)), t(f64)),
])
def test_verify_accepts_the_right_type(op: type, operands: tuple, result: TensorType) -> None:
    op(*values(*operands), result).verify()
