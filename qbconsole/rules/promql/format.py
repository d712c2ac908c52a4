"""Expression trees back to PromQL text: ``parse(to_promql(parse(s))) == parse(s)``.

Parentheses are written only where the tree has Paren nodes, which is enough for
every tree the parser builds.
"""

from __future__ import annotations

import math
import re

from qbconsole.rules.promql.nodes import (
    MANY_TO_ONE, ONE_TO_MANY, Aggregate, Binary, Call, Expr, Matcher, MatrixSelector,
    NumberLiteral, Paren, StringLiteral, Unary, VectorSelector,
)
from qbconsole.rules.promql.parser import KEYWORDS

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*", re.ASCII)
_UNITS = (("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000),
          ("m", 60_000), ("s", 1000), ("ms", 1))


def format_duration(ms: int) -> str:
    """``5400000`` -> ``1h30m``; negative durations get a leading ``-``."""
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    parts = []
    for unit, size in _UNITS:
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return sign + ("".join(parts) or "0s")


def quote(text: str) -> str:
    """A double-quoted PromQL string literal for ``text``."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError("a lone surrogate cannot be written as PromQL text")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return repr(value)


def _matcher(m: Matcher) -> str:
    return f"{m.name}{m.op}{quote(m.value)}"


def _selector(vs: VectorSelector, range_ms: int | None = None) -> str:
    matchers = list(vs.matchers)
    name = vs.name or ""
    if name and (not _METRIC_NAME.fullmatch(name) or name.lower() in KEYWORDS
                 or name.lower() in ("inf", "nan")):
        matchers.insert(0, Matcher("__name__", "=", name))
        name = ""
    text = name + ("{" + ", ".join(_matcher(m) for m in matchers) + "}" if matchers or not name else "")
    if range_ms is not None:
        text += f"[{format_duration(range_ms)}]"
    if vs.offset_ms:
        text += f" offset {format_duration(vs.offset_ms)}"
    return text


def _labels(names: tuple[str, ...]) -> str:
    return "(" + ", ".join(names) + ")"


def _binary(node: Binary) -> str:
    mods = " bool" if node.bool else ""
    m = node.matching
    if m is not None and (m.on or m.labels):
        mods += (" on" if m.on else " ignoring") + _labels(m.labels)
    if m is not None and m.card in (MANY_TO_ONE, ONE_TO_MANY):
        mods += (" group_left" if m.card == MANY_TO_ONE else " group_right") + _labels(m.include)
    return f"{to_promql(node.lhs)} {node.op}{mods} {to_promql(node.rhs)}"


def to_promql(node: Expr) -> str:
    """PromQL text for an expression tree."""
    if isinstance(node, NumberLiteral):
        return _number(node.value)
    if isinstance(node, StringLiteral):
        return quote(node.value)
    if isinstance(node, VectorSelector):
        return _selector(node)
    if isinstance(node, MatrixSelector):
        return _selector(node.vector, node.range_ms)
    if isinstance(node, Paren):
        return f"({to_promql(node.expr)})"
    if isinstance(node, Unary):
        return f"{node.op}{to_promql(node.expr)}"
    if isinstance(node, Call):
        return f"{node.func}({', '.join(to_promql(a) for a in node.args)})"
    if isinstance(node, Aggregate):
        args = ([to_promql(node.param)] if node.param is not None else []) + [to_promql(node.expr)]
        grouping = ""
        if node.without or node.grouping:
            grouping = (" without " if node.without else " by ") + _labels(node.grouping) + " "
        return f"{node.op}{grouping}({', '.join(args)})"
    if isinstance(node, Binary):
        return _binary(node)
    raise TypeError(f"not an expression node: {node!r}")
