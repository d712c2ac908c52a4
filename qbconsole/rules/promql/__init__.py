"""A PromQL subset with Prometheus 2.x semantics: parse expressions, evaluate them.

    expr = parse('sum by (job) (rate(http_requests_total[5m])) > 10')
    ev = Evaluator(StoreQuerier(store))
    ev.new_tick()
    vector = ev.evaluate(expr, now_ms)   # list of VSample(labels, value)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from qbconsole.rules.promql.errors import PromQLEvalError, PromQLSyntaxError
from qbconsole.rules.promql.parser import parse

if TYPE_CHECKING:
    from qbconsole.rules.promql.evaluator import DEFAULT_LOOKBACK_MS, Evaluator, absent_labels, evaluate
    from qbconsole.rules.promql.format import to_promql
    from qbconsole.rules.promql.nodes import (
        Aggregate, Binary, Call, Expr, Matcher, MatrixSelector, NumberLiteral, Paren, StringLiteral,
        Unary, VectorMatching, VectorSelector,
    )
    from qbconsole.rules.promql.queriers import MemoryQuerier, Querier, StoreQuerier
    from qbconsole.rules.promql.values import Scalar, String, Vector, VSample

# Name -> module. Parsing is what validating a rules file needs (before the console's first
# frame); the evaluator, queriers and formatter are imported on first use (PEP 562).
_LAZY = {
    **dict.fromkeys(("DEFAULT_LOOKBACK_MS", "Evaluator", "absent_labels", "evaluate"), "evaluator"),
    "to_promql": "format",
    **dict.fromkeys(("Aggregate", "Binary", "Call", "Expr", "Matcher", "MatrixSelector", "NumberLiteral",
                     "Paren", "StringLiteral", "Unary", "VectorMatching", "VectorSelector"), "nodes"),
    **dict.fromkeys(("MemoryQuerier", "Querier", "StoreQuerier"), "queriers"),
    **dict.fromkeys(("Scalar", "String", "Vector", "VSample"), "values"),
}

__all__ = sorted({*_LAZY, "PromQLEvalError", "PromQLSyntaxError", "parse"})


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
