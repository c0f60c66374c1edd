"""Large sources: a `const` of many numbers costs bytes per number, not Python objects,
and keeps every error of a malformed literal as the grammar alone finds it; compile time
grows with a program's length, not with its square (`benchmarks/large_sources.py`
measures the large sizes).
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import random
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_fusion import reference_chains
from test_fuzz_grammar import programs
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block

import annc
from annc.compiler import compile_program, read_source
from annc.dsl.checks import check
from annc.dsl.dialect import KernelOp, RegionOp
from annc.dsl.errors import CompileError
from annc.dsl.parser import parse
from annc.dsl.types import ConstDecl
from annc.passes import fusion
from annc.passes.fusion import MOST_OPS, _chains
from annc.running import run_module

pytestmark = pytest.mark.fault

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _literal(values: np.ndarray) -> str:
    """A 2-d array as a literal, a row a line."""
    rows = ",\n  ".join("[" + ", ".join(map(repr, row)) + "]" for row in values.tolist())
    return f"[\n  {rows}]"


def _const_program(values: np.ndarray, literal: str | None = None) -> str:
    rows, columns = values.shape
    literal = _literal(values) if literal is None else literal
    return f"const C : f64[{rows}, {columns}] = {literal}\nS = sum(C)\noutput C, S\n"


def _values(rows: int, columns: int) -> np.ndarray:
    """Eighths, so that every number is written and read exactly."""
    return np.random.default_rng(7).integers(-4000, 4000, (rows, columns)) / 8


# A large const ---------------------------------------------------------------------


BYTES_PER_NUMBER = 70
"""What compiling a literal may allocate at its peak per number, beyond its text (8.5
bytes a number here): it took 48 (2026-12-07; Lark's two copies of the literal's text,
a few passes of numpy over it, the values). A Python float per number would add 32 (the
object and its pointer); read number by number, with a Lark token, tree node and AST
node each, parsing took 2,090."""


def test_a_large_const_runs_with_its_values_and_costs_bytes_per_number(tmp_path: Path
                                                                      ) -> None:
    values = _values(200, 1000)
    text = _const_program(values)
    compile_program(text, emit="ir")  # Lark's parser is built once a process
    tracemalloc.start()
    try:
        module = compile_program(text, "big.ann", emit="ir").ir
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(module, ModuleOp)
    assert peak / values.size < BYTES_PER_NUMBER, f"{peak / values.size:.1f} B a number"
    path = tmp_path / "big.ann"
    path.write_text(text)
    result = annc.run_file(path, targets=["cpu"], builds="never", record=False)
    np.testing.assert_array_equal(result.outputs["C"], values)
    assert result.outputs["S"] == pytest.approx(values.sum(), rel=1e-12)


def _located(text: str) -> CompileError:
    with pytest.raises(CompileError) as caught:
        compile_program(text, "big.ann", emit="ir")
    return caught.value


def _position(text: str, marker: str) -> tuple[int, int]:
    """The line and column of the first character of `marker` in the text."""
    offset = text.index(marker)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@pytest.mark.parametrize("rows", [pytest.param(100), pytest.param(1000, marks=pytest.mark.slow)])
def test_a_mistake_in_a_large_const_is_reported_where_it_is(rows: int) -> None:
    """A stray name, a missing comma, a bracket never closed, two thirds of the way into
    a literal of 200 numbers a row: located where they are, said as the grammar alone
    says them."""
    values = _values(rows, 200)
    literal = _literal(values)
    row = literal.split("\n")[2 * rows // 3]
    stray, no_comma = row.replace(", ", ", x, ", 1), row.replace(", ", " ", 1)
    for mistake, where, message in (
        (stray, stray.index("x") + 1, "unexpected 'x'"),
        (no_comma, no_comma.index(" ", 3) + 2, "expected ',' or ']'"),  # the 2nd number
    ):
        text = _const_program(values, literal.replace(row, mistake, 1))
        error = _located(text)
        assert message in error.message
        assert (error.line, error.column) == (_position(text, mistake)[0], where)
        assert error.diagnostics[0].source_line == mistake
        assert str(error) == str(_located_number_by_number(text))
    unclosed = _const_program(values, literal[:-1])
    error = _located(unclosed)
    assert (error.line, error.column) == _bracket(unclosed)
    assert error.message == "'[' was never closed"


def _bracket(text: str) -> tuple[int, int]:
    """Where the const's literal starts."""
    line, column = _position(text, "= [")
    return line, column + 2


def _located_number_by_number(text: str) -> CompileError:
    with pytest.raises(CompileError) as caught:
        parse(text, "big.ann", literals_at_once=False)
    return caught.value


def test_a_mistake_after_a_large_const_costs_no_reading_of_it_number_by_number() -> None:
    values = _values(200, 1000)
    text = _const_program(values).replace("S = sum(C)", "S = sum(C) +")
    compile_program(_const_program(values[:2]), emit="ir")
    tracemalloc.start()
    try:
        error = _located(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    line, _ = _position(text, "S = sum(C) +\n")
    assert (error.line, error.column) == (line, 13)
    assert error.message == "unexpected end of line; expected '(', '-', a name or a number"
    assert peak / values.size < BYTES_PER_NUMBER, f"{peak / values.size:.1f} B a number"


def test_a_large_ragged_const_is_reported_at_its_bracket() -> None:
    values = _values(200, 1000)
    literal = _literal(values)
    last_number = literal.rindex(", ")
    text = _const_program(values, literal[:last_number] + "]]")
    error = _located(text)
    assert (error.line, error.column) == _bracket(text)
    assert "the literal is ragged" in error.message


# Literals read at once agree with the grammar ------------------------------------------


NUMBER_TEXTS = ("0", "1", "-1", "- 2", "-\n3", "0.5", ".5", "5.", "-.25", "1e3", "2.5E+2",
                "1e-3", "-0", "007", "1e999", "3e38", "1e39", "4e-320", "123456789.125")
BLANKS = ("", "", " ", "  ", "\n", "\t", "\r\n", " \n  ")
EDITS = "[],-+.eE0123456789 \n\r\tx#"


@st.composite
def literal_texts(draw: st.DrawFn) -> tuple[str, tuple[int, ...]]:
    """A nested literal of up to three levels with blanks anywhere a token ends, and
    its shape; then, as often as not, one to three characters inserted, dropped or
    replaced."""
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))

    def written(level: int) -> str:
        if level == len(shape):
            return draw(st.sampled_from(NUMBER_TEXTS))
        blank = draw(st.sampled_from(BLANKS))
        items = [written(level + 1) for _ in range(shape[level])]
        if draw(st.integers(0, 9)) == 0:  # ragged
            items = items[:-1] or items
        return "[" + blank + f"{blank},{draw(st.sampled_from(BLANKS))}".join(items) + blank + "]"

    text = written(0)
    for _ in range(draw(st.sampled_from((0, 0, 0, 1, 2, 3)))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(("insert", "drop", "replace")))
        character = draw(st.sampled_from(EDITS))
        if kind == "insert":
            text = text[:at] + character + text[at:]
        elif at < len(text):
            text = text[:at] + ("" if kind == "drop" else character) + text[at + 1:]
    return text, shape


def _outcome(text: str, at_once: bool) -> tuple[str, object]:
    """What the frontend makes of a program: its constants (name, type, values as
    bytes), or its error as the user sees it."""
    try:
        typed = check(parse(text, "p.ann", literals_at_once=at_once), text)
    except CompileError as error:
        return "error", str(error)
    return "constants", [(s.name, str(s.type), s.values.tobytes()) for s in typed.body
                         if isinstance(s, ConstDecl)]


PLACES = ("const K : {type} = {literal}{after}\nx = K * 2\noutput K, x\n",
          "const K : {type} = {literal}{after}\nx = K *\noutput K\n",
          "const K : {type} = {literal}{after}\nrepeat 2 {{\n",
          "const K : {type} = {literal} + {literal}\noutput K\n",
          "x = {literal}\noutput x\n",
          "input x : f64 = {literal}\noutput x\n",
          "const K : {type} = [{literal}, {literal}{after}\noutput K\n")
"""Where a literal goes: in its place, before a later line's mistake, and where it may
not go."""
IN_ITS_PLACE = PLACES[0]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(literal_texts(), st.sampled_from(("f64", "f32")), st.booleans(),
       st.sampled_from(("", "  # a comment", "\n", "\n\n# the end\n")),
       st.sampled_from((IN_ITS_PLACE,) * len(PLACES) + PLACES))
def test_literals_read_at_once_agree_with_the_grammar_alone(
        literal: tuple[str, tuple[int, ...]], dtype: str, declared: bool, after: str,
        place: str) -> None:
    written, shape = literal
    dims = ", ".join(map(str, shape if declared else (*shape, 2)))
    text = place.format(type=f"{dtype}[{dims}]", literal=written, after=after)
    assert _outcome(text, True) == _outcome(text, False)


def test_a_literal_with_a_comment_inside_is_read_number_by_number() -> None:
    text = "const K : f64[2, 2] = [[1, 2],  # the first row\n  [3, -4e-1]]\noutput K\n"
    assert _outcome(text, True) == _outcome(text, False)
    assert _outcome(text, True)[0] == "constants"


# Fusion groups as it always did ------------------------------------------------------


def _dataflow_program(rng: random.Random, statements: int) -> str:
    """Statements on matrices, vectors and scalars of two dtypes, each reading recent
    values and now and then old ones, some pinned, some inside a repeat."""
    lines = ["input A : f64[4, 4]", "input B : f64[4, 4]", "input v : f64[4]",
             "input s : f64", "input K : f64[3, 3]", "input F : f32[4, 4]"]
    names = {"m": ["A", "B"], "v": ["v"], "s": ["s"], "f": ["F"]}
    forms = (("m", "matmul({m}, {m})"), ("m", "{m} + {m} * {s}"), ("m", "conv2d({m}, K)"),
             ("m", "transpose({m}) - {m}"), ("s", "sum({m})"), ("v", "matvec({m}, {v}) + {v}"),
             ("v", "exp({v}) / {s}"), ("f", "{f} * 2 + {f}"), ("s", "dot({v}, {v}) + norm({m})"),
             ("m", "-{m} + sqrt(abs({m}))"))

    def pick(kind: str) -> str:
        pool = names[kind]
        return rng.choice(pool[-3:] if rng.random() < 0.8 else pool)

    for i in range(statements):
        kind, form = rng.choice(forms)
        expression = form.format(m=pick("m"), v=pick("v"), s=pick("s"), f=pick("f"))
        pin = " @cpu" if rng.random() < 0.1 else ""
        name = f"t{i}"
        if kind == "m" and rng.random() < 0.1:  # carried through a loop
            lines += [f"{name} = {pick('m')}", "repeat 2 {", f"  {name} = {name} * 0.5 + "
                      f"{pick('m')}", "}"]
        else:
            lines.append(f"{name} = {expression}{pin}")
        names[kind].append(name)
    lines.append(f"output {names['m'][-1]}, {names['v'][-1]}, {names['s'][-1]}, "
                 f"{names['f'][-1]}")
    return "\n".join(lines) + "\n"


def _blocks(module: ModuleOp) -> list[Block]:
    return [block for op in module.walk() for region in op.regions for block in region.blocks]


def _same_groups(text: str, params: dict[str, int] | None = None) -> int:
    """Asserts that fusion groups the module's every block as the reference does; the
    number of groups."""
    module = compile_program(text, "p.ann", params, ["cpu"], "ir", record=False).ir
    groups = 0
    for block in _blocks(module):
        found = [[id(op) for op in group] for group in _chains(block)]
        assert found == [[id(op) for op in group] for group in reference_chains(block)]
        groups += len(found)
    return groups


def test_fusion_forms_the_reference_groups_in_generated_programs() -> None:
    rng = random.Random(11)
    groups = sum(_same_groups(_dataflow_program(rng, rng.randint(5, 60))) for _ in range(40))
    assert groups > 200  # the programs do fuse
    small = {"N": 6, "M": 5, "P": 3, "S": 7, "STEPS": 3, "ITERATIONS": 3, "SWEEPS": 3,
             "PASSES": 2, "SQUARINGS": 2}
    for example in sorted(EXAMPLES.glob("*.ann")):
        text = read_source(example)
        _same_groups(text, {k: v for k, v in small.items() if f"param {k} " in text})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs)
def test_fusion_forms_the_reference_groups_in_programs_of_the_grammar(text: str) -> None:
    with contextlib.suppress(CompileError):  # most break a rule; the others must agree
        _same_groups(text)


def _region_sizes(module: ModuleOp) -> list[int]:
    """How many kernel ops each region holds (a whole loop's, the chains inside it
    included), outermost first."""
    return [sum(isinstance(inner, KernelOp) for inner in op.walk()) for op in module.walk()
            if isinstance(op, RegionOp)]


def test_a_long_chain_becomes_regions_of_at_most_most_ops() -> None:
    module = compile_program(_chain(600), "p.ann", None, ["cpu"], "fused", record=False).ir
    sizes = _region_sizes(module)
    ops = 1 + 2 * 599  # `A * 0.5`, then a product and a sum a statement
    assert max(sizes) <= MOST_OPS
    assert sum(sizes) == ops
    assert len(sizes) == -(-ops // MOST_OPS)


@pytest.mark.parametrize("statements", [10, MOST_OPS])
def test_a_loop_of_more_than_most_ops_is_no_whole_loop_region(statements: int) -> None:
    body = "\n".join("  X = X * 0.5 + A" for _ in range(statements))
    text = f"input A : f64[4, 4]\nX = A * 1\nrepeat 3 {{\n{body}\n}}\noutput X\n"
    module = compile_program(text, "p.ann", None, ["cpu"], "fused", record=False).ir
    loops = [op for op in module.walk() if isinstance(op, RegionOp) and op.is_loop()]
    assert len(loops) == (2 * statements <= MOST_OPS)


# Compile time grows with the length -----------------------------------------------------


def _chain(statements: int) -> str:
    """Element-wise statements each reading the one before: one fusable chain."""
    lines = ["input A : f64[8, 8]", "X0 = A * 0.5"]
    lines += [f"X{i} = X{i - 1} * 0.5 + A" for i in range(1, statements)]
    return "\n".join([*lines, f"output X{statements - 1}"]) + "\n"


def _mixed(statements: int) -> str:
    """Products, convolutions, transposes, norms and element-wise statements, each
    reading the one before and every other one a value half-way back."""
    forms = ("X{i} = matmul(X{p}, A) * 0.125", "X{i} = X{p} + X{h} * 0.5",
             "X{i} = conv2d(X{p}, K) * 0.1", "X{i} = transpose(X{p}) - X{h}",
             "s{i} = norm(X{p})", "X{i} = X{p} / (1 + s{s})")
    lines = ["input A : f64[8, 8]", "input K : f64[3, 3]", "X0 = A * 0.5", "s1 = norm(X0)"]
    matrices, norm = [0], 1
    for i in range(2, statements):
        line = forms[i % len(forms)].format(i=i, p=matrices[-1],
                                            h=matrices[len(matrices) // 2], s=norm)
        lines.append(line)
        if line.startswith("s"):
            norm = i
        else:
            matrices.append(i)
    return "\n".join([*lines, f"output X{matrices[-1]}"]) + "\n"


def _loops(statements: int) -> str:
    """Short loops, a statement after each that keeps a value: many loops, each with
    every name of the program before it in scope."""
    lines = ["input A : f64[8, 8]", "X = A * 1"]
    for i in range(statements // 4):
        lines += ["repeat 2 {", "  X = X * 0.5 + A", "}", f"Y{i} = X + A"]
    return "\n".join([*lines, f"output X, Y{statements // 4 - 1}"]) + "\n"


def _selected(text: str) -> None:
    compile_program(text, "p.ann", None, ["cpu"], "selected", "never", record=False)


def _selected_and_run(text: str) -> None:
    module = compile_program(text, "p.ann", None, ["cpu"], "selected", "never",
                             record=False).ir
    run_module(module, builds="never")


def _calls(action: Callable[[str], None], text: str) -> int:
    """How many function calls the action makes on the text: a count of its work that
    no load on the machine changes."""
    profile = cProfile.Profile()
    profile.enable()
    try:
        action(text)
    finally:
        profile.disable()
    return sum(entry.callcount for entry in profile.getstats())


def _work_growth(action: Callable[[str], None], program: Callable[[int], str],
                 size: int) -> float:
    """How many times more calls 4·size statements take than size."""
    action(program(size))  # what the first compile of a process does once
    return _calls(action, program(4 * size)) / _calls(action, program(size))


WORK_GROWTH = 4.4
"""The most calls that four times the statements may take, against once: 3.9-4.0
(2026-12-07), where quadratic fusion took 12-14."""


@pytest.mark.parametrize("program", [_chain, _mixed, _loops], ids=["chain", "mixed", "loops"])
def test_the_work_of_compiling_and_running_grows_with_the_number_of_statements(
        program: Callable[[int], str]) -> None:
    growth = _work_growth(_selected_and_run, program, 250)
    assert growth < WORK_GROWTH, f"{growth:.2f}x the calls for 4x the statements"


def _accumulators(count: int) -> str:
    """A loop of `count` sums, each into a name bound to 0 before it."""
    names = [f"a{i}" for i in range(count)]
    return "\n".join(["input X : f64[4, 4]", *(f"{a} = 0" for a in names), "repeat 3 {",
                      *(f"  {a} = {a} + sum(X)" for a in names), "}",
                      f"output {', '.join(names)}"]) + "\n"


def _lowered(text: str) -> None:
    compile_program(text, "p.ann", None, ["cpu"], "ir", record=False)


def test_the_work_of_checking_accumulators_grows_with_their_number() -> None:
    """A name bound to a number before a loop takes the dtype its loop needs; with no f32
    value in the program it is f64 without checking the loop once a name (f32 programs
    still do: see `dsl.checks._Checker.probe_dtype`)."""
    growth = _work_growth(_lowered, _accumulators, 100)
    assert growth < WORK_GROWTH, f"{growth:.2f}x the calls for 4x the accumulators"


def test_the_work_check_sees_quadratic_fusion(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fusion as it was, every group checked anew (tests/reference_fusion.py), fails the
    check above."""
    monkeypatch.setattr(fusion, "_chains", reference_chains)
    assert _work_growth(_selected, _chain, 100) > WORK_GROWTH


def _time_growth(action: Callable[[str], None], program: Callable[[int], str], size: int,
                 repeats: int) -> float:
    """How many times longer 4·size statements take than size: the least of `repeats`
    timings of each, taken in turn (load only ever adds time), each after a collection
    of what the one before left (else one pays for the other's garbage)."""
    texts = (program(size), program(4 * size))
    action(texts[0])
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for text, taken in zip(texts, times, strict=True):
            gc.collect()
            start = time.perf_counter()
            action(text)
            taken.append(time.perf_counter() - start)
    return min(times[1]) / min(times[0])


TIME_GROWTH = 8.0
"""The most time that four times the statements may take, against once: 4 where compile
time is linear, 16 where quadratic (work a count of calls does not see, such as copying
every name in scope for each loop: 128,000 statements of loops took 37 s to check);
halfway, since a chain of 32,000 took 6.1x its 8,000's while a 2 GB benchmark ran beside
it (2026-12-07).
Below 8,000 statements the time a statement takes still grows as the program outgrows
the processor's caches (chain: 0.58 ms a statement at 2,000, 0.88 at 8,000, 0.93 at
32,000; 2026-12-07, under load), so the sizes are larger."""


@pytest.mark.slow
@pytest.mark.parametrize("program", [_chain, _mixed, _loops], ids=["chain", "mixed", "loops"])
def test_compile_and_run_time_grow_with_the_number_of_statements(
        program: Callable[[int], str]) -> None:
    growth = _time_growth(_selected_and_run, program, 8000, 2)
    assert growth < TIME_GROWTH, f"{growth:.1f}x the time for 4x the statements"
