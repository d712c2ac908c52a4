"""Parse expression text into the typed tree of ``nodes``, checking types as Prometheus does.

``parse(text)`` returns an Expr or raises PromQLSyntaxError (never anything else);
results are cached per text, so rules may call it on every evaluation.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from qbconsole.rules.promql import table_cache
from qbconsole.rules.promql.errors import PromQLSyntaxError
from qbconsole.rules.promql.literals import compile_regex, parse_duration, parse_number, unquote
from qbconsole.rules.promql.nodes import (
    COMPARISON, MANY_TO_MANY, MANY_TO_ONE, ONE_TO_MANY, ONE_TO_ONE, SCALAR, SET_OPS,
    VECTOR, Aggregate, Binary, Call, Expr, Matcher, MatrixSelector, NumberLiteral, Paren,
    StringLiteral, Unary, VectorMatching, VectorSelector,
)
from qbconsole.rules.promql.signatures import AGGREGATIONS, FUNCTIONS

_GRAMMAR = resources.files("qbconsole.rules.promql").joinpath("grammar.lark").read_text("utf-8")


def lark_cache_path() -> Path | None:
    """Where the parser's tables are cached: beside this module's bytecode (``__pycache__``, or
    under ``sys.pycache_prefix``), so only where Python writes bytecode; None where it does not."""
    if sys.dont_write_bytecode or sys.implementation.cache_tag is None:
        return None
    try:
        pyc = Path(importlib.util.cache_from_source(__file__))
    except (NotImplementedError, ValueError):
        return None
    return pyc.with_name(f"grammar.{sys.implementation.cache_tag}.lark.json")


def build_lark(cache: Path | None = None) -> Lark:
    """The LALR parser of ``grammar.lark``. Computing its tables takes ~40-60 ms, and the rules
    file is validated before the console's first frame; with ``cache`` they are computed once
    and then loaded from that file as JSON (``table_cache``: keyed on the grammar, the options
    and the lark and Python versions; read only if this user alone could have written it;
    written 0600 at once; computed afresh, and rewritten, whenever it is missing, stale,
    damaged or refused)."""
    options = dict(parser="lalr", lexer="contextual", maybe_placeholders=True)
    at_load = dict(g_regex_flags=re.ASCII)  # given again when loading: not stored in the file
    if cache is None:
        return Lark(_GRAMMAR, **options, **at_load)
    key = table_cache.cache_key(_GRAMMAR, {**options, **at_load})
    loaded = table_cache.load(cache, key, at_load)
    if loaded is not None:
        return loaded
    built = Lark(_GRAMMAR, **options, **at_load)
    table_cache.save(cache, key, built, at_load)
    return built


_LARK = build_lark(lark_cache_path())
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*", re.ASCII)
KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                      "offset", "and", "or", "unless", *AGGREGATIONS})
MAX_DEPTH = 200  # deeper trees are refused, so evaluating them cannot exhaust the stack
_DESCRIBE = {"NAME": "identifier", "NUMBER": "number", "STRING": "string", "DURATION": "duration"}


class _Fail(Exception):
    """Raised inside the tree builder; carries message and 0-based offset."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message, self.pos = message, pos


def _label_list(tree) -> tuple[str, ...]:
    if tree is None:
        return ()
    names = [t for t in tree.children if isinstance(t, Token) and t.type == "NAME"]
    for t in names:
        if not _LABEL_NAME.fullmatch(t.value):
            raise _Fail(f'unexpected metric identifier "{t.value}" in grouping opts, expected label', t.start_pos)
    return tuple(t.value for t in names)


def _duration(tok: Token) -> int:
    try:
        ms = parse_duration(tok.value)
    except ValueError as exc:
        raise _Fail(str(exc), tok.start_pos) from None
    if ms == 0:
        raise _Fail("duration must be greater than 0", tok.start_pos)
    return ms


def _check_arg(arg: Expr, want: str, context: str) -> None:
    if arg.type != want:
        raise _Fail(f"expected type {want} in {context}, got {arg.type}", arg.pos)


@v_args(inline=True)
class _Build(Transformer_NonRecursive):
    """Builds nodes bottom-up from the lark tree, type-checking each as it is made."""

    def number(self, tok: Token) -> NumberLiteral:
        try:
            return NumberLiteral(parse_number(tok.value), tok.start_pos)
        except ValueError as exc:
            raise _Fail(str(exc), tok.start_pos) from None

    def string(self, tok: Token) -> StringLiteral:
        try:
            return StringLiteral(unquote(tok.value), tok.start_pos)
        except ValueError as exc:
            raise _Fail(str(exc), tok.start_pos) from None

    def paren(self, lpar: Token, expr: Expr) -> Paren:
        return Paren(expr, lpar.start_pos)

    def matcher(self, name: Token, op: Token, value: Token) -> Matcher:
        colon = name.value.find(":")
        if colon >= 0:
            raise _Fail("unexpected character inside braces: ':'", name.start_pos + colon)
        text = self.string(value).value
        regex = None
        if op.value in ("=~", "!~"):
            try:
                regex = compile_regex(text)
            except ValueError as exc:
                raise _Fail(str(exc), value.start_pos) from None
        return Matcher(name.value, op.value, text, regex)

    def matchers(self, lbrace: Token, *items) -> tuple[int, list[Matcher]]:
        return lbrace.start_pos, [m for m in items if m is not None]

    def selector(self, name: Token, matchers) -> VectorSelector:
        if name.value.lower() in KEYWORDS:
            raise _Fail(f"unexpected <{name.value.lower()}>", name.start_pos)
        found = matchers[1] if matchers else []
        for m in found:
            if m.name == "__name__":
                raise _Fail(f'metric name must not be set twice: "{name.value}" or "{m.value}"', name.start_pos)
        return VectorSelector(name.value, tuple(found), 0, name.start_pos)

    def selector_braces(self, matchers) -> VectorSelector:
        pos, found = matchers
        if all(m.matches("") for m in found):
            raise _Fail("vector selector must contain at least one non-empty matcher", pos)
        name = next((m for m in found if m.name == "__name__" and m.op == "="), None)
        rest = tuple(m for m in found if m is not name)
        return VectorSelector(name.value if name else None, rest, 0, pos)

    def range(self, expr: Expr, lbracket: Token, dur: Token) -> MatrixSelector:
        if not isinstance(expr, VectorSelector):
            raise _Fail("ranges only allowed for vector selectors", lbracket.start_pos)
        if expr.offset_ms:
            raise _Fail("no offset modifiers allowed before range", lbracket.start_pos)
        return MatrixSelector(expr, _duration(dur), expr.pos)

    def offset(self, expr: Expr, _kw: Token, minus: Token | None, dur: Token) -> Expr:
        ms = _duration(dur) * (-1 if minus is not None else 1)
        vs = expr.vector if isinstance(expr, MatrixSelector) else expr
        if not isinstance(vs, VectorSelector):
            raise _Fail("offset modifier must be preceded by an instant vector selector or range "
                        "vector selector or a subquery", expr.pos)
        if vs.offset_ms:
            raise _Fail("offset may not be set multiple times", expr.pos)
        moved = VectorSelector(vs.name, vs.matchers, ms, vs.pos)
        return MatrixSelector(moved, expr.range_ms, expr.pos) if vs is not expr else moved

    def call(self, name: Token, _lpar: Token, *args) -> Call:
        args = tuple(a for a in args if a is not None)
        sig = FUNCTIONS.get(name.value)
        if sig is None:
            raise _Fail(f'unknown function with name "{name.value}"', name.start_pos)
        n, f = len(args), name.value
        if sig.min_args == len(sig.args) and n != len(sig.args):
            raise _Fail(f'expected {len(sig.args)} argument(s) in call to "{f}", got {n}', name.start_pos)
        if n < sig.min_args:
            raise _Fail(f'expected at least {sig.min_args} argument(s) in call to "{f}", got {n}', name.start_pos)
        if n > len(sig.args):
            raise _Fail(f'expected at most {len(sig.args)} argument(s) in call to "{f}", got {n}', name.start_pos)
        for arg, want in zip(args, sig.args):
            _check_arg(arg, want, f'call to function "{f}"')
        return Call(f, args, sig.returns, name.start_pos)

    def _aggregate(self, op: Token, grouping, args) -> Aggregate:
        name = op.value.lower()
        param_type = AGGREGATIONS[name]
        want = 2 if param_type else 1
        if len(args) != want:
            raise _Fail(f"wrong number of arguments for aggregate expression provided, expected {want}, "
                        f"got {len(args)}", op.start_pos)
        expr, param = args[-1], (args[0] if param_type else None)
        _check_arg(expr, VECTOR, "aggregation expression")
        if param is not None:
            _check_arg(param, param_type, "aggregation parameter")
        without, labels = grouping if grouping is not None else (False, ())
        return Aggregate(name, expr, param, labels, without, op.start_pos)

    def agg_before(self, op: Token, grouping, _lpar: Token, *args) -> Aggregate:
        return self._aggregate(op, grouping, args)

    def agg_after(self, op: Token, _lpar: Token, *rest) -> Aggregate:
        return self._aggregate(op, rest[-1], rest[:-1])

    def grouping(self, kw: Token, labels) -> tuple[bool, tuple[str, ...]]:
        return kw.type == "WITHOUT", _label_list(labels)

    def group(self, kw: Token, labels) -> tuple[str, tuple[str, ...]]:
        return (MANY_TO_ONE if kw.type == "GROUP_LEFT" else ONE_TO_MANY), _label_list(labels)

    def matching(self, kw: Token, labels, group) -> VectorMatching:
        card, include = group if group is not None else (ONE_TO_ONE, ())
        return VectorMatching(card, _label_list(labels), kw.type == "ON", include)

    def bin_mod(self, bool_kw: Token | None, matching: VectorMatching | None):
        return bool_kw is not None, matching

    def unary(self, op: Token, expr: Expr) -> Expr:
        if expr.type not in (SCALAR, VECTOR):
            raise _Fail("unary expression only allowed on expressions of type scalar or instant vector, "
                        f'got "{expr.type}"', op.start_pos)
        if isinstance(expr, NumberLiteral):
            return NumberLiteral(-expr.value if op.value == "-" else expr.value, op.start_pos)
        return Unary(op.value, expr, op.start_pos)

    def binary(self, lhs: Expr, op_tok: Token, mod, rhs: Expr) -> Binary:
        op, pos = op_tok.value.lower(), op_tok.start_pos
        is_bool, matching = mod
        lt, rt = lhs.type, rhs.type
        if is_bool and op not in COMPARISON:
            raise _Fail("bool modifier can only be used on comparison operators", pos)
        if op in COMPARISON and not is_bool and lt == rt == SCALAR:
            raise _Fail("comparisons between scalars must use BOOL modifier", pos)
        if matching is None:
            matching = VectorMatching(MANY_TO_MANY if op in SET_OPS else ONE_TO_ONE)
        elif op in SET_OPS and matching.card == ONE_TO_ONE:
            matching = VectorMatching(MANY_TO_MANY, matching.labels, matching.on)
        if matching.on:
            for label in matching.include:
                if label in matching.labels:
                    raise _Fail(f'label "{label}" must not occur in ON and GROUP clause at once', pos)
        for side in (lhs, rhs):
            if side.type not in (SCALAR, VECTOR):
                raise _Fail("binary expression must contain only scalar and instant vector types", side.pos)
        if lt != VECTOR or rt != VECTOR:
            if matching.labels:
                raise _Fail("vector matching only allowed between instant vectors", lhs.pos)
            if op in SET_OPS:
                raise _Fail(f'set operator "{op}" not allowed in binary scalar expression', lhs.pos)
            return Binary(op, lhs, rhs, is_bool, None, lhs.pos)
        if op in SET_OPS and matching.card in (MANY_TO_ONE, ONE_TO_MANY):
            raise _Fail(f'no grouping allowed for "{op}" operation', lhs.pos)
        return Binary(op, lhs, rhs, is_bool, matching, lhs.pos)


def _children(node) -> tuple:
    if isinstance(node, (Paren, Unary)):
        return (node.expr,)
    if isinstance(node, Binary):
        return (node.lhs, node.rhs)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Aggregate):
        return (node.expr,) if node.param is None else (node.param, node.expr)
    return ()


def _check_depth(root: Expr) -> Expr:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Fail("expression nested too deeply", node.pos)
        stack.extend((child, depth + 1) for child in _children(node))
    return root


def _describe(tok: Token) -> str:
    if tok.type == "NAME" and tok.value.lower() in KEYWORDS:
        return f"<{tok.value.lower()}>"
    if tok.type in _DESCRIBE:
        return f'{_DESCRIBE[tok.type]} "{tok.value}"'
    if tok.value.isalpha() or "_" in tok.value:
        return f"<{tok.value.lower()}>"
    return f'"{tok.value}"'


def _syntax_error(exc: UnexpectedInput, text: str) -> PromQLSyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = text[pos] if pos < len(text) else ""
        if char == ":" and "RSQB" in exc.allowed:
            return PromQLSyntaxError("subqueries are not supported", pos + 1, text)
        if char == "@":
            return PromQLSyntaxError("the @ modifier is not supported", pos + 1, text)
        if "DURATION" in exc.allowed:
            return PromQLSyntaxError("expected a duration such as 5m or 1h30m", pos + 1, text)
        return PromQLSyntaxError(f"unexpected character {char!r}", pos + 1, text)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        tok = exc.token
        if tok.value.startswith(":") and "RSQB" in exc.expected:
            return PromQLSyntaxError("subqueries are not supported", tok.start_pos + 1, text)
        if tok.type == "RPAR" and text[:tok.start_pos].rstrip().endswith(","):
            return PromQLSyntaxError("trailing commas not allowed in function call args", tok.start_pos, text)
        return PromQLSyntaxError(f"unexpected {_describe(tok)}", tok.start_pos + 1, text)
    return PromQLSyntaxError("unexpected end of input", len(text) + 1, text)


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Expr:
    """Parse one PromQL expression. Raises PromQLSyntaxError with a 1-based column."""
    if not isinstance(text, str):
        raise PromQLSyntaxError(f"expression must be text, not {type(text).__name__}", 1)
    try:
        return _check_depth(_Build().transform(_LARK.parse(text)))
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    except VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, _Fail):
            raise PromQLSyntaxError(inner.message, inner.pos + 1, text) from None
        if isinstance(inner, RecursionError):
            raise PromQLSyntaxError("expression nested too deeply", 1, text) from None
        raise
    except _Fail as exc:
        raise PromQLSyntaxError(exc.message, exc.pos + 1, text) from None
    except RecursionError:
        raise PromQLSyntaxError("expression nested too deeply", 1, text) from None
    except LarkError as exc:
        raise PromQLSyntaxError(f"could not parse: {exc}", 1, text) from None
