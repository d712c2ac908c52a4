"""A PromQL subset with Prometheus 2.x semantics: parse expressions, evaluate them.

    expr = parse('sum by (job) (rate(http_requests_total[5m])) > 10')
    ev = Evaluator(StoreQuerier(store))
    ev.new_tick()
    vector = ev.evaluate(expr, now_ms)   # list of VSample(labels, value)
"""

from qbconsole.rules.promql.errors import PromQLEvalError, PromQLSyntaxError
from qbconsole.rules.promql.evaluator import DEFAULT_LOOKBACK_MS, Evaluator, absent_labels, evaluate
from qbconsole.rules.promql.format import to_promql
from qbconsole.rules.promql.nodes import (
    Aggregate, Binary, Call, Expr, Matcher, MatrixSelector, NumberLiteral, Paren, StringLiteral,
    Unary, VectorMatching, VectorSelector,
)
from qbconsole.rules.promql.parser import parse
from qbconsole.rules.promql.queriers import MemoryQuerier, Querier, StoreQuerier
from qbconsole.rules.promql.values import Scalar, String, Vector, VSample

__all__ = [
    "Aggregate", "Binary", "Call", "DEFAULT_LOOKBACK_MS", "Evaluator", "Expr", "Matcher",
    "MatrixSelector", "MemoryQuerier", "NumberLiteral", "Paren", "PromQLEvalError",
    "PromQLSyntaxError", "Querier", "Scalar", "StoreQuerier", "String", "StringLiteral", "Unary",
    "VSample", "Vector", "VectorMatching", "VectorSelector", "absent_labels", "evaluate", "parse",
    "to_promql",
]
