"""Programs generated from the grammar: every one compiles, or fails with a located error.

Where `test_fuzz_frontend` mutates real programs, this builds syntactically valid ones
production by production (declarations, types, literals, expressions with every kernel
and operator, pins, nested repeats, outputs) from a small pool of names, so that they
reach the semantic checks and lowering in every combination: shapes that agree and
shapes that do not, names declared and not, loops that carry and that escape.
"""

from __future__ import annotations

from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp

import annc
from annc.dsl.checks import KERNEL_PARAMETERS

HEADER = ("param N = 3", "input A : f32[N, N]", "input B : f32[N, N]", "input x : f32[N]",
          "input s : f32")
"""Declared first in every program, so that many generated programs are well typed."""
NAMES = ("A", "B", "x", "y", "s", "N", "M", "T")
VALUES = ("A", "B", "x", "s", "A", "B", "x", "y")
KERNELS = (*KERNEL_PARAMETERS, "nope")
"""Every kernel a program calls by name (from the kernel table), and one that is none."""
DEVICES = ("cpu", "gpu", "opencl", "tpu")

names = st.sampled_from(NAMES)
numbers = st.sampled_from(("0", "1", "2", "3", "0.5", "-1", "1e-3", "2.5E+2", "7"))
dims = st.one_of(st.sampled_from(("1", "2", "3", "4", "0")), st.sampled_from(("N", "M")))
types = st.builds(
    lambda dtype, shape: dtype + (f"[{', '.join(shape)}]" if shape else ""),
    st.sampled_from(("f32", "f64", "f16")), st.lists(dims, max_size=3),
)


def literal(shape: list[int]) -> st.SearchStrategy[str]:
    if not shape:
        return numbers
    return st.lists(literal(shape[1:]), min_size=shape[0], max_size=shape[0]).map(
        lambda items: "[" + ", ".join(items) + "]")


literals = st.lists(st.integers(1, 3), max_size=2).flatmap(literal)

expressions = st.recursive(
    st.one_of(st.sampled_from(VALUES), numbers),
    lambda inner: st.one_of(
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from("+-*/"), inner),
        inner.map(lambda e: f"-{e}"),
        inner.map(lambda e: f"({e})"),
        st.builds(lambda k, args: f"{k}({', '.join(args)})", st.sampled_from(KERNELS),
                  st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=8,
)

pins = st.one_of(st.just(""), st.sampled_from(DEVICES).map(lambda d: f" @{d}"))
declarations = st.one_of(
    st.builds(lambda n, v: f"param {n} = {v}", names, st.sampled_from(("2", "3", "0", "4"))),
    st.builds(lambda n, t: f"input {n} : {t}", names, types),
    st.builds(lambda n, t, v: f"const {n} : {t} = {v}", names, types, literals),
    st.lists(st.sampled_from(DEVICES), min_size=1, max_size=3).map(
        lambda ds: "target " + ", ".join(ds)),
)
assignments = st.builds(lambda n, e, p: f"{n} = {e}{p}", names, expressions, pins)


def blocks(depth: int) -> st.SearchStrategy[list[str]]:
    statement = assignments if depth == 0 else st.one_of(
        assignments,
        st.builds(lambda count, body: [f"repeat {count} {{", *body, "}"],
                  st.sampled_from(("0", "1", "2", "N")), blocks(depth - 1)),
    )
    return st.lists(statement, max_size=4).map(
        lambda items: [line for item in items
                       for line in (item if isinstance(item, list) else [item])])


programs = st.builds(
    lambda extra, body, outputs, final: "\n".join(
        [*HEADER, *extra, *body, *([f"output {', '.join(outputs)}"] if final else [])]) + "\n",
    st.lists(declarations, max_size=3), blocks(2),
    st.lists(st.sampled_from(("A", "x", "B", "y", "s", "T")), min_size=1, max_size=3,
             unique=True),
    st.booleans(),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs)
def test_generated_programs_compile_or_give_a_located_error(text: str) -> None:
    try:
        module = annc.compile_source(text, filename="gen.ann", emit="ir")
    except annc.CompileError as error:
        assert error.line >= 1 and error.column >= 1, str(error)
        assert all(d.line >= 1 and d.column >= 1 for d in error.diagnostics)
        assert "Traceback" not in str(error)
        return
    assert isinstance(module, ModuleOp)
    module.verify()


def _compiles(text: str) -> bool:
    try:
        annc.compile_source(text, emit="ir")
    except annc.CompileError:
        return False
    return "repeat" in text and "(" in text  # a loop and a kernel call, not a trivial one


def test_the_generator_reaches_valid_programs_with_loops_and_kernels() -> None:
    """The generator does not only produce errors: it finds programs that compile."""
    found = find(programs, _compiles, settings=settings(max_examples=5000, deadline=None,
                                                         database=None))
    assert isinstance(annc.compile_source(found, emit="ir"), ModuleOp)
