"""Evaluate an expression at one instant against a Querier, with Prometheus semantics.

Windows follow Prometheus 2.x by default (what Debian's promtool 2.42 computes): an
instant selector takes the newest sample in [t - lookback, t], a range selector the
samples in [t - range, t], both shifted by ``offset``. ``prometheus_major=3`` gives
Prometheus 3's left-open windows (t - d, t] and its rate extrapolation order.
A sample that is the staleness marker ends its series: an instant selector whose
newest sample is stale returns nothing for it, range selectors skip stale samples.
"""

from __future__ import annotations

from typing import Callable

from qbconsole.model import is_stale
from qbconsole.rules.promql import aggregate as agg
from qbconsole.rules.promql import binops, gomath
from qbconsole.rules.promql import functions as fn
from qbconsole.rules.promql.errors import PromQLEvalError
from qbconsole.rules.promql.nodes import (
    MATRIX, SCALAR, SET_OPS, STRING, VECTOR, Aggregate, Binary, Call, Expr, MatrixSelector,
    NumberLiteral, Paren, StringLiteral, Unary, VectorSelector,
)
from qbconsole.rules.promql.parser import parse
from qbconsole.rules.promql.queriers import Querier
from qbconsole.rules.promql.values import (
    NAME, Scalar, String, VSample, Vector, check_unique, drop_name, several_names,
)

DEFAULT_LOOKBACK_MS = 300_000


def _unparen(node: Expr) -> Expr:
    while isinstance(node, Paren):
        node = node.expr
    return node


def _without_stale(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    for _, v in points:
        if v != v:
            return [p for p in points if not is_stale(p[1])]
    return points


def absent_labels(node: Expr) -> dict[str, str]:
    """The labels ``absent(node)`` reports: those fixed by equality matchers, except
    labels that another matcher also constrains."""
    vs = node.vector if isinstance(node, MatrixSelector) else node
    if not isinstance(vs, VectorSelector):
        return {}
    out: dict[str, str] = {}
    dropped = []
    for m in vs.matchers:
        if m.name == NAME:
            continue
        if m.op == "=" and m.name not in out:
            if m.value:
                out[m.name] = m.value
        else:
            dropped.append(m.name)
    for name in dropped:
        out.pop(name, None)
    return out


class Evaluator:
    """Evaluates expressions against one querier. Within a tick (until
    :meth:`new_tick`) each distinct selection is fetched from the querier once."""

    def __init__(self, querier: Querier, lookback_ms: int = DEFAULT_LOOKBACK_MS, *,
                 prometheus_major: int = 2) -> None:
        if prometheus_major not in (2, 3):
            raise ValueError("prometheus_major must be 2 or 3")
        self.querier = querier
        self.lookback_ms = lookback_ms
        self.v3 = prometheus_major == 3
        self._closed = 0 if self.v3 else 1  # widen (start, end] to [start, end]
        self._memo: dict[tuple, object] = {}
        self.selects = 0  # querier calls made, for tests and benchmarks
        self._dispatch: dict[type, Callable] = {
            NumberLiteral: lambda n, t: n.value, StringLiteral: lambda n, t: n.value,
            Paren: lambda n, t: self._eval(n.expr, t), VectorSelector: self._instant,
            MatrixSelector: self._range, Unary: self._unary, Binary: self._binary,
            Call: self._memoised(self._call), Aggregate: self._memoised(self._aggregate),
        }

    def _memoised(self, evaluate: Callable) -> Callable:
        """Within a tick, a function call or aggregation over the same data is computed
        once, however many rules contain it (rules share sub-expressions such as
        ``avg_over_time(x[5m])`` with different thresholds). Results are never mutated
        in place, so sharing them is safe."""
        memo = self._memo

        def cached(node, t: int):
            key = ("node", node, t)
            try:
                return memo[key]
            except KeyError:
                value = memo[key] = evaluate(node, t)
                return value
            except TypeError:  # an unhashable literal somewhere: just compute
                return evaluate(node, t)
        return cached

    def new_tick(self) -> None:
        """Forget fetched data (call once per evaluation round)."""
        self._memo.clear()

    def evaluate(self, expr: Expr | str, t_ms: int) -> Scalar | String | Vector:
        """The value of ``expr`` at ``t_ms``. Raises PromQLSyntaxError for bad text and
        PromQLEvalError when the data makes the expression invalid."""
        node = parse(expr) if isinstance(expr, str) else expr
        if node.type == MATRIX:
            raise PromQLEvalError("a range vector is not an instant result; apply a function such as rate()")
        try:
            value = self._eval(node, int(t_ms))
        except RecursionError:
            raise PromQLEvalError("expression nested too deeply") from None
        if node.type == SCALAR:
            return Scalar(value)
        if node.type == STRING:
            return String(value)
        return list(value)  # a fresh list: the memo may hold the one computed

    def _eval(self, node: Expr, t: int):
        return self._dispatch[node.__class__](node, t)

    # --- selectors -------------------------------------------------------------

    def _select(self, vs: VectorSelector, t: int, range_ms: int):
        end = t - vs.offset_ms
        key = (vs.name, vs.matchers, end - range_ms - self._closed, end)
        data = self._memo.get(key)
        if data is None:
            data = self._memo[key] = self.querier.select(vs.name, list(vs.matchers), key[2], end)
            self.selects += 1
        return key, data

    def _instant(self, vs: VectorSelector, t: int) -> Vector:
        key, data = self._select(vs, t, self.lookback_ms)
        key = ("instant", key)
        out = self._memo.get(key)
        if out is None:
            out = []
            for labels, points in data:
                if points:
                    v = points[-1][1]
                    if v == v or not is_stale(v):
                        out.append(VSample(labels, v))
            self._memo[key] = out
        return out

    def _range(self, ms: MatrixSelector, t: int):
        key, data = self._select(ms.vector, t, ms.range_ms)
        key = ("range", key)
        out = self._memo.get(key)
        if out is None:
            out = []
            for labels, points in data:
                points = _without_stale(points)
                if points:
                    out.append((labels, points))
            self._memo[key] = out
        return out

    # --- operators ---------------------------------------------------------------

    def _unary(self, node: Unary, t: int):
        value = self._eval(node.expr, t)
        if node.op == "+":
            return value
        if node.type == SCALAR:
            return -value
        out = [VSample(drop_name(s.labels), -s.value) for s in value]
        return check_unique(out) if several_names(s.labels for s in value) else out

    def _binary(self, node: Binary, t: int):
        lhs, rhs = self._eval(node.lhs, t), self._eval(node.rhs, t)
        lt, rt = node.lhs.type, node.rhs.type
        if lt == SCALAR and rt == SCALAR:
            return binops.scalar_scalar(node.op, lhs, rhs)
        if lt == SCALAR:
            return binops.vector_scalar(node.op, rhs, lhs, True, node.bool)
        if rt == SCALAR:
            return binops.vector_scalar(node.op, lhs, rhs, False, node.bool)
        if node.op in SET_OPS:
            return binops.set_operation(node.op, lhs, rhs, node.matching)
        return binops.vector_vector(node.op, lhs, rhs, node.matching, node.bool)

    def _aggregate(self, node: Aggregate, t: int) -> Vector:
        vector = self._eval(node.expr, t)
        param = self._eval(node.param, t) if node.param is not None else None
        return agg.aggregate(node.op, vector, node.grouping, node.without, param)

    # --- functions ---------------------------------------------------------------

    def _call(self, node: Call, t: int):
        name, args = node.func, node.args
        if args and args[-1].type == MATRIX:
            return self._range_call(node, t)
        if name == "time":
            return t / 1000
        if name == "vector":
            return [VSample({}, self._eval(args[0], t))]
        vector = self._eval(args[0], t) if args[0].type == VECTOR else None
        if name == "scalar":
            return vector[0].value if len(vector) == 1 else fn.NAN
        if name in ("sort", "sort_desc"):  # NaN last either way, as Prometheus sorts
            return sorted(vector, key=lambda s: (s.value != s.value, -s.value if name == "sort_desc" else s.value))
        if name == "absent":
            return [] if vector else [VSample(absent_labels(args[0]), 1.0)]
        if name == "histogram_quantile":
            q = self._eval(args[0], t)
            groups = fn.histogram_groups(self._eval(args[1], t))
            return check_unique([VSample(labels, fn.bucket_quantile(q, buckets)) for labels, buckets in groups])
        scalars = [self._eval(a, t) for a in args[1:]]
        if name == "clamp":
            low, high = scalars
            if high < low:
                return []
            f = lambda v: gomath.go_max(low, gomath.go_min(high, v))  # noqa: E731
        elif name == "clamp_min":
            f = lambda v: gomath.go_max(scalars[0], v)  # noqa: E731
        elif name == "clamp_max":
            f = lambda v: gomath.go_min(scalars[0], v)  # noqa: E731
        elif name == "round":
            inverse = gomath.div(1.0, scalars[0] if scalars else 1.0)
            f = lambda v: fn.round_to(v, inverse)  # noqa: E731
        else:
            f = fn.MATH_FUNCTIONS[name]
        out = [VSample(drop_name(s.labels), f(s.value)) for s in vector]
        return check_unique(out) if several_names(s.labels for s in vector) else out

    def _range_call(self, node: Call, t: int) -> Vector:
        name = node.func
        ms = _unparen(node.args[-1])
        series = self._range(ms, t)
        if name == "absent_over_time":
            return [] if series else [VSample(absent_labels(ms), 1.0)]
        if name == "quantile_over_time":
            q = self._eval(node.args[0], t)
            f = lambda points, w: fn.quantile(q, [v for _, v in points])  # noqa: E731
        else:
            f = fn.RANGE_FUNCTIONS[name]
        end = t - ms.vector.offset_ms
        window = fn.Window(end - ms.range_ms, end, fn.range_seconds(ms.range_ms), self.v3)
        keep_name = name == "last_over_time"
        out = []
        for labels, points in series:
            value = f(points, window)
            if value is not None:
                out.append(VSample(labels if keep_name else drop_name(labels), value))
        if not keep_name and several_names(labels for labels, _ in series):
            check_unique(out)
        return out


def evaluate(expr: Expr | str, t_ms: int, querier: Querier, *,
             lookback_ms: int = DEFAULT_LOOKBACK_MS) -> Scalar | String | Vector:
    """Evaluate once, without keeping anything between calls."""
    return Evaluator(querier, lookback_ms).evaluate(expr, t_ms)
