"""The frontend never crashes: any text compiles or raises a located `CompileError`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp

import annc

CORPUS = [
    """\
# 2-D heat diffusion, explicit Euler
param N = 16
param STEPS = 3
input T : f32[N, N]
input alpha : f32
const L : f32[3, 3] = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
target cpu, opencl
repeat STEPS {
  T = T + alpha * conv2d(T, L)
}
E = sum(T * T) @cpu
output T, E
""",
    """\
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
    """\
input A : f64[4, 3]
input v : f64[3]
const K : f64[3, 1] = [
  [1],
  [2.5E+4],
  [-1e-3]
]
G = matmul(transpose(A), A)
y = matvec(A, v)
C = conv2d(A, K)
s = dot(v, v) + sum(A) + norm(y)
E = -exp(A) - sqrt(abs(A)) / 2
output G, y, C, s, E
""",
    """\
param OUTER = 2
input x : f32[2]
c = 0
repeat OUTER {
  repeat 3 {
    x = x * 2 @gpu
    c = c + 1
  }
  repeat 0 { x = x - 1 }
}
output x, c
""",
]

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9.]+(?:[eE][+-]?[0-9]+)?|\s+|.", re.S)
SNIPPETS = [
    "param", "input", "const", "target", "repeat", "output", "matmul", "conv2d", "sum",
    "(", ")", "[", "]", "{", "}", ",", ":", "=", "@", "#", "-", "+", "*", "/", "\n", " ",
    "0", "-1", "1e999", "2.5", "f32", "f64", "f16", "N", "x", "gpu", "tpu", "\t", "\r",
    "\\\n", "\x00", "é", "\u2028", "\f", "99999999999999999999",
]


@st.composite
def mutated_programs(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 6))):
        tokens = TOKEN.findall(text) or [""]
        i = draw(st.integers(0, len(tokens) - 1))
        j = draw(st.integers(0, len(tokens) - 1))
        kind = draw(st.sampled_from([
            "delete char", "insert char", "swap chars", "delete token", "insert token",
            "duplicate tokens", "swap tokens", "splice line",
        ]))
        if kind == "delete char" and text:
            k = draw(st.integers(0, len(text) - 1))
            text = text[:k] + text[k + 1:]
        elif kind == "insert char":
            k = draw(st.integers(0, len(text)))
            text = text[:k] + draw(st.characters(max_codepoint=0x2FFF)) + text[k:]
        elif kind == "swap chars" and len(text) > 1:
            a, b = sorted(draw(st.lists(st.integers(0, len(text) - 1), min_size=2, max_size=2)))
            chars = list(text)
            chars[a], chars[b] = chars[b], chars[a]
            text = "".join(chars)
        elif kind == "delete token":
            text = "".join(tokens[:i] + tokens[i + 1:])
        elif kind == "insert token":
            text = "".join([*tokens[:i], draw(st.sampled_from(SNIPPETS)), *tokens[i:]])
        elif kind == "duplicate tokens":
            a, b = min(i, j), max(i, j) + 1
            text = "".join(tokens[:b] + tokens[a:b] + tokens[b:])
        elif kind == "swap tokens":
            tokens[i], tokens[j] = tokens[j], tokens[i]
            text = "".join(tokens)
        elif kind == "splice line":
            lines = text.split("\n")
            donor = draw(st.sampled_from(CORPUS)).split("\n")
            line = draw(st.sampled_from(donor))
            lines.insert(draw(st.integers(0, len(lines))), line)
            text = "\n".join(lines)
    return text


def compiles_or_reports(text: str, **kwargs: object) -> None:
    """The frontend's only allowed outcomes: IR, or a CompileError with a location."""
    try:
        module = annc.compile_source(text, filename="fuzz.ann", emit="ir", **kwargs)
    except annc.CompileError as error:
        assert error.line >= 1 and error.column >= 1, str(error)
        assert all(d.line >= 1 and d.column >= 1 for d in error.diagnostics)
        assert error.filename in ("fuzz.ann", "<command line>")
        assert str(error).startswith(f"{error.filename}:{error.line}:{error.column}: error: ")
        return
    assert isinstance(module, ModuleOp)
    module.verify()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_programs())
def test_mutated_programs_compile_or_give_a_located_error(text: str) -> None:
    compiles_or_reports(text)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_compiles_or_gives_a_located_error(text: str) -> None:
    compiles_or_reports(text)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(CORPUS[:1]), st.dictionaries(
    st.sampled_from(["N", "STEPS", "M", ""]),
    st.one_of(st.integers(-5, 50), st.text(max_size=4)), max_size=3))
def test_arbitrary_overrides_compile_or_give_a_located_error(text: str, params: dict) -> None:
    compiles_or_reports(text, params=params)


# Extremes ---------------------------------------------------------------------------


def test_100_nested_repeat_blocks_compile() -> None:
    text = "input x : f64[2]\n" + "repeat 1 {\n" * 100 + "x = x + 1\n" + "}\n" * 100
    compiles_or_reports(text + "output x\n")
    assert isinstance(annc.compile_source(text + "output x\n", emit="ir"), ModuleOp)


def test_1000_nested_parentheses_compile() -> None:
    text = "input x : f64[2]\ny = " + "(" * 1000 + "x + 1" + ")" * 1000 + "\noutput y\n"
    assert isinstance(annc.compile_source(text, emit="ir"), ModuleOp)


@pytest.mark.parametrize("depth", [450, 1000, 5000])
def test_very_deep_nesting_is_a_compile_error_not_a_recursion_error(depth: int) -> None:
    for text in (
        "input x : f64[2]\ny = " + "exp(" * depth + "x" + ")" * depth + "\noutput y\n",
        "input x : f64[2]\ny = " + "-" * depth + "x\noutput y\n",
        "input x : f64[2]\ny = x" + " + x" * depth + "\noutput y\n",
        "input x : f64[2]\n" + "repeat 1 {\n" * depth + "x = x + 1\n" + "}\n" * depth
        + "output x\n",
        "const c : f64 = " + "[" * depth + "1" + "]" * depth + "\noutput c\n",
    ):
        compiles_or_reports(text)


def test_a_10000_line_program_compiles() -> None:
    text = "input x : f64[2]\n" + "x = x * 0.5 + 1\n" * 5000 + "# a comment\n" * 4998
    module = annc.compile_source(text + "output x\n", emit="ir")
    assert isinstance(module, ModuleOp)


def test_a_non_utf8_file_is_a_compile_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.ann"
    path.write_bytes("input x : f64[2]\n# température\noutput x\n".encode("latin-1"))
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_file(path)
    assert (caught.value.line, caught.value.column) == (2, 7)


def test_a_binary_file_is_a_compile_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.ann"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_file(path)
    assert caught.value.line >= 1 and caught.value.column >= 1


def test_control_characters_are_a_compile_error() -> None:
    compiles_or_reports("input x : f64[2]\x00\noutput x\n")
    compiles_or_reports(bytes(range(128)).decode("ascii"))


def test_numbers_that_overflow_work_like_numpy_or_are_refused() -> None:
    """A number that is not finite in its operand's dtype, and an integer beyond 2^63-1
    where an integer is needed, are located errors, not an OverflowError, and never an
    inf constant in the IR (xDSL re-parses its hexadecimal form as a wrong finite number)."""
    for text, column in (("input x : f64[2]\ny = x * 1e999\noutput y\n", 9),
                         ("input x : f32[2]\ny = x * 1e39\noutput y\n", 9),
                         ("input x : f64[2]\ny = x * (0 / 0)\noutput y\n", 12),
                         ("const c : f32[2] = [1, 1e39]\noutput c\n", 20)):
        with pytest.raises(annc.CompileError) as error:
            annc.compile_source(text, emit="ir")
        assert "must be finite" in error.value.message
        assert error.value.column == column, error.value
    ok = annc.compile_source("input x : f64[2]\ny = x * 1e300\noutput y\n", emit="ir")
    assert isinstance(ok, ModuleOp)
    with pytest.raises(annc.CompileError) as error:
        annc.compile_source("param N = 99999999999999999999999\ninput x : f64[N]\noutput x\n")
    assert error.value.line >= 1 and "too large" in error.value.message
