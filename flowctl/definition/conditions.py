"""The condition language of decision stages: parse, check, evaluate.

A condition such as ``record.credit_score < 70 and record.term_months > 12``
is a small subset of Python expression syntax. The standard library's
``ast.parse(text, mode="eval")`` reads it (no dependency, and every node
carries its position); an allow-list then turns the tree into a small IR of
frozen records (msgspec Structs). Any node that is not on the allow-list is
refused at its position, so nothing can reach Python internals: there is no
call, no subscript, no attribute besides ``record.<field>``, and nothing is
ever passed to ``eval`` or ``compile``. The IR is evaluated by closures built
once per condition, on its first evaluation; they only read the record with
``Mapping.get``.

The language reference for process authors is ``docs/conditions.md``.

Problem codes:

- FL301 syntax error (including input the Python parser gives up on)
- FL302 construct not allowed
- FL303 unknown field
- FL304 type mismatch
- FL305 value does not fit the field (not one of an enum's values, or not an
  ISO date for a date/datetime field)
- FL306 condition too long or nested too deeply
"""

from __future__ import annotations

import ast
import math
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from enum import Enum
from functools import lru_cache
from typing import Any, NoReturn, TypeAlias

from msgspec import Struct

from flowctl.errors import FlowctlError
from flowctl.model import FieldDef, FieldType

SYNTAX_ERROR = "FL301"
NOT_ALLOWED = "FL302"
UNKNOWN_FIELD = "FL303"
TYPE_MISMATCH = "FL304"
BAD_VALUE = "FL305"
TOO_COMPLEX = "FL306"

MAX_LENGTH = 4000  # characters
MAX_DEPTH = 50  # nested operators and parentheses

Scalar: TypeAlias = str | int | float | bool | None
Record: TypeAlias = Mapping[str, Any]


# --- problems and errors -------------------------------------------------------


class ConditionProblem(Struct, frozen=True):
    offset: int  # 0-based character offset into the condition text
    code: str
    message: str


class ConditionError(Exception):
    """``parse`` refuses the text: a syntax error or a construct not allowed."""

    def __init__(self, problem: ConditionProblem) -> None:
        super().__init__(f"{problem.code} at {problem.offset}: {problem.message}")
        self.problem = problem


class ConditionEvalError(FlowctlError):
    """A parsed condition cannot be decided on this record's values."""


# --- the IR ---------------------------------------------------------------------


class Field(Struct, frozen=True):
    name: str
    offset: int
    end: int


class Literal(Struct, frozen=True):
    value: Scalar
    offset: int
    end: int


class ListOf(Struct, frozen=True):
    items: tuple[Literal, ...]
    offset: int
    end: int


class Compare(Struct, frozen=True):
    op: str  # == != < <= > >= in "not in"
    left: Node
    right: Node
    offset: int
    end: int


class BoolOp(Struct, frozen=True):
    op: str  # and / or
    operands: tuple[Node, ...]
    offset: int
    end: int


class Not(Struct, frozen=True):
    operand: Node
    offset: int
    end: int


class Arith(Struct, frozen=True):
    op: str  # + - * /
    left: Node
    right: Node
    offset: int
    end: int


class Negate(Struct, frozen=True):
    operand: Node
    offset: int
    end: int


Node: TypeAlias = Field | Literal | ListOf | Compare | BoolOp | Not | Arith | Negate
Evaluator: TypeAlias = Callable[[Record], Any]


class Condition(Struct, frozen=True, dict=True):
    """A parsed condition: the source text, its IR and the fields it reads.

    ``run`` is its evaluator, built from the IR on first use and kept in the
    instance ``__dict__`` (not a field: not compared, hashed, shown or pickled).
    """

    text: str
    root: Node
    fields: frozenset[str]

    @property
    def run(self) -> Evaluator:
        fn: Evaluator | None = self.__dict__.get("run")
        if fn is None:
            fn = self.__dict__["run"] = _compile(self.root, self.text)
        return fn


# --- public functions -------------------------------------------------------------


@lru_cache(maxsize=4096)
def parse(text: str) -> Condition:
    """Parse ``text``; raise ``ConditionError`` at the first refused spot.

    Remembered by text (a condition is immutable): lint's rules and the
    engine read the same conditions several times."""
    root = _Builder(text).build()
    _refuse_comments(text, root)
    return Condition(text, root, frozenset(_fields(root)))


def check(cond: Condition, fields: Mapping[str, FieldDef]) -> list[ConditionProblem]:
    """Problems of names and types against the process's declared fields."""
    checker = _Checker(cond.text, fields)
    ty = checker.infer(cond.root)
    if ty not in (_Ty.BOOL, _Ty.ANY):
        src = _src(cond.text, cond.root)
        hint = "" if ty == _Ty.NULL else f"; compare it, as in {_example(src, ty)}"
        checker.add(
            cond.root,
            TYPE_MISMATCH,
            f"a condition must be true or false, but {src} is {_ty_noun(ty)}{hint}",
        )
    return sorted(set(checker.problems), key=lambda p: (p.offset, p.code, p.message))


def evaluate(cond: Condition, record: Record) -> bool:
    """Whether the condition holds for ``record``; missing fields read as null.

    Pure: the record is only read, with ``Mapping.get``. Raises
    ``ConditionEvalError`` when the values cannot decide it (a field with no
    value where an order or a truth value is needed, a value of the wrong type,
    division by zero, a result that is not true or false).
    """
    value = cond.run(record)
    if value is True or value is False:
        return value
    src = _src(cond.text, cond.root)
    if value is None:
        _no_value(src, "the condition is neither true nor false")
    _fail(f"the condition {src} gives {_show(value)}, not true or false")


def field_names(cond: Condition) -> set[str]:
    """The fields the condition reads."""
    return set(cond.fields)


# --- parsing: ast -> IR, by allow-list -----------------------------------------


_ONLY_READS = "a condition only reads fields and compares values"
_REFUSED: dict[type[ast.AST], str] = {
    ast.Call: "function and method calls are not allowed: a condition only reads fields "
    "and compares values",
    ast.Subscript: "indexing with [...] is not allowed; read a field as record.<field>",
    ast.Lambda: "lambda is not allowed: a condition only reads fields and compares values",
    ast.ListComp: f"comprehensions are not allowed: {_ONLY_READS}",
    ast.SetComp: f"comprehensions are not allowed: {_ONLY_READS}",
    ast.DictComp: f"comprehensions are not allowed: {_ONLY_READS}",
    ast.GeneratorExp: "generator expressions are not allowed: a condition only reads fields "
    "and compares values",
    ast.NamedExpr: "assignment with := is not allowed",
    ast.JoinedStr: "f-strings are not allowed; write a plain string",
    ast.IfExp: "`x if c else y` is not allowed; use one branch per case in the stage",
    ast.Dict: "dictionaries are not allowed",
    ast.Set: 'sets are not allowed; write a list of values after in, as in ["a", "b"]',
    ast.Tuple: 'tuples are not allowed; write a list of values after in, as in ["a", "b"]',
    ast.Starred: "* unpacking is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Slice: "slices are not allowed",
}

_COMPARE_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_ORDERING = frozenset({"<", "<=", ">", ">="})
_ARITH_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
}
_OTHER_OPS: dict[type[ast.AST], str] = {
    ast.Mod: "%",
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.UAdd: "unary +",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_NAMED_LITERALS: dict[str, Scalar] = {"true": True, "false": False, "null": None}
_PYTHON_LITERALS = {True: "true", False: "false", None: "null"}

# Python's own hint for `a = 1` mentions :=, which the language refuses.
_SYNTAX_HINTS = (
    ("&&", "write `and` instead of `&&`"),
    ("||", "write `or` instead of `||`"),
    ("===", "write `==` to compare"),
    ("<>", "write `!=` for not equal"),
    ("!", "write `not` instead of `!`"),
    ("=", "write `==` to compare; `=` does not compare"),
)


_NO_COMMENTS = "comments are not allowed in a condition; write them in YAML"


def _problem(offset: int, code: str, message: str) -> NoReturn:
    raise ConditionError(ConditionProblem(offset, code, message))


class _Builder:
    """Turn the text into IR, refusing everything not on the allow-list."""

    def __init__(self, text: str) -> None:
        self.text = text
        stripped = text.lstrip()
        self.shift = len(text) - len(stripped)
        # Conditions may span lines (YAML block scalars); Python's eval mode
        # does not allow that outside brackets, so line breaks become spaces.
        # The length is unchanged, so positions still match the text.
        self.src = stripped.replace("\r", " ").replace("\n", " ")
        self.ascii = self.src.isascii()
        self.encoded = b"" if self.ascii else self.src.encode("utf-8", errors="surrogatepass")

    def build(self) -> Node:
        text = self.text
        if len(text) > MAX_LENGTH:
            _problem(
                MAX_LENGTH,
                TOO_COMPLEX,
                f"the condition is {len(text)} characters long; the limit is {MAX_LENGTH}: "
                "split the decision into several branches or stages",
            )
        if not self.src.strip():
            _problem(
                0, SYNTAX_ERROR, 'the condition is empty; write one, as in record.level == "key"'
            )
        tree = self._parse()
        try:
            return self.expr(tree.body, 0)
        except RecursionError:  # pragma: no cover - MAX_DEPTH stops well before
            _problem(0, TOO_COMPLEX, f"the condition is nested more than {MAX_DEPTH} levels deep")

    def _parse(self) -> ast.Expression:
        try:
            return ast.parse(self.src, mode="eval")
        except SyntaxError as e:
            raise ConditionError(self._syntax(e)) from None
        except (RecursionError, MemoryError):
            _problem(
                0,
                SYNTAX_ERROR,
                "the condition is nested too deeply for the parser; "
                f"the limit is {MAX_DEPTH} levels",
            )
        except UnicodeError:
            at = next((i for i, ch in enumerate(self.text) if "\ud800" <= ch <= "\udfff"), 0)
            _problem(at, SYNTAX_ERROR, "the condition contains a character that is not valid text")
        except ValueError as e:  # pragma: no cover - 3.11 raises SyntaxError for NUL bytes
            _problem(0, SYNTAX_ERROR, f"the condition cannot be read: {e}")

    def _syntax(self, e: SyntaxError) -> ConditionProblem:
        msg = (e.msg or "invalid syntax").split(". Maybe you meant")[0]
        if "null bytes" in msg:
            return ConditionProblem(
                self.text.find("\0"), SYNTAX_ERROR, "the condition contains a NUL character"
            )
        at = len(self.src) if not e.offset or e.offset < 1 else min(e.offset - 1, len(self.src))
        if (e.lineno or 1) > 1:  # pragma: no cover - line breaks were replaced
            at = len(self.src)
        for token, hint in _SYNTAX_HINTS:
            found = self._token_near(token, at)
            if found is not None:
                return ConditionProblem(self.shift + found, SYNTAX_ERROR, f"syntax error: {hint}")
        if "#" in self.src:
            comment = self._comment_at()
            if comment is not None:
                return ConditionProblem(comment, NOT_ALLOWED, _NO_COMMENTS)
        if "line continuation" in msg:
            at = max(self.src.rfind("\\", 0, at + 1), 0)
            msg = "a backslash cannot continue a line; a condition may span lines without it"
        if msg == "invalid syntax" and at >= len(self.src.rstrip()):
            msg = "the condition ends too early"
        return ConditionProblem(self.shift + at, SYNTAX_ERROR, f"syntax error: {msg}")

    def _comment_at(self) -> int | None:
        """Where a comment starts, when the text tokenizes with one."""
        import io
        import tokenize

        text = self.text[self.shift :]
        starts = [0]
        for line in text.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        try:
            for tok in tokenize.generate_tokens(io.StringIO(text).readline):
                if tok.type == tokenize.ERRORTOKEN:  # e.g. an unterminated string
                    return None
                if tok.type == tokenize.COMMENT:
                    return self.shift + starts[tok.start[0] - 1] + tok.start[1]
        except (tokenize.TokenError, SyntaxError):
            pass
        return None

    def _token_near(self, token: str, at: int) -> int | None:
        lo = max(0, at - len(token))
        i = self.src.find(token, lo, at + len(token) + 1)
        if i < 0:
            return None
        if token == "!" and self.src.startswith("!=", i):
            return None
        if token == "=" and (
            self.src[i - 1 : i] in ("=", "!", "<", ">", ":") or self.src.startswith("==", i)
        ):
            return None
        return i

    # positions

    def pos(self, col: int) -> int:
        if self.ascii:
            return self.shift + col
        return self.shift + len(self.encoded[:col].decode("utf-8", errors="surrogatepass"))

    def span(self, n: ast.expr) -> tuple[int, int]:
        end = n.end_col_offset if n.end_col_offset is not None else n.col_offset
        return self.pos(n.col_offset), self.pos(end)

    # nodes

    def expr(self, n: ast.expr, depth: int) -> Node:
        start, end = self.span(n)
        if depth > MAX_DEPTH:
            _problem(
                start, TOO_COMPLEX, f"the condition is nested more than {MAX_DEPTH} levels deep"
            )
        method = _BUILDERS.get(type(n))
        if method is not None:
            return method(self, n, depth + 1)
        refused = _REFUSED.get(type(n))
        if isinstance(n, ast.List):
            refused = 'a list can only follow in or not in, as in record.level in ["a", "b"]'
        _problem(start, NOT_ALLOWED, refused or f"{type(n).__name__} expressions are not allowed")

    def constant(self, n: ast.expr, depth: int) -> Node:
        assert isinstance(n, ast.Constant)
        start, end = self.span(n)
        v = n.value
        if v is None or isinstance(v, bool):
            word = _PYTHON_LITERALS[v]
            _problem(start, NOT_ALLOWED, f"write {word} instead of {v}")
        if isinstance(v, str):
            if "\n" in self.text[start:end] or "\r" in self.text[start:end]:
                _problem(start, NOT_ALLOWED, "a string cannot span lines")
            return Literal(v, start, end)
        if isinstance(v, int):
            if abs(v) > sys.float_info.max:  # the engine compares numbers as floats
                _problem(start, NOT_ALLOWED, "the number is too large to compare (above 1.8e308)")
            return Literal(v, start, end)
        if isinstance(v, float):
            if not math.isfinite(v):
                _problem(start, NOT_ALLOWED, "the number is too large")
            return Literal(v, start, end)
        kind = "complex numbers" if isinstance(v, complex) else f"{type(v).__name__} literals"
        _problem(
            start, NOT_ALLOWED, f"{kind} are not allowed; use strings, numbers, true, false, null"
        )

    def name(self, n: ast.expr, depth: int) -> Node:
        assert isinstance(n, ast.Name)
        start, end = self.span(n)
        if n.id in _NAMED_LITERALS:
            return Literal(_NAMED_LITERALS[n.id], start, end)
        if n.id == "record":
            _problem(
                start, NOT_ALLOWED, "record alone is not a value; read a field, as in record.level"
            )
        if n.id.startswith("_"):
            _problem(
                start, NOT_ALLOWED, f"unknown name {n.id}: names beginning with _ are not allowed"
            )
        _problem(
            start,
            NOT_ALLOWED,
            f"unknown name {n.id}: read a field as record.{n.id}; "
            "the only other names are true, false and null",
        )

    def attribute(self, n: ast.expr, depth: int) -> Node:
        assert isinstance(n, ast.Attribute)
        start, end = self.span(n)
        attr_at = end - len(n.attr)
        if not (isinstance(n.value, ast.Name) and n.value.id == "record"):
            _problem(
                attr_at,
                NOT_ALLOWED,
                f".{n.attr} cannot be read: the only attribute access is record.<field>",
            )
        if n.attr.startswith("_"):
            _problem(
                attr_at,
                NOT_ALLOWED,
                f"record.{n.attr} is not allowed: field names cannot begin with _",
            )
        return Field(n.attr, start, end)

    def unary(self, n: ast.expr, depth: int) -> Node:
        assert isinstance(n, ast.UnaryOp)
        start, end = self.span(n)
        if isinstance(n.op, ast.Not):
            return Not(self.expr(n.operand, depth), start, end)
        if not isinstance(n.op, ast.USub):
            _problem(start, NOT_ALLOWED, _operator_refused(n.op))
        operand = self.expr(n.operand, depth)
        v = operand.value if isinstance(operand, Literal) else None
        if isinstance(v, int | float) and not isinstance(v, bool):
            return Literal(-v, start, end)
        return Negate(operand, start, end)

    def binary(self, n: ast.expr, depth: int) -> Node:
        assert isinstance(n, ast.BinOp)
        start, end = self.span(n)
        op = _ARITH_OPS.get(type(n.op))
        if op is None:
            _problem(self._op_at(n.left, n.right), NOT_ALLOWED, _operator_refused(n.op))
        return Arith(op, self.expr(n.left, depth), self.expr(n.right, depth), start, end)

    def boolean(self, n: ast.expr, depth: int) -> Node:
        assert isinstance(n, ast.BoolOp)
        start, end = self.span(n)
        op = "and" if isinstance(n.op, ast.And) else "or"
        return BoolOp(op, tuple(self.expr(v, depth) for v in n.values), start, end)

    def compare(self, n: ast.expr, depth: int) -> Node:
        assert isinstance(n, ast.Compare)
        operands = [n.left, *n.comparators]
        ops: list[str] = []
        for i, op in enumerate(n.ops):
            name = _COMPARE_OPS.get(type(op))
            if name is None:
                at = self._op_at(operands[i], operands[i + 1])
                _problem(at, NOT_ALLOWED, _operator_refused(op))
            ops.append(name)
        if len(ops) > 1 and not _ORDERING.issuperset(ops):
            at = self._op_at(operands[1], operands[2])
            _problem(
                at,
                NOT_ALLOWED,
                "only <, <=, > and >= can be chained, as in 0 < record.amount <= 100; "
                "join other comparisons with and",
            )
        pairs = [self._pair(op, operands[i], operands[i + 1], depth) for i, op in enumerate(ops)]
        if len(pairs) == 1:
            return pairs[0]
        start, end = self.span(n)
        return BoolOp("and", tuple(pairs), start, end)

    def _pair(self, op: str, left: ast.expr, right: ast.expr, depth: int) -> Compare:
        lhs = self.expr(left, depth)
        if op in ("in", "not in"):
            rhs: Node = self._list(right, depth)
        else:
            rhs = self.expr(right, depth)
        return Compare(op, lhs, rhs, lhs.offset, rhs.end)

    def _list(self, n: ast.expr, depth: int) -> ListOf:
        start, end = self.span(n)
        if not isinstance(n, ast.List):
            _problem(
                start,
                NOT_ALLOWED,
                'in needs a list of values on its right, as in record.level in ["a", "b"]',
            )
        if not n.elts:
            _problem(start, NOT_ALLOWED, "the list is empty, so nothing is ever in it")
        items = []
        for e in n.elts:
            item = self.expr(e, depth)
            if not isinstance(item, Literal):
                _problem(item.offset, NOT_ALLOWED, "a list after in can hold only literal values")
            items.append(item)
        return ListOf(tuple(items), start, end)

    def _op_at(self, left: ast.expr, right: ast.expr) -> int:
        """Where the operator between two operands begins."""
        lo, hi = self.span(left)[1], self.span(right)[0]
        gap = self.text[lo:hi]
        skip = len(gap) - len(gap.lstrip(" \t\r\n)"))
        return lo + skip


def _operator_refused(op: ast.AST) -> str:
    name = _OTHER_OPS.get(type(op), type(op).__name__)
    if name in ("is", "is not"):
        return f"`{name}` is not allowed; compare with == or !="
    return (
        f"the operator {name} is not allowed; the operators are + - * /, == != < <= > >=, "
        "in, not in, and, or, not"
    )


_BUILDERS: dict[type[ast.AST], Callable[[_Builder, ast.expr, int], Node]] = {
    ast.Constant: _Builder.constant,
    ast.Name: _Builder.name,
    ast.Attribute: _Builder.attribute,
    ast.UnaryOp: _Builder.unary,
    ast.BinOp: _Builder.binary,
    ast.BoolOp: _Builder.boolean,
    ast.Compare: _Builder.compare,
}


def _string_spans(node: Node) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in _walk(node):
        if isinstance(n, Literal) and isinstance(n.value, str):
            out.append((n.offset, n.end))
    return out


def _refuse_comments(text: str, root: Node) -> None:
    if "#" not in text:
        return
    spans = _string_spans(root)
    for i, ch in enumerate(text):
        if ch == "#" and not any(a <= i < b for a, b in spans):
            _problem(i, NOT_ALLOWED, _NO_COMMENTS)


def _walk(node: Node) -> list[Node]:
    out: list[Node] = [node]
    if isinstance(node, Compare | Arith):
        out += _walk(node.left) + _walk(node.right)
    elif isinstance(node, BoolOp):
        for o in node.operands:
            out += _walk(o)
    elif isinstance(node, Not | Negate):
        out += _walk(node.operand)
    elif isinstance(node, ListOf):
        out += node.items
    return out


def _fields(node: Node) -> list[str]:
    return [n.name for n in _walk(node) if isinstance(n, Field)]


def _src(text: str, node: Node) -> str:
    return text[node.offset : node.end]


# --- checking against the declared fields ---------------------------------------


class _Ty(Enum):
    NUMBER = "a number"
    BOOL = "true or false"
    STRING = "a string"
    DATE = "a date"
    NULL = "null"
    ANY = "anything"  # after a problem was reported, to avoid a cascade


_FIELD_TY = {
    FieldType.STRING: _Ty.STRING,
    FieldType.TEXT: _Ty.STRING,
    FieldType.ENUM: _Ty.STRING,
    FieldType.USER: _Ty.STRING,
    FieldType.DATE: _Ty.DATE,
    FieldType.DATETIME: _Ty.DATE,
    FieldType.INTEGER: _Ty.NUMBER,
    FieldType.NUMBER: _Ty.NUMBER,
    FieldType.BOOLEAN: _Ty.BOOL,
}
_ORDERED_STRINGS = frozenset({FieldType.STRING, FieldType.TEXT})
_STRINGY = frozenset({_Ty.STRING, _Ty.DATE})


def _ty_noun(ty: _Ty) -> str:
    return ty.value


_PLURAL = {
    _Ty.NUMBER: "numbers",
    _Ty.STRING: "strings",
    _Ty.DATE: "dates",
    _Ty.BOOL: "true or false",
    _Ty.NULL: "null",
    _Ty.ANY: "anything",
}


def _example(src: str, ty: _Ty) -> str:
    """A comparison that would make ``src`` true or false."""
    if ty == _Ty.NUMBER:
        return f"{src} > 0"
    if ty == _Ty.DATE:
        return f'{src} < "2026-01-31"'
    return f'{src} == "..."' if ty == _Ty.STRING else f"{src} == true"


def _literal_ty(v: Scalar) -> _Ty:
    if v is None:
        return _Ty.NULL
    if isinstance(v, bool):
        return _Ty.BOOL
    if isinstance(v, str):
        return _Ty.STRING
    return _Ty.NUMBER


class _Checker:
    def __init__(self, text: str, fields: Mapping[str, FieldDef]) -> None:
        self.text = text
        self.fields = fields
        self.problems: list[ConditionProblem] = []

    def add(self, node: Node, code: str, message: str) -> None:
        self.problems.append(ConditionProblem(node.offset, code, message))

    def src(self, node: Node) -> str:
        return _src(self.text, node)

    def describe(self, node: Node, ty: _Ty) -> str:
        """``record.amount (a number field)`` / ``"vip" (a string)``."""
        fd = self.field_def(node)
        if fd is not None:
            article = "an" if fd.type in (FieldType.ENUM, FieldType.INTEGER) else "a"
            return f"{self.src(node)} ({article} {fd.type.value} field)"
        if ty == _Ty.NULL:
            return "null"
        return f"{self.src(node)} ({_ty_noun(ty)})"

    def field_def(self, node: Node) -> FieldDef | None:
        return self.fields.get(node.name) if isinstance(node, Field) else None

    def infer(self, node: Node) -> _Ty:
        if isinstance(node, Field):
            return self.field(node)
        if isinstance(node, Literal):
            return _literal_ty(node.value)
        if isinstance(node, Compare):
            self.compare(node)
            return _Ty.BOOL
        if isinstance(node, BoolOp):
            for o in node.operands:
                self.truth(o, node.op)
            return _Ty.BOOL
        if isinstance(node, Not):
            self.truth(node.operand, "not")
            return _Ty.BOOL
        if isinstance(node, Arith):
            left_ok = self.number(node.left, node.op)
            right_ok = self.number(node.right, node.op)
            return _Ty.NUMBER if left_ok and right_ok else _Ty.ANY
        if isinstance(node, Negate):
            return _Ty.NUMBER if self.number(node.operand, "-") else _Ty.ANY
        return _Ty.ANY  # pragma: no cover - a ListOf only appears under Compare

    def field(self, node: Field) -> _Ty:
        fd = self.fields.get(node.name)
        if fd is not None:
            return _FIELD_TY.get(fd.type, _Ty.ANY)
        declared = ", ".join(sorted(self.fields)) or "none"
        msg = f"record.{node.name} is not a field of this process (declared fields: {declared})"
        import difflib  # only on this error path

        close = difflib.get_close_matches(node.name, list(self.fields), n=1)
        if close:
            msg = (
                f"record.{node.name} is not a field of this process; "
                f"did you mean record.{close[0]}? (declared fields: {declared})"
            )
        self.add(node, UNKNOWN_FIELD, msg)
        return _Ty.ANY

    def truth(self, node: Node, op: str) -> None:
        ty = self.infer(node)
        if ty in (_Ty.BOOL, _Ty.ANY):
            return
        self.add(
            node,
            TYPE_MISMATCH,
            f"{self.describe(node, ty)} is used as true or false, but it is {_ty_noun(ty)}; "
            f"`{op}` needs true or false, as in {_example(self.src(node), ty)}",
        )

    def number(self, node: Node, op: str) -> bool:
        """Whether ``node`` is known to be a number (reporting it when it is not)."""
        ty = self.infer(node)
        if ty in (_Ty.NUMBER, _Ty.ANY):
            return ty == _Ty.NUMBER
        self.add(
            node,
            TYPE_MISMATCH,
            f"{self.describe(node, ty)} is used with {op}, but arithmetic needs numbers",
        )
        return False

    def compare(self, node: Compare) -> None:
        lt = self.infer(node.left)
        if isinstance(node.right, ListOf):
            self.membership(node, lt, node.right)
            return
        rt = self.infer(node.right)
        if _Ty.ANY in (lt, rt):
            return
        if node.op in _ORDERING:
            self.ordering(node, lt, rt)
        else:
            self.equality(node, lt, rt)

    def equality(self, node: Compare, lt: _Ty, rt: _Ty) -> None:
        if _Ty.NULL in (lt, rt) or lt == rt or {lt, rt} <= _STRINGY:
            self.values(node.left, node.right)
            self.values(node.right, node.left)
            return
        self.mismatch(node, lt, rt, f"{node.op} compares values of the same type")

    def ordering(self, node: Compare, lt: _Ty, rt: _Ty) -> None:
        for side, ty in ((node.left, lt), (node.right, rt)):
            why = self.unordered(side, ty)
            if why:
                self.add(
                    side,
                    TYPE_MISMATCH,
                    f"{self.describe(side, ty)} cannot be ordered with {node.op}: {why}",
                )
                return
        if lt == rt == _Ty.STRING:
            for literal, other in ((node.left, node.right), (node.right, node.left)):
                if (isinstance(literal, Literal) and isinstance(literal.value, str)
                        and _as_datetime(literal.value) is not None
                        and not (isinstance(other, Literal) and isinstance(other.value, str)
                                 and _as_datetime(other.value) is not None)):
                    self.add(literal, TYPE_MISMATCH,
                             f"{self.describe(other, _Ty.STRING)} is text, and "
                             f"{literal.value!r} is read as a date: {node.op} would fail on "
                             "any value that is not a date; make the field a date, or "
                             "compare with == or in")
                    return
            return
        if lt == rt == _Ty.NUMBER:
            return
        if _Ty.DATE in (lt, rt) and {lt, rt} <= _STRINGY:
            other, other_ty = (node.right, rt) if lt == _Ty.DATE else (node.left, lt)
            if other_ty == _Ty.DATE or isinstance(other, Literal):
                self.values(node.left, node.right)
                self.values(node.right, node.left)
                return
        self.mismatch(node, lt, rt, f"{node.op} orders two numbers, two dates or two strings")

    def unordered(self, node: Node, ty: _Ty) -> str:
        if ty == _Ty.NULL:
            return "null has no order; test for a missing value with == null"
        if ty == _Ty.BOOL:
            return "true and false have no order; compare with == or !="
        fd = self.field_def(node)
        if fd is None or ty != _Ty.STRING or fd.type in _ORDERED_STRINGS:
            return ""
        if fd.type is FieldType.ENUM:
            return "an enum's values have no order; compare with == or in"
        return f"a {fd.type.value} field has no order; compare with == or in"

    def mismatch(self, node: Compare, lt: _Ty, rt: _Ty, why: str) -> None:
        self.add(
            node.right,
            TYPE_MISMATCH,
            f"{self.describe(node.left, lt)} is compared with "
            f"{self.describe(node.right, rt)}; {why}",
        )

    def membership(self, node: Compare, lt: _Ty, items: ListOf) -> None:
        if lt in (_Ty.BOOL, _Ty.NULL):
            self.add(
                node.left,
                TYPE_MISMATCH,
                f"{self.describe(node.left, lt)} cannot be looked up with {node.op}; "
                "compare with == or !=",
            )
            return
        for item in items.items:
            it = _literal_ty(item.value)
            if it == _Ty.NULL or lt == _Ty.ANY:
                continue
            if it == lt or {lt, it} <= _STRINGY:
                self.values(node.left, item)
                continue
            self.add(
                item,
                TYPE_MISMATCH,
                f"{self.describe(node.left, lt)} is looked up in a list holding "
                f"{self.describe(item, it)}; the list's values must be {_PLURAL[lt]}",
            )

    def values(self, node: Node, other: Node) -> None:
        """``other``, a string literal, must fit ``node`` when it is an enum or date field."""
        fd = self.field_def(node)
        if fd is None or not isinstance(other, Literal) or not isinstance(other.value, str):
            return
        if fd.type is FieldType.ENUM and other.value not in fd.values:
            allowed = ", ".join(fd.values) or "(it declares none)"
            self.add(
                other,
                BAD_VALUE,
                f"{self.src(node)} is compared with {self.src(other)}, which is not one of its "
                f"values: {allowed}",
            )
        elif fd.type in (FieldType.DATE, FieldType.DATETIME) and _as_datetime(other.value) is None:
            self.add(
                other,
                BAD_VALUE,
                f"{self.src(node)} is a {fd.type.value} field and {self.src(other)} is not an ISO "
                f'date; write it as "2026-01-31" or "2026-01-31T09:30:00Z"',
            )


# --- evaluation ---------------------------------------------------------------------

_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?\Z"
)
_EXAMPLE_LEN = 60


def _as_datetime(v: Any) -> datetime | None:
    """An aware datetime for a date, a datetime or an ISO string; else None.

    Dates count as midnight; datetimes without an offset count as UTC.
    """
    if isinstance(v, str):
        return _iso_datetime(v)
    if isinstance(v, datetime):
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    return None


@lru_cache(maxsize=1024)
def _iso_datetime(v: str) -> datetime | None:
    if not _ISO_DATE.match(v):
        return None
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _show(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= _EXAMPLE_LEN else r[: _EXAMPLE_LEN - 3] + "..."


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, date):
        return "date"
    return "other"


_KIND_NOUN = {
    "bool": "true or false",
    "number": "a number",
    "string": "a string",
    "date": "a date",
    "null": "null",
}


def _fail(message: str) -> NoReturn:
    raise ConditionEvalError(message)


def _no_value(src: str, what: str) -> NoReturn:
    _fail(f"{src} has no value yet, so {what}; test it first, as in {src} != null and ...")


def _need(src: str, v: Any, kind: str, what: str) -> None:
    if v is None:
        _no_value(src, what)
    if _kind(v) != kind:
        _fail(f"{src} is {_show(v)}, not {_KIND_NOUN[kind]}, so {what}")


class _Sides(Struct, frozen=True):
    """The two operands of a comparison, as written, for messages."""

    op: str
    expr: str  # the whole comparison
    left: str
    right: str
    left_literal: bool
    right_literal: bool


def _mismatch(a: Any, b: Any, s: _Sides, why: str) -> NoReturn:
    undecided = f"so `{s.expr}` cannot be decided"
    if s.right_literal and not s.left_literal:
        _fail(f"{s.left} is {_show(a)}, not {_KIND_NOUN[_kind(b)]}, {undecided}")
    if s.left_literal and not s.right_literal:
        _fail(f"{s.right} is {_show(b)}, not {_KIND_NOUN[_kind(a)]}, {undecided}")
    _fail(f"{s.left} is {_show(a)} and {s.right} is {_show(b)}, {undecided}: {s.op} {why}")


def _not_a_date(a: Any, b: Any, da: Any, s: _Sides) -> NoReturn:
    src, v, literal = (s.left, a, s.left_literal) if da is None else (s.right, b, s.right_literal)
    found = f"{src} is" if literal else f"{src} is {_show(v)},"
    _fail(f"{found} not an ISO date such as '2026-01-31', so `{s.expr}` cannot be decided")


def _equal(a: Any, b: Any, s: _Sides) -> bool:
    if a is None or b is None:
        return a is None and b is None
    ka, kb = _kind(a), _kind(b)
    if ka == kb and ka in ("number", "bool"):
        return bool(a == b)
    if ka in ("string", "date") and kb in ("string", "date"):
        if ka == kb == "string" and a == b:
            return True
        da, db = _as_datetime(a), _as_datetime(b)
        if da is not None and db is not None:
            return da == db
        if "date" in (ka, kb):
            _not_a_date(a, b, da, s)
        return False
    _mismatch(a, b, s, "compares two values of the same type")


def _ordered(a: Any, b: Any, s: _Sides) -> tuple[Any, Any]:
    if a is None:
        _no_value(s.left, f"`{s.expr}` cannot be decided")
    if b is None:
        _no_value(s.right, f"`{s.expr}` cannot be decided")
    ka, kb = _kind(a), _kind(b)
    if ka == kb == "number":
        return a, b
    if ka in ("string", "date") and kb in ("string", "date"):
        da, db = _as_datetime(a), _as_datetime(b)
        if da is not None and db is not None:
            return da, db
        if da is None and db is None and ka == kb == "string":
            return a, b
        _not_a_date(a, b, da, s)
    _mismatch(a, b, s, "orders two numbers, two dates or two strings")


_ORDER_FNS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda x, y: bool(x < y),
    "<=": lambda x, y: bool(x <= y),
    ">": lambda x, y: bool(x > y),
    ">=": lambda x, y: bool(x >= y),
}


def _compile(node: Node, text: str) -> Evaluator:
    return _COMPILERS[type(node)](node, text)


def _compile_field(node: Node, text: str) -> Evaluator:
    assert isinstance(node, Field)
    name = node.name

    def run(r: Record) -> Any:
        return r.get(name)

    return run


def _compile_literal(node: Node, text: str) -> Evaluator:
    assert isinstance(node, Literal)
    value = node.value
    return lambda r: value


def _compile_compare(node: Node, text: str) -> Evaluator:
    assert isinstance(node, Compare)
    left = _compile(node.left, text)
    if isinstance(node.right, ListOf):
        return _compile_in(node, left, text)
    right = _compile(node.right, text)
    sides = _sides(node.op, node.left, node.right, text, node)
    if node.op in ("==", "!="):
        negate = node.op == "!="

        def eq(r: Record) -> bool:
            return _equal(left(r), right(r), sides) != negate

        return eq
    fn = _ORDER_FNS[node.op]

    def order(r: Record) -> bool:
        return fn(*_ordered(left(r), right(r), sides))

    return order


def _sides(op: str, left: Node, right: Node, text: str, whole: Node) -> _Sides:
    return _Sides(
        op,
        _src(text, whole),
        _src(text, left),
        _src(text, right),
        isinstance(left, Literal),
        isinstance(right, Literal),
    )


def _compile_in(node: Compare, left: Evaluator, text: str) -> Evaluator:
    assert isinstance(node.right, ListOf)
    items = tuple((i.value, _sides(node.op, node.left, i, text, node)) for i in node.right.items)
    negate = node.op == "not in"

    def member(r: Record) -> bool:
        v = left(r)
        found = any(_equal(v, item, sides) for item, sides in items)
        return found != negate

    return member


def _compile_bool(node: Node, text: str) -> Evaluator:
    assert isinstance(node, BoolOp)
    parts = tuple((_compile(o, text), _src(text, o)) for o in node.operands)
    op = node.op
    stop = op == "or"  # the value that decides at once

    def run(r: Record) -> bool:
        for fn, src in parts:
            v = fn(r)
            if v is not True and v is not False:
                _not_truth(src, v, op)
            if v is stop:
                return stop
        return not stop

    return run


def _not_truth(src: str, v: Any, op: str) -> NoReturn:
    if v is None:
        _no_value(src, f"it is neither true nor false for `{op}`")
    _fail(f"{src} is {_show(v)}, not true or false, so `{op}` cannot use it")


def _compile_not(node: Node, text: str) -> Evaluator:
    assert isinstance(node, Not)
    inner, src = _compile(node.operand, text), _src(text, node.operand)

    def run(r: Record) -> bool:
        v = inner(r)
        if v is not True and v is not False:
            _not_truth(src, v, "not")
        return not v

    return run


def _compile_arith(node: Node, text: str) -> Evaluator:
    assert isinstance(node, Arith)
    left, right = _compile(node.left, text), _compile(node.right, text)
    sl, sr, whole, op = _src(text, node.left), _src(text, node.right), _src(text, node), node.op
    what = f"{whole} cannot be computed"

    def run(r: Record) -> Any:
        a, b = left(r), right(r)
        _need(sl, a, "number", what)
        _need(sr, b, "number", what)
        try:
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            return a / b
        except ZeroDivisionError:
            _fail(f"{whole} divides by zero: {sr} is {_show(b)}")
        except OverflowError:
            _fail(f"{whole} is too large to compute")

    return run


def _compile_negate(node: Node, text: str) -> Evaluator:
    assert isinstance(node, Negate)
    inner, src = _compile(node.operand, text), _src(text, node.operand)
    what = f"-{src} cannot be computed"

    def run(r: Record) -> Any:
        v = inner(r)
        _need(src, v, "number", what)
        return -v

    return run


_COMPILERS: dict[type[Node], Callable[[Node, str], Evaluator]] = {
    Field: _compile_field,
    Literal: _compile_literal,
    Compare: _compile_compare,
    BoolOp: _compile_bool,
    Not: _compile_not,
    Arith: _compile_arith,
    Negate: _compile_negate,
}
