"""Text to AST: the Lark grammar in `grammar.lark` and a Transformer to `dsl.ast`.

Syntax errors become `CompileError`s that point at the offending character and
say in words what was expected there.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.lexer import PatternRE, TerminalDef
from lark.tree import Meta

from annc.dsl import ast, literals
from annc.dsl.errors import CompileError, Diagnostic, source_lines

KEYWORDS = ("param", "input", "const", "target", "repeat", "output")


class _IgnoreNewlinesInBrackets:
    """A Lark post-lexer: newlines inside `( )` and `[ ]` do not end a statement."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            if token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(depth - 1, 0)
            elif token.type == "_NL" and depth > 0:
                continue
            yield token


NUMBERS = "NUMBERS"
"""The grammar's terminal for a whole literal of numbers (`dsl.literals`)."""


def _numbers_never_match(terminal: TerminalDef) -> None:
    if terminal.name == NUMBERS:
        terminal.pattern = PatternRE("(?!)x")  # one character wide, and never matches


_READ_AT_ONCE: contextvars.ContextVar[dict[int, tuple[np.ndarray | None, int]] | None] = (
    contextvars.ContextVar("annc_read_at_once", default=None))
"""While a program is parsed with literals read at once: each such literal's numbers
(None where ragged) and the line it ends on, by where it starts."""


def _read_literal(token: Token) -> Token:
    """Reads a literal as the lexer meets it (`dsl.literals`), so that a malformed one
    stops the parse at once (`NotOneLiteral`)."""
    read = _READ_AT_ONCE.get()
    if read is not None:
        read[token.start_pos or 0] = (literals.read(token), token.end_line or 0)
    return token


@cache
def _parser(literals_at_once: bool = True) -> Lark:
    """The program's parser; without `literals_at_once`, every literal is read number by
    number (one token each), as the grammar reads a literal that `NUMBERS` does not."""
    grammar = files("annc.dsl").joinpath("grammar.lark").read_text()
    return Lark(
        grammar,
        parser="lalr",
        propagate_positions=True,
        postlex=_IgnoreNewlinesInBrackets(),
        maybe_placeholders=False,
        edit_terminals=None if literals_at_once else _numbers_never_match,
        lexer_callbacks={NUMBERS: _read_literal},
    )


def _loc(item: Token | Tree[Token]) -> ast.Location:
    if isinstance(item, Token):
        return ast.Location(item.line or 1, item.column or 1)
    return ast.Location(item.meta.line, item.meta.column)


@v_args(meta=True)
class _ToAst(Transformer[Token, tuple[ast.Statement, ...]]):
    """Builds `dsl.ast` nodes from the parse tree, bottom up."""

    def start(self, meta: Meta, statements: list[Any]) -> tuple[ast.Statement, ...]:
        return tuple(statements)

    def block(self, meta: Meta, statements: list[Any]) -> tuple[ast.Statement, ...]:
        return tuple(statements)

    def param_decl(self, meta: Meta, children: list[Any]) -> ast.Param:
        name, value = children
        return ast.Param(str(name), value, _loc(name))

    def input_decl(self, meta: Meta, children: list[Any]) -> ast.Input:
        name, type_spec = children
        return ast.Input(str(name), type_spec, _loc(name))

    def const_decl(self, meta: Meta, children: list[Any]) -> ast.Const:
        name, type_spec, value = children
        return ast.Const(str(name), type_spec, value, _loc(name))

    def target_decl(self, meta: Meta, devices: list[Any]) -> ast.Target:
        return ast.Target(tuple(devices), ast.Location(meta.line, meta.column))

    def assign(self, meta: Meta, children: list[Any]) -> ast.Assign:
        name, value, *pin = children
        return ast.Assign(str(name), value, pin[0] if pin else None, _loc(name))

    def repeat(self, meta: Meta, children: list[Any]) -> ast.Repeat:
        count, body = children
        return ast.Repeat(count, body, ast.Location(meta.line, meta.column))

    def output(self, meta: Meta, names: list[Any]) -> ast.Output:
        return ast.Output(
            tuple(ast.Name(str(n), _loc(n)) for n in names), ast.Location(meta.line, meta.column)
        )

    def pin(self, meta: Meta, children: list[Any]) -> ast.Device:
        device: ast.Device = children[0]
        return device

    def device_name(self, meta: Meta, children: list[Any]) -> ast.Device:
        (name,) = children
        return ast.Device(str(name), _loc(name))

    def count(self, meta: Meta, children: list[Any]) -> ast.Name | ast.Number:
        (token,) = children
        if token.type == "NAME":
            return ast.Name(str(token), _loc(token))
        return ast.Number(str(token), _loc(token))

    def type_spec(self, meta: Meta, children: list[Any]) -> ast.TypeSpec:
        dtype, *dims = children
        return ast.TypeSpec(str(dtype), tuple(dims), _loc(dtype))

    def dim(self, meta: Meta, children: list[Any]) -> ast.Dim:
        (value,) = children
        if isinstance(value, ast.Number):
            return ast.Dim(value.text, value.loc)
        return ast.Dim(str(value), _loc(value))

    def list_literal(self, meta: Meta, items: list[Any]) -> ast.ListLiteral:
        return ast.ListLiteral(tuple(items), ast.Location(meta.line, meta.column))

    def numbers(self, meta: Meta, children: list[Any]) -> ast.NumberArray:
        (token,) = children
        read = _READ_AT_ONCE.get()
        assert read is not None  # NUMBERS matches only inside `_read`
        return ast.NumberArray(read[token.start_pos or 0][0], _loc(token))

    def literal(self, meta: Meta, children: list[Any]) -> ast.Literal:
        literal: ast.Literal = children[0]
        return literal

    def signed_number(self, meta: Meta, children: list[Any]) -> ast.Number:
        if len(children) == 2:
            minus, number = children
            return ast.Number("-" + str(number), _loc(minus))
        (number,) = children
        return ast.Number(str(number), _loc(number))

    def number(self, meta: Meta, children: list[Any]) -> ast.Number:
        (token,) = children
        return ast.Number(str(token), _loc(token))

    def name(self, meta: Meta, children: list[Any]) -> ast.Name:
        (token,) = children
        return ast.Name(str(token), _loc(token))

    def call(self, meta: Meta, children: list[Any]) -> ast.Call:
        kernel, *args = children
        return ast.Call(str(kernel), tuple(a for a in args if a is not None), _loc(kernel))

    def binary(self, meta: Meta, children: list[Any]) -> ast.Binary:
        left, op, right = children
        return ast.Binary(str(op), left, right, _loc(op))

    def negate(self, meta: Meta, children: list[Any]) -> ast.Negate:
        minus, operand = children
        return ast.Negate(operand, _loc(minus))


_TOKEN_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "_NL": "end of line",
    "$END": "end of file",
}


def _describe_expected(expected: set[str]) -> str:
    parser = _parser()
    patterns = {t.name: t.pattern for t in parser.terminals}
    words = set()
    for name in expected - {NUMBERS}:  # wherever it may come, '[' may too
        if name in _TOKEN_WORDS:
            words.add(_TOKEN_WORDS[name])
        elif name in patterns and patterns[name].type == "str":
            words.add(f"'{patterns[name].value}'")
        else:
            words.add(name.lower())
    ordered = sorted(words)
    if len(ordered) > 1:
        return ", ".join(ordered[:-1]) + " or " + ordered[-1]
    return ordered[0] if ordered else "something else"


def _describe_token(token: Token) -> str:
    if token.type == "_NL":
        return "end of line"
    if token.type == "$END":
        return "end of file"
    if str(token) in KEYWORDS:
        return f"keyword '{token}'"
    return f"'{token}'"


def _assigns_keyword(error: UnexpectedToken) -> bool:
    """True for `repeat = ...`: a keyword where a statement's name should be."""
    history = error.token_history or []
    return error.token.type == "EQUAL" and bool(history) and str(history[-1]) in KEYWORDS


CLOSING = {"(": ")", "[": "]"}


def unclosed_bracket(text: str) -> tuple[int, int, str] | None:
    """(line, column, bracket) of the last `(` or `[` that is never closed, if any.

    Comments are skipped; a closing bracket with no opening one is left to the parser."""
    stack: list[tuple[int, int, str]] = []
    for number, line in enumerate(source_lines(text), start=1):
        for column, character in enumerate(line.split("#", 1)[0], start=1):
            if character in CLOSING:
                stack.append((number, column, character))
            elif stack and character == CLOSING[stack[-1][2]]:
                stack.pop()
    return stack[-1] if stack else None


NO_POWER = "annc has no power operator: multiply (x * x), or take sqrt(x)"
"""The hint after `x ** 2` (the power of Python and Fortran) or `x ^ 2` (of Julia and
MATLAB)."""


def _is_double_star(error: UnexpectedToken) -> bool:
    """True for the second `*` of `**`."""
    history = error.token_history or []
    before = history[-1] if history else None
    return (str(error.token) == "*" and before is not None and str(before) == "*"
            and before.line == error.token.line and before.end_column == error.token.column)


def _syntax_error(error: UnexpectedInput, text: str, filename: str) -> CompileError:
    lines = source_lines(text)
    unclosed = unclosed_bracket(text)
    if unclosed is not None:  # as Python does: at the bracket, not at the next token
        line, column, bracket = unclosed
        return CompileError([Diagnostic(filename, line, column, f"'{bracket}' was never closed",
                                        lines[line - 1])])
    if isinstance(error, UnexpectedToken) and error.token.type == "$END":
        line = max(len(lines), 1)
        column = len(lines[-1]) + 1 if lines else 1
        message = f"unexpected end of file; expected {_describe_expected(error.expected)}"
    elif isinstance(error, UnexpectedToken) and _assigns_keyword(error):
        keyword = error.token_history[-1]
        line, column = keyword.line or 1, keyword.column or 1
        message = f"'{keyword}' is a keyword and cannot be assigned"
    elif isinstance(error, UnexpectedToken):
        line, column = error.line, error.column
        expected = error.expected
        if error.interactive_parser is not None:
            accepts: Callable[[], set[str]] = error.interactive_parser.accepts  # untyped in lark
            expected = accepts() or expected
        message = (
            f"unexpected {_describe_token(error.token)}; "
            f"expected {_describe_expected(set(expected))}"
        )
        if _is_double_star(error):
            message += f". {NO_POWER}"
    elif isinstance(error, UnexpectedCharacters):
        line, column = error.line, error.column
        assert error.pos_in_stream is not None  # the lexer always sets it
        character = text[error.pos_in_stream]
        message = f"unexpected character {character!r}"
        if character == "^":
            message += f"; {NO_POWER}"
    else:
        assert isinstance(error, UnexpectedEOF)
        line = max(len(lines), 1)
        column = len(lines[-1]) + 1 if lines else 1
        message = f"unexpected end of file; expected {_describe_expected(set(error.expected))}"
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    return CompileError([Diagnostic(filename, line, column, message, source_line)])


def _end_of(text: str) -> ast.Location:
    lines = source_lines(text) or [""]
    return ast.Location(len(lines), len(lines[-1]) + 1)


def parse(text: str, filename: str = "<input>", literals_at_once: bool = True
          ) -> ast.Program:
    """Parses program text into an AST, or raises `CompileError`. Without
    `literals_at_once`, every number of a literal is read as a token of its own, as the
    grammar alone reads it (what reading them at once must agree with)."""
    try:
        statements = _read(text) if literals_at_once else _statements(text, False)
    except UnexpectedInput as error:
        raise _syntax_error(error, text, filename) from None
    except RecursionError:
        raise nested_too_deeply(text, filename) from None
    return ast.Program(statements, filename, _end_of(text))


def _read(text: str) -> tuple[ast.Statement, ...]:
    """The program's statements, literals of numbers read at once. Where one is not a
    well-formed literal, or a syntax error comes on the line a literal read at once ends
    on or before, the program is read again with every number a token of its own: the
    error is then found, and said, exactly as the grammar alone finds it. An error on a
    later line is the grammar's own already (the same statements before it, each literal
    in them well formed, and the same tokens since), and is said without reading a large
    literal number by number (a typo after a million numbers: 1.5 s and 95 MB to the
    error, where read again number by number 43 s and 2 GB; 2026-12-07, under load)."""
    read: dict[int, tuple[np.ndarray | None, int]] = {}
    reading = _READ_AT_ONCE.set(read)
    try:
        return _statements(text, literals_at_once=True)
    except UnexpectedInput as error:
        if not read or (error.line or 0) > max(end for _, end in read.values()):
            raise
        return _statements(text, literals_at_once=False)
    except literals.NotOneLiteral:
        return _statements(text, literals_at_once=False)
    finally:
        _READ_AT_ONCE.reset(reading)


def _statements(text: str, literals_at_once: bool) -> tuple[ast.Statement, ...]:
    tree = _parser(literals_at_once).parse(text)
    try:
        return _ToAst().transform(tree)
    except VisitError as error:  # Lark wraps what a Transformer method raises
        if isinstance(error.orig_exc, RecursionError):
            raise error.orig_exc from None
        raise


def nested_too_deeply(text: str, filename: str) -> CompileError:
    """The error for a program whose nesting exhausts Python's recursion limit."""
    return CompileError([Diagnostic(
        filename, _end_of(text).line, 1,
        "the program is nested too deeply to compile (expressions, calls or repeat blocks "
        "nested hundreds deep); split it into shorter statements",
    )])
