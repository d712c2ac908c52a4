"""Small questions about parsed expressions, for the engine and the rule-test runner."""

from __future__ import annotations

from typing import Iterator

from qbconsole.rules.promql import (
    Aggregate, Binary, Call, Expr, MatrixSelector, Paren, PromQLSyntaxError, Unary, VectorSelector, parse,
)


def selectors(expr: Expr) -> Iterator[VectorSelector]:
    """Every instant selector in ``expr`` (a range selector's vector included, without its range)."""
    if isinstance(expr, VectorSelector):
        yield expr
    elif isinstance(expr, MatrixSelector):
        yield expr.vector
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from selectors(arg)
    elif isinstance(expr, Aggregate):
        yield from selectors(expr.expr)
        if expr.param is not None:
            yield from selectors(expr.param)
    elif isinstance(expr, Binary):
        yield from selectors(expr.lhs)
        yield from selectors(expr.rhs)
    elif isinstance(expr, (Unary, Paren)):
        yield from selectors(expr.expr)


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    """``name{a="b"}`` (promtool's input series notation) -> (name, labels); equality only."""
    node = parse(text)
    if not isinstance(node, VectorSelector) or node.offset_ms:
        raise PromQLSyntaxError(f"expected a series like name{{label=\"value\"}}, got {text!r}", 1)
    labels = {}
    name = node.name or ""
    for m in node.matchers:
        if m.op != "=":
            raise PromQLSyntaxError(f"series labels must use '=', got {m.name}{m.op}", 1)
        if m.name == "__name__":
            name = m.value
        else:
            labels[m.name] = m.value
    return name, labels
