"""Range queries on the store: an expression evaluated at start, start+step, ... end,
exactly as Prometheus's ``/api/v1/query_range`` does, with the local evaluator.

Each selector's series are read once for the whole window and sliced per step,
so a range query costs one store read per selector, not one per step.
"""

from __future__ import annotations

import bisect
import math

from qbconsole.datasource.prometheus import check_range
from qbconsole.datasource.results import Series
from qbconsole.rules.promql import DEFAULT_LOOKBACK_MS, Evaluator, StoreQuerier
from qbconsole.rules.promql.values import Scalar, String

_Key = tuple[str | None, tuple[tuple[str, str, str], ...]]


class WindowQuerier:
    """Wraps a querier: the first request for a selector fetches up to ``end_ms`` and later
    requests (at later steps) are answered from that fetch."""

    def __init__(self, inner, end_ms: int) -> None:
        self.inner = inner
        self.end_ms = end_ms
        self._cache: dict[_Key, tuple[int, list[tuple[dict, list, list[int]]]]] = {}

    def select(self, name, matchers, start_ms, end_ms):
        key: _Key = (name, tuple((m.name, m.op, m.value) for m in matchers))
        cached = self._cache.get(key)
        if cached is None:
            fetched = self.inner.select(name, matchers, start_ms, max(end_ms, self.end_ms))
            cached = (start_ms, [(labels, pts, [t for t, _ in pts]) for labels, pts in fetched])
            self._cache[key] = cached
        lo, series = cached
        if start_ms < lo or end_ms > self.end_ms:  # outside what was fetched (offset, @)
            return self.inner.select(name, matchers, start_ms, end_ms)
        out = []
        for labels, pts, times in series:
            window = pts[bisect.bisect_right(times, start_ms):bisect.bisect_right(times, end_ms)]
            if window:
                out.append((labels, window))
        return out


def range_query_store(store, expr, start_ms: int, end_ms: int, step_ms: int, *,
                      lookback_ms: int = DEFAULT_LOOKBACK_MS) -> list[Series]:
    """Every series ``expr`` yields over the window, with a point per step where it has a value.

    A scalar expression is one series without labels. NaN results are kept (as
    Prometheus does); the staleness handling is the evaluator's.
    """
    check_range(start_ms, end_ms, step_ms)
    evaluator = Evaluator(WindowQuerier(StoreQuerier(store), end_ms), lookback_ms=lookback_ms)
    by_labels: dict[frozenset, Series] = {}
    for t in range(start_ms, end_ms + 1, step_ms):
        evaluator.new_tick()
        value = evaluator.evaluate(expr, t)
        if isinstance(value, String):
            continue
        pairs = [({}, value.value)] if isinstance(value, Scalar) else [(s.labels, s.value) for s in value]
        for labels, v in pairs:
            key = frozenset(labels.items())
            series = by_labels.get(key)
            if series is None:
                series = by_labels[key] = Series(dict(labels), [])
            series.points.append((t, float(v) if not math.isnan(v) else math.nan))
    return sorted(by_labels.values(), key=lambda s: sorted(s.labels.items()))
