"""Every error of LANGUAGE.md is reported at its line and column, never as a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import annc

ROOT = Path(__file__).resolve().parent.parent

# name: (program, line, column, part of the message)
ERRORS: dict[str, tuple[str, int, int, str]] = {
    # Syntax
    "operator without operand": (
        "input x : f64[4]\ny = x +\noutput y\n", 2, 8,
        "unexpected end of line; expected '(', '-', a name or a number"),
    "unclosed parenthesis": (
        "input x : f64[4]\ny = (x + 1\noutput y\n", 2, 5, "'(' was never closed"),
    "unclosed bracket in a constant": (
        "const c : f64[2] = [1, 2\ninput x : f64[2]  # a comment with ( in it\n"
        "y = x + c\noutput y\n", 1, 20, "'[' was never closed"),
    "the innermost unclosed bracket": (
        "input x : f64[4]\ny = (x * (x + 1)\nz = (y\noutput z\n", 3, 5,
        "'(' was never closed"),
    "missing colon": ("input x f64[4]\noutput x\n", 1, 9, "unexpected 'f64'; expected ':'"),
    "stray character": ("input x : f64[4]\ny = x $ 1\noutput y\n", 2, 7,
                        "unexpected character '$'"),
    "empty call parentheses": ("input x : f64[3]\ny = ()\noutput y\n", 2, 6, "unexpected ')'"),
    "unclosed block": ("input x : f64[3]\nrepeat 2 {\n  x = x + 1\noutput x\n", 4, 9,
                       "unexpected end of file"),
    "a power operator": (
        "input x : f64[4]\ny = x ** 2\noutput y\n", 2, 8,
        "unexpected '*'; expected '(', '-', a name or a number. annc has no power operator: "
        "multiply (x * x), or take sqrt(x)"),
    "a caret for a power": ("input x : f64[4]\ny = x ^ 2\noutput y\n", 2, 7,
                            "unexpected character '^'; annc has no power operator"),
    "two products, not a power": ("input x : f64[4]\ny = x * * 2\noutput y\n", 2, 9,
                                  "unexpected '*'; expected '(', '-', a name or a number"),
    "negative repeat count": ("input x : f64[3]\nrepeat -1 { x = x + 1 }\noutput x\n", 2, 8,
                              "unexpected '-'"),
    # Names and kernels
    "unknown name": ("input x : f64[4]\ny = x + z\noutput y\n", 2, 9, "unknown name 'z'"),
    "unknown name with suggestion": (
        "input alpha : f64[4]\ny = alpah * 2\noutput y\n", 2, 5,
        "unknown name 'alpah'; did you mean 'alpha'?"),
    "unknown output name": ("input x : f64[4]\noutput q\n", 2, 8, "unknown name 'q'"),
    "unknown kernel": ("input x : f64[4]\ny = foo(x)\noutput y\n", 2, 5,
                       "unknown kernel 'foo'; kernels are matmul, matvec, conv2d"),
    "misspelt kernel": ("input A : f64[4, 4]\nB = matmull(A, A)\noutput B\n", 2, 5,
                        "unknown kernel 'matmull'; did you mean 'matmul'? Kernels are "
                        "matmul, matvec, conv2d"),
    "calling a value": ("input x : f64[4]\ny = x(1)\noutput y\n", 2, 5,
                        "x is not a kernel and cannot be called"),
    "a kernel used as a value": ("input x : f64[4]\ny = x + exp\noutput y\n", 2, 9,
                                 "exp is a kernel; call it as exp(...)"),
    "too few arguments": ("input x : f64[4]\ny = dot(x)\noutput y\n", 2, 5,
                          "dot takes 2 arguments (dot(x, y)), got 1"),
    "too many arguments": ("input x : f64[4]\ny = sum(x, x)\noutput y\n", 2, 5,
                           "sum takes 1 argument (sum(A)), got 2"),
    "no arguments": ("input x : f64[4]\ny = norm()\noutput y\n", 2, 5,
                     "norm takes 1 argument (norm(A)), got 0"),
    "a number where a kernel takes a tensor": (
        "input x : f64[3]\ny = dot(x, 3)\noutput y\n", 2, 12,
        "dot: argument 2 is a number; dot takes tensors"),
    # Shapes and dtypes, showing both types
    "element-wise shapes differ": (
        "input x : f64[4]\ninput z : f64[5]\ny = x + z\noutput y\n", 3, 7,
        "'+': shapes differ: f64[4] and f64[5]"),
    "element-wise dtypes differ": (
        "input x : f64[4]\ninput z : f32[4]\ny = x * z\noutput y\n", 3, 7,
        "'*': dtypes differ: f64[4] and f32[4]"),
    "kernel dtypes differ": (
        "input A : f64[4, 4]\ninput z : f32[4]\ny = matvec(A, z)\noutput y\n", 3, 5,
        "matvec: dtypes differ: f64[4, 4] and f32[4]"),
    "matmul inner dimensions": (
        "input A : f32[4, 3]\ninput B : f32[4, 3]\nC = matmul(A, B)\noutput C\n", 3, 5,
        "matmul: inner dimensions differ: f32[4, 3] and f32[4, 3]"),
    "matmul of a vector": (
        "input A : f32[4, 3]\ninput v : f32[3]\nC = matmul(A, v)\noutput C\n", 3, 5,
        "matmul: expects two matrices, got f32[4, 3] and f32[3]"),
    "matvec sizes": (
        "input A : f64[4, 3]\ninput v : f64[4]\ny = matvec(A, v)\noutput y\n", 3, 5,
        "matvec: the matrix has 3 columns but the vector has 4 elements: f64[4, 3] and f64[4]"),
    "dot lengths": ("input x : f64[4]\ninput z : f64[5]\ns = dot(x, z)\noutput s\n", 3, 5,
                    "dot: vector lengths differ: f64[4] and f64[5]"),
    "transpose of a vector": ("input x : f64[4]\ny = transpose(x)\noutput y\n", 2, 5,
                              "transpose: expects a matrix, got f64[4]"),
    "even convolution kernel": (
        "input A : f64[4, 4]\nconst K : f64[2, 3] = [[1, 2, 1], [3, 4, 3]]\n"
        "y = conv2d(A, K)\noutput y\n", 3, 5, "conv2d: kernel sizes must be odd, got f64[2, 3]"),
    "conv2d of a vector": (
        "input x : f64[4]\nconst K : f64[3, 3] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]\n"
        "y = conv2d(x, K)\noutput y\n", 3, 5, "conv2d: expects an image and a kernel"),
    # Declarations
    "const literal has the wrong shape": (
        "const K : f64[2, 2] = [[1, 2], [3, 4], [5, 6]]\noutput K\n", 1, 23,
        "const K: the literal has shape [3, 2] but the declared type is f64[2, 2]"),
    "const number for a tensor": (
        "const K : f64[2] = 3\noutput K\n", 1, 20,
        "the literal has shape a single number but the declared type is f64[2]"),
    "ragged const literal": ("const K : f64[2, 2] = [[1, 2], [3]]\noutput K\n", 1, 23,
                             "the literal is ragged"),
    "unknown dtype": ("input x : i32[4]\noutput x\n", 1, 11, "unknown dtype 'i32'"),
    "zero dimension from a param": ("param N = 0\ninput x : f64[N]\noutput x\n", 2, 15,
                                    "dimension N = 0 is not positive"),
    "zero dimension": ("input x : f64[0]\noutput x\n", 1, 15,
                       "dimension must be a positive integer, got 0"),
    "negative dimension": ("input x : f64[-3]\noutput x\n", 1, 15,
                           "dimension must be a positive integer, got -3"),
    "dimension too large": ("input x : f64[99999999999999999999]\noutput x\n", 1, 15,
                            "dimension is too large"),
    "unknown param in a shape": ("input x : f64[M]\noutput x\n", 1, 15, "unknown param 'M'"),
    "a value in a shape": ("input a : f64\ninput x : f64[a]\noutput x\n", 2, 15,
                           "a is not a param"),
    "negative param": ("param N = -3\ninput x : f64[4]\noutput x\n", 1, 11,
                       "param N must be a non-negative integer, got -3"),
    "fractional param": ("param N = 2.5\ninput x : f64[4]\noutput x\n", 1, 11,
                         "param N must be a non-negative integer, got 2.5"),
    "fractional repeat count": ("input x : f64[4]\nrepeat 2.5 {\n x = x + 1\n}\noutput x\n",
                                2, 8, "a repeat count must be a non-negative integer, got 2.5"),
    "declared twice": ("input x : f64[4]\ninput x : f64[4]\noutput x\n", 2, 7,
                       "x is already declared at line 1"),
    # Loops
    "loop-carried shape change": (
        "input A : f64[3, 4]\nB = A\nrepeat 2 {\n  B = transpose(B)\n}\noutput B\n", 4, 3,
        "B changes type inside the repeat block at line 3: f64[3, 4] before the block, "
        "f64[4, 3] here"),
    "loop-carried dtype change": (
        "input x : f64[4]\ninput y : f32[4]\nz = x\nrepeat 2 {\n  z = y\n}\noutput z\n", 5, 3,
        "z changes type inside the repeat block at line 4: f64[4] before the block, f32[4]"),
    "a name bound only inside a repeat, read after it": (
        "input x : f64[4]\nrepeat 2 {\n  y = x + 1\n}\noutput y\n", 5, 8,
        "y is assigned inside the repeat block at line 2 (line 3) but not bound before it"),
    "input inside repeat": ("input x : f64[4]\nrepeat 2 {\n  input z : f64[4]\n}\noutput x\n",
                            3, 9, "input must be at the top level of the file"),
    "param inside repeat": ("input x : f64[4]\nrepeat 2 {\n  param Q = 3\n}\noutput x\n", 3, 9,
                            "param must be at the top level of the file"),
    "const inside repeat": (
        "input x : f64[4]\nrepeat 2 {\n  const c : f64 = 1\n}\noutput x\n", 3, 9,
        "const must be at the top level of the file"),
    "target inside repeat": ("input x : f64[4]\nrepeat 2 {\n  target cpu\n}\noutput x\n", 3, 3,
                             "target must be at the top level of the file"),
    # Devices
    "unknown device in target": ("target cpu, tpu\ninput x : f64[4]\noutput x\n", 1, 13,
                                 "unknown device 'tpu'; devices are cpu, gpu, opencl"),
    "unknown device in a pin": ("input x : f64[4]\ny = x + 1 @tpu\noutput y\n", 2, 12,
                                "unknown device 'tpu'"),
    "gpu pin outside the target list": (
        "target cpu\ninput x : f64[4]\ny = x + 1 @gpu\noutput y\n", 3, 12,
        "@gpu pins to a device outside the target list (cpu)"),
    "two targets": ("target cpu\ntarget gpu\ninput x : f64[4]\noutput x\n", 2, 1,
                    "a program has at most one target statement; the first is at line 1"),
    "target after an assignment": (
        "input x : f64[4]\ny = x + 1\ntarget cpu\noutput y\n", 3, 1,
        "target must come before any assignment (the first assignment is at line 2)"),
    "device listed twice": ("target cpu, cpu\ninput x : f64[4]\noutput x\n", 1, 13,
                            "device cpu is listed twice"),
    # Output
    "missing output": ("input x : f64[4]\ny = x + 1\n", 2, 10, "the program has no output"),
    "empty program": ("", 1, 1, "the program has no output"),
    "misplaced output": ("input x : f64[4]\noutput x\ny = x + 1\n", 2, 1,
                         "output must be the last statement of the file"),
    "two outputs": ("input x : f64[4]\ny = x\noutput y\noutput x\n", 4, 1,
                    "a program has exactly one output statement; the first is at line 3"),
    "output inside repeat": ("input x : f64[4]\nrepeat 2 {\n  output x\n}\noutput x\n", 3, 3,
                             "output must be the last statement of the file, outside any"),
    "output listed twice": ("input x : f64[4]\noutput x, x\n", 2, 11,
                            "x is listed twice in output"),
    # Reserved names and params
    "assigning a kernel name": ("input x : f64[4]\nsum = x + 1\noutput x\n", 2, 1,
                                "cannot assign to 'sum': it is a kernel name"),
    "declaring a kernel name": ("input norm : f64[4]\noutput norm\n", 1, 7,
                                "'norm' is a kernel name and cannot be declared"),
    "assigning a keyword": ("input x : f64[4]\nrepeat = x + 1\noutput x\n", 2, 1,
                            "'repeat' is a keyword and cannot be assigned"),
    "assigning the output keyword": ("input x : f64[4]\noutput = x\noutput x\n", 2, 1,
                                     "'output' is a keyword and cannot be assigned"),
    "a param as a value": ("param N = 4\ninput x : f64[N]\ny = x * N\noutput y\n", 3, 9,
                           "N is a param; params can only be used in shapes and repeat counts"),
    "assigning a param": ("param N = 4\nN = 5\ninput x : f64[N]\noutput x\n", 2, 1,
                          "cannot assign to N: it is a param"),
}


@pytest.mark.parametrize(("text", "line", "column", "message"), ERRORS.values(), ids=ERRORS.keys())
def test_error_is_located(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_source(text, filename="bad.ann")
    error = caught.value
    assert (error.filename, error.line, error.column) == ("bad.ann", line, column), str(error)
    assert message in error.message
    assert str(error).startswith(f"bad.ann:{line}:{column}: error: ")


HEAT_WITH_BAD_MATMUL = """\
# the LANGUAGE.md error example, at line 7 column 9
param M = 64
param K = 32
input A : f32[M, K]
input B : f32[M, K]
repeat 1 {
    C = matmul(A, B)
}
output A
"""

LANGUAGE_EXAMPLE_STDERR = """\
heat.ann:7:9: error: matmul: inner dimensions differ: f32[64, 32] and f32[64, 32]
    C = matmul(A, B)
        ^
"""


def test_the_language_example_error() -> None:
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_source(HEAT_WITH_BAD_MATMUL, filename="heat.ann")
    error = caught.value
    assert (error.filename, error.line, error.column) == ("heat.ann", 7, 9)
    assert error.message == "matmul: inner dimensions differ: f32[64, 32] and f32[64, 32]"
    assert str(error) + "\n" == LANGUAGE_EXAMPLE_STDERR


def test_the_caret_lines_up_under_tabs() -> None:
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_source("input x : f64[4]\nrepeat 1 {\n\ty = x + z\n}\noutput x\n")
    assert str(caught.value).endswith("\n\ty = x + z\n\t        ^")


def test_form_feeds_do_not_shift_the_source_line() -> None:
    text = "# page one\f page two\ninput x : f64[4]\ny = x + z\noutput y\n"
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_source(text)
    assert caught.value.line == 3
    assert "\ny = x + z\n" in str(caught.value)


def test_every_error_is_reported_not_only_the_first() -> None:
    text = "input x : f64[4]\ny = x + z\nw = foo(x)\noutput y, w\n"
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_source(text, filename="bad.ann")
    located = [(d.line, d.column) for d in caught.value.diagnostics]
    assert located == [(2, 9), (3, 5)]
    assert str(caught.value).count(": error: ") == 2


PARAM_PROGRAM = "param N = 4\ninput x : f64[N]\noutput x\n"


@pytest.mark.parametrize(
    ("params", "column", "message"),
    [
        ({"Q": 3}, 4, "-D Q: the program declares no param Q (its params: N)"),
        ({"N": "abc"}, 6, "-D N=abc: a param must be a non-negative integer"),
        ({"N": "-2"}, 6, "-D N=-2: a param must be a non-negative integer"),
        ({"N": -2}, 6, "a param must be a non-negative integer"),
        ({"N": "2.5"}, 6, "a param must be a non-negative integer"),
        ({"N": ""}, 6, "a param must be a non-negative integer"),
        ({"N": "²"}, 6, "a param must be a non-negative integer"),
        ({"N": True}, 6, "a param must be a non-negative integer"),
    ],
)
def test_bad_minus_d_override(params: dict, column: int, message: str) -> None:
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_source(PARAM_PROGRAM, filename="p.ann", params=params)
    error = caught.value
    assert (error.filename, error.line, error.column) == ("<command line>", 1, column)
    assert message in error.message


def test_minus_d_zero_is_checked_where_the_param_is_a_dimension() -> None:
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_source(PARAM_PROGRAM, filename="p.ann", params={"N": 0})
    assert (caught.value.line, caught.value.column) == (2, 15)
    assert "dimension N = 0 is not positive" in caught.value.message


def test_minus_d_zero_is_fine_for_a_repeat_count() -> None:
    text = "param S = 3\ninput x : f64[2]\nrepeat S { x = x + 1 }\noutput x\n"
    annc.compile_source(text, params={"S": 0})


def test_unknown_target_override() -> None:
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_source(PARAM_PROGRAM, targets=["cpu", "tpu"])
    assert caught.value.filename == "<command line>"
    assert "unknown device 'tpu'" in caught.value.message


def test_a_pin_outside_the_target_override() -> None:
    text = "input x : f64[4]\ny = x + 1 @gpu\noutput y\n"
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_source(text, targets=["cpu"])
    assert (caught.value.line, caught.value.column) == (2, 12)
    assert "given by --target" in caught.value.message


def test_a_non_utf8_file_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.ann"
    path.write_bytes(b"input x : f64[4]\n# caf\xe9\noutput x\n")
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_file(path)
    assert (caught.value.line, caught.value.column) == (2, 6)
    assert "not UTF-8" in caught.value.message


def test_the_non_utf8_column_counts_characters_not_bytes(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ann"
    path.write_bytes("# café ".encode() + b"\xff\noutput x\n")
    with pytest.raises(annc.CompileError) as caught:
        annc.compile_file(path)
    assert (caught.value.line, caught.value.column) == (1, 8)


def test_a_missing_file_is_an_annc_error(tmp_path: Path) -> None:
    with pytest.raises(annc.AnncError, match="no such file"):
        annc.compile_file(tmp_path / "missing.ann")


# The command line -------------------------------------------------------------


def annc_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "annc", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or ROOT, timeout=60,
    )


CLI_CASES = {
    "syntax": ("input x : f64[4]\ny = x +\noutput y\n", "2:8", "\ny = x +\n       ^\n"),
    "shape": ("input x : f64[4]\ninput z : f64[5]\ny = x + z\noutput y\n", "3:7",
              "\ny = x + z\n      ^\n"),
}


@pytest.mark.parametrize(("text", "where", "caret"), CLI_CASES.values(), ids=CLI_CASES.keys())
def test_cli_reports_a_located_error(tmp_path: Path, text: str, where: str, caret: str) -> None:
    path = tmp_path / "bad.ann"
    path.write_text(text)
    done = annc_cli("compile", path.name, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f"bad.ann:{where}: error: ")
    assert caret in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_cli_prints_the_language_example_exactly(tmp_path: Path) -> None:
    (tmp_path / "heat.ann").write_text(HEAT_WITH_BAD_MATMUL)
    done = annc_cli("compile", "heat.ann", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == LANGUAGE_EXAMPLE_STDERR


@pytest.mark.parametrize(
    ("define", "message"),
    [
        ("Q=3", "the program declares no param Q"),
        ("N=-1", "a param must be a non-negative integer"),
        ("N", "expected NAME=VALUE"),
    ],
)
def test_cli_bad_minus_d(define: str, message: str) -> None:
    done = annc_cli("compile", "examples/heat.ann", "-D", define)
    assert done.returncode == 1
    assert message in done.stderr
    assert "<command line>" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_value_apart_from_its_param_says_how_to_write_it() -> None:
    """`-D N 512` is a bad -D, said as one (not 'unrecognized arguments: 512' under the
    top-level usage), wherever FILE stands."""
    for args in (("examples/heat.ann", "-D", "N", "512"), ("-D", "N", "512", "examples/heat.ann")):
        done = annc_cli("compile", *args)
        assert done.returncode == 1
        assert done.stderr == ("<command line>: error: -D N 512: a param and its value are "
                               "one argument: write -D N=512\n")


def test_an_unknown_argument_shows_the_usage_of_its_command() -> None:
    done = annc_cli("compile", "examples/heat.ann", "512")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: annc compile ")
    assert "annc compile: error: unrecognized arguments: 512" in done.stderr


def test_cli_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "bin.ann").write_bytes(b"\x00\xff\xfe binary")
    done = annc_cli("compile", "bin.ann", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("bin.ann:1:2: error: the file is not UTF-8 text")
    assert "Traceback" not in done.stderr


def test_cli_missing_file(tmp_path: Path) -> None:
    done = annc_cli("compile", "nowhere.ann", cwd=tmp_path)
    assert done.returncode == 1
    assert "nowhere.ann: no such file" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("compile", "examples/heat.ann", "--no-such-option"),
        ("run", "examples/heat.ann", "--seed", "zero"),
        ("no-such-command",),
    ],
    ids=["unknown option", "bad integer", "unknown command"],
)
def test_cli_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    done = annc_cli(*args)
    assert done.returncode == 2
    assert "usage:" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_user_error_is_exported_from_annc_as_an_annc_error() -> None:
    import annc.dsl.errors

    classes = [v for v in vars(annc.dsl.errors).values()
               if isinstance(v, type) and issubclass(v, Exception)]
    assert len(classes) == 9
    for error in classes:
        assert getattr(annc, error.__name__) is error
        assert issubclass(error, annc.AnncError)
        assert error.__doc__
