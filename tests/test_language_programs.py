"""Every program of LANGUAGE.md, and every statement form, compiles to verified IR."""

from __future__ import annotations

from pathlib import Path

import pytest
from xdsl.dialects import scf
from xdsl.dialects.builtin import ModuleOp, TensorType

import annc
from annc.dsl.dialect import ConstantOp, KernelOp

LANGUAGE_EXAMPLE = """\
# 2-D heat diffusion, explicit Euler
param N = 256                 # compile-time integer, override with -D N=1024
param STEPS = 100

input T : f32[N, N]           # a tensor argument of the workload
input alpha : f32             # a scalar (0-d) argument
const L : f32[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]

target cpu, opencl            # devices the compiler may use (optional)

repeat STEPS {
  T = T + alpha * conv2d(T, L)
}
E = sum(T * T) @cpu           # pin every kernel of this statement to the CPU
output T, E
"""

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def compile_ir(text: str, **kwargs: object) -> ModuleOp:
    module = annc.compile_source(text, filename="test.ann", emit="ir", **kwargs)
    assert isinstance(module, ModuleOp)
    module.verify()
    return module


def kernels(module: ModuleOp) -> list[str]:
    return [op.kernel_name() for op in module.walk() if isinstance(op, KernelOp)]


def signature(module: ModuleOp) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    function = module.body.block.first_op
    assert function is not None
    inputs = [tuple(t.get_shape()) for t in function.function_type.inputs]
    outputs = [tuple(t.get_shape()) for t in function.function_type.outputs]
    return inputs, outputs


def test_the_complete_example_compiles() -> None:
    module = compile_ir(LANGUAGE_EXAMPLE)
    assert kernels(module) == ["conv2d", "mul", "add", "mul", "sum"]
    assert signature(module) == ([(256, 256), ()], [(256, 256), ()])
    pinned = [op for op in module.walk() if isinstance(op, KernelOp) and op.pin_device]
    assert [op.kernel_name() for op in pinned] == ["mul", "sum"]


def test_minus_d_overrides_params() -> None:
    module = compile_ir(LANGUAGE_EXAMPLE, params={"N": 8, "STEPS": 3})
    assert signature(module) == ([(8, 8), ()], [(8, 8), ()])
    loop = next(op for op in module.walk() if isinstance(op, scf.ForOp))
    assert loop.ub.owner.value.value.data == 3  # type: ignore[union-attr]


def test_minus_d_accepts_text_values_as_the_command_line_gives_them() -> None:
    module = compile_ir(LANGUAGE_EXAMPLE, params={"N": "16"})
    assert signature(module)[0][0] == (16, 16)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.ann")), ids=lambda p: p.name)
def test_every_shipped_example_compiles(path: Path) -> None:
    module = annc.compile_file(path, params={}, emit="ir")
    assert isinstance(module, ModuleOp)
    module.verify()


STATEMENT_FORMS = {
    "scalars": """
input a : f64
input b : f32
c = a * 2 + a / 3 - -a
d = b * b
output c, d
""",
    "scalar const": """
const g : f64 = 9.81
input m : f64[4]
w = m * g
output w
""",
    "multi-line list literal": """
const K : f64[3, 3] = [
  [1, 2, 1],     # a comment inside the literal
  [2, 4, 2],

  [1, 2, 1]
]
input A : f64[5, 5]
B = conv2d(A, K)
output B
""",
    "numbers in every written form": """
const v : f64[5] = [2, 0.25, -3, 1e-3, 2.5E+4]
W = v * 1e-3 + 2.5E+4 - .5
output W
""",
    "target and pins": """
target cpu, gpu
input A : f32[4, 4]
B = matmul(A, A) @gpu
C = transpose(B) @cpu
output C
""",
    "nested repeat": """
param OUTER = 3
param INNER = 2
input x : f64[4]
repeat OUTER {
  repeat INNER {
    x = x * 0.5
  }
  x = x + 1
}
output x
""",
    "repeat 0": """
param STEPS = 0
input x : f64[4]
repeat 0 {
  x = x + 1
}
repeat STEPS { x = x * 2 }
output x
""",
    "comments and blank lines everywhere": """

# leading comment

param N = 4   # trailing comment
input x : f64[N]


repeat 2 {   # comment after the brace

  # comment in the body
  x = x + 1

}
# before the output
output x   # after the output

""",
    "every kernel": """
param N = 4
input A : f64[N, N]
input x : f64[N]
input K : f64[3, 3]
C = matmul(A, A)
y = matvec(A, x)
D = conv2d(A, K)
E = transpose(A)
s = dot(x, y)
t = sum(A)
n = norm(A)
F = exp(A) + sqrt(A) + abs(A)
output C, y, D, E, s, t, n, F
""",
    "precedence and parentheses": """
input a : f64[3]
b = -a * 2 + (a - 1) / (3 * a)
output b
""",
    "rebinding changes shape outside loops": """
input A : f64[3, 4]
A = transpose(A)
output A
""",
    "a name bound before a repeat is loop-carried": """
input A : f64[3, 3]
B = A
repeat 2 {
  B = matmul(B, A)
}
output B
""",
    "windows line endings": "input x : f64[2]\r\ny = x + 1\r\noutput y\r\n",
    "no final newline": "input x : f64[2]\noutput x",
}


@pytest.mark.parametrize("text", STATEMENT_FORMS.values(), ids=STATEMENT_FORMS.keys())
def test_statement_form_compiles(text: str) -> None:
    compile_ir(text)


def test_a_scalar_const_is_a_0d_constant() -> None:
    module = compile_ir(STATEMENT_FORMS["scalar const"])
    constant = next(op for op in module.walk() if isinstance(op, ConstantOp))
    assert isinstance(constant.result.type, TensorType)
    assert tuple(constant.result.type.get_shape()) == ()


def test_repeat_zero_still_lowers_to_a_loop() -> None:
    module = compile_ir(STATEMENT_FORMS["repeat 0"])
    assert len([op for op in module.walk() if isinstance(op, scf.ForOp)]) == 2


def test_nested_repeat_lowers_to_nested_loops() -> None:
    module = compile_ir(STATEMENT_FORMS["nested repeat"])
    loops = [op for op in module.walk() if isinstance(op, scf.ForOp)]
    assert len(loops) == 2
    assert loops[1].parent_op() is loops[0]


def test_emit_ast_stops_before_the_checks() -> None:
    program = annc.compile_source("output nothing_checked_yet\n", emit="ast")
    assert not isinstance(program, ModuleOp)
